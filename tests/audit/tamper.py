"""A copy of a log with damage done to it, written to real Kafka topics.

:func:`tamper_copy` copies ``reference-events``, ``account-events``, ``engine-events``,
``settlements`` and ``order-requests`` partition by partition, keeping every record's
offset where the original's gaps are transaction markers (each run of consecutive offsets
is written in one transaction, whose marker takes the next offset), so the matching re-run
makes the same event ids. On the way it does one of each kind of damage, to different
records, and says where (:class:`Tampered`):

- ``unbalanced``: a FillSettled's clearing posting + 1, chain re-sealed (only the journal
  rule can see it);
- ``negative``: the USD deposits of an account before its first USD hold cut to 1 minor
  unit each (postings too, chain re-sealed): that hold drives available below zero;
- ``fee``: a sell FillSettled's fee + 1, the fee posting + 1 and its quote posting − 1
  (balanced, chain re-sealed): only the fee recomputation sees it;
- ``missing_leg``: a FillLeg dropped from ``settlements`` (the producer's chain re-sealed);
- ``broken_chain``: one character of an account event's command id changed, not re-sealed;
- ``engine``: an engine ``Rested`` record's price changed, engine chain re-sealed (only the
  matching re-run sees it);
- ``maker_checker``: a withdrawal's request and its decision given the same actor (user
  90, an admin), chain re-sealed: the maker decided their own withdrawal;
- ``admin_actor``: a deposit credited by user 91, who was never an admin, chain re-sealed;
- ``amend_settled``: the first AmendSettled's ``amend_time_ns`` + 1, chain re-sealed: it
  now settles an amend the engine never confirmed, and the AmendConfirmed it settled has no
  AmendSettled (its hold changes are untouched: only the pairing can see it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from tradex.domain.journal import CLEARING_ACCOUNT, FEES_ACCOUNT
from tradex.infra.kafka import TopicSpec, ensure_topics, producer_config
from tradex.infra.settings import Settings
from tradex.log.records import LogRecord
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_EVENTS,
    ENGINE_EVENTS,
    ORDER_REQUESTS,
    REFERENCE_EVENTS,
    SETTLEMENTS,
)
from tradex.schemas.chain import HASH_SIZE, ZERO_HASH
from tradex.schemas.codec import Codec

AN_ADMIN, NEVER_ADMIN = 90, 91  # the test exchange's operator and auditor (its USERS)
COPIED = (REFERENCE_EVENTS, ACCOUNT_EVENTS, ENGINE_EVENTS, SETTLEMENTS, ORDER_REQUESTS)
CODEC = Codec.offline()


@dataclass
class Tampered:
    settings: Settings
    # kind -> (topic, partition, original offset, what identifies it)
    places: dict[str, tuple[str, int, int, Any]] = field(default_factory=dict)
    offsets_kept: dict[str, bool] = field(default_factory=dict)  # per topic


def _kind(value: bytes) -> str:
    return CODEC.decode(value).subject.rsplit(".", 1)[-1]


def reseal(values: list[bytes | None], start: int, producer: str) -> None:
    """Re-seal the chain of ``producer``'s records from index ``start`` on, in place."""
    head = ZERO_HASH
    for i, value in enumerate(values):
        if value is None:
            continue
        decoded = CODEC.decode(value)
        if decoded.record["envelope"]["producer"] != producer:
            continue
        if i >= start:
            record = decoded.record
            values[i] = CODEC.seal(decoded.subject, record, head).data
        head = (values[i] or b"")[-HASH_SIZE:]


def _edit(values: list[bytes | None], i: int, change: Callable[[dict[str, Any]], None]) -> None:
    decoded = CODEC.decode(values[i] or b"")
    change(decoded.record)
    values[i] = CODEC.seal(
        decoded.subject, decoded.record, decoded.record["envelope"]["prev_hash"]
    ).data
    reseal(values, i, decoded.record["envelope"]["producer"])


def _first(values: list[bytes | None], kind: str, test: Callable[[dict[str, Any]], bool],
           skip: set[int]) -> int:  # fmt: skip
    for i, value in enumerate(values):
        if value is None or i in skip or _kind(value) != kind:
            continue
        if test(CODEC.decode(value).record):
            return i
    raise AssertionError(f"no {kind} to tamper with")


def damage(
    topic: str, partition: int, records: list[LogRecord], found: Tampered
) -> list[bytes | None]:
    """The values to write for one partition (None: dropped)."""
    values: list[bytes | None] = [r.value for r in records]
    used: set[int] = set()

    def mark(kind: str, i: int, what: Any) -> None:
        used.add(i)
        found.places[kind] = (topic, partition, records[i].offset, what)

    # first: a later edit re-seals the chain after it, which must not heal broken_chain
    if topic == ACCOUNT_EVENTS and "amend_settled" not in found.places:
        settled = [j for j, v in enumerate(values)
                   if j not in used and v is not None and _kind(v) == "AmendSettled"]  # fmt: skip
        if settled:
            i = settled[0]
            record = CODEC.decode(values[i] or b"").record
            _edit(values, i, lambda r: r.__setitem__("amend_time_ns", r["amend_time_ns"] + 1))
            mark("amend_settled", i, (record["order_id"], record["amend_time_ns"]))
    if topic == ACCOUNT_EVENTS and partition == 0:
        i = _first(values, "FillSettled", lambda r: r["side"] == "BUY", used)

        def unbalance(r: dict[str, Any]) -> None:
            for p in r["postings"]:
                if p["account_id"] == CLEARING_ACCOUNT:
                    p["delta"] += 1
                    return

        _edit(values, i, unbalance)
        mark("unbalanced", i, None)
        i = _first(values, "FillSettled", lambda r: r["side"] == "SELL" and r["fee"] > 0, used)
        account = CODEC.decode(values[i] or b"").record["account_id"]

        def overcharge(r: dict[str, Any]) -> None:
            r["fee"] += 1
            for p in r["postings"]:
                if p["account_id"] == FEES_ACCOUNT:
                    p["delta"] += 1
                elif p["account_id"] == account and p["asset"] == r_quote(r):
                    p["delta"] -= 1

        _edit(values, i, overcharge)
        mark("fee", i, account)
        decided = next(
            j for j, v in enumerate(values)
            if j not in used and v is not None
            and _kind(v) in ("WithdrawalPaid", "WithdrawalReleased")
        )  # fmt: skip
        d = CODEC.decode(values[decided] or b"").record
        asked = next(
            j for j in range(decided) if _kind(values[j] or b"") == "WithdrawalRequested"
            and CODEC.decode(values[j] or b"").record["withdrawal_id"] == d["withdrawal_id"]
            and CODEC.decode(values[j] or b"").record["account_id"] == d["account_id"]
        )  # fmt: skip
        for j in (asked, decided):
            _edit(values, j, lambda r: r.__setitem__("actor", AN_ADMIN))
        used.add(asked)
        mark("maker_checker", decided, d["withdrawal_id"])
        i = _first(values, "Deposited", lambda r: True, used)
        _edit(values, i, lambda r: r.__setitem__("actor", NEVER_ADMIN))
        mark("admin_actor", i, NEVER_ADMIN)
    if topic == ACCOUNT_EVENTS and partition == 1:
        hold = _first(values, "OrderAccepted", lambda r: r["hold_asset"] == "USD", used)
        account = CODEC.decode(values[hold] or b"").record["account_id"]

        def cut(r: dict[str, Any]) -> None:
            r["amount"] = 1
            for p in r["postings"]:
                p["delta"] = 1 if p["delta"] > 0 else -1

        deposits = [
            j for j in range(hold)
            if _kind(values[j] or b"") == "Deposited"
            and CODEC.decode(values[j] or b"").record["account_id"] == account
            and CODEC.decode(values[j] or b"").record["asset"] == "USD"
        ]  # fmt: skip
        assert deposits, "the account deposited USD before its first USD hold"
        for j in deposits:
            _edit(values, j, cut)
        mark("negative", deposits[0], account)
        used.add(hold)
        i = _first(values, "OrderAccepted", lambda r: r["account_id"] != account, used)
        value = values[i] or b""
        command_id = CODEC.decode(value).record["command_id"].encode()
        at = value.index(command_id, 5 + 36)
        flipped = b"Z" if value[at : at + 1] != b"Z" else b"Y"
        values[i] = value[:at] + flipped + value[at + 1 :]
        mark("broken_chain", i, None)
    if topic == SETTLEMENTS and partition == 0:
        i = _first(values, "FillLeg", lambda r: True, used)
        record = CODEC.decode(values[i] or b"").record
        values[i] = None
        reseal(values, i + 1, record["envelope"]["producer"])
        mark("missing_leg", i, (record["trade_id"], record["liquidity"]))
    if topic == ENGINE_EVENTS and not any(k == "engine" for k in found.places):
        rested = [j for j, v in enumerate(values) if v is not None and _kind(v) == "Rested"]
        if rested:
            i = rested[len(rested) // 2]
            _edit(values, i, lambda r: r.__setitem__("price", r["price"] + 1))
            mark("engine", i, None)
    return values


def r_quote(record: dict[str, Any]) -> str:
    """The quote asset of a fill: the asset of its clearing posting of the notional."""
    return str(record["hold_asset"] if record["side"] == "BUY" else _other(record))


def _other(record: dict[str, Any]) -> str:
    assets = {p["asset"] for p in record["postings"]}
    assets.discard(record["hold_asset"])
    assert len(assets) == 1, assets
    return assets.pop()


def tamper_copy(source: Settings, target: Settings) -> Tampered:
    """Copy ``source``'s log to ``target``'s prefix, damaged (module doc)."""
    found = Tampered(target)
    producer = Producer(producer_config(target, transactional_id=f"{target.topic_prefix}copy"))
    producer.init_transactions()
    with KafkaLog(source) as log:
        for topic in COPIED:
            partitions = log.partitions(topic)
            ensure_topics(target, {topic: TopicSpec(partitions)})
            kept = True
            for partition in range(partitions):
                records = list(log.read(topic, partition))
                values = damage(topic, partition, records, found)
                kept &= _write(producer, target.topic(topic), partition, records, values)
            found.offsets_kept[topic] = kept
    return found


def _write(
    producer: Producer, topic: str, partition: int, records: list[LogRecord],
    values: list[bytes | None],
) -> bool:  # fmt: skip
    """Write one partition, a transaction per run of consecutive offsets; whether every
    record landed at its original offset."""
    at, open_ = 0, False
    kept = True
    for record, value in zip(records, values, strict=True):
        if value is None:
            kept = False
            continue
        if record.offset > at and open_:
            producer.commit_transaction()
            at += 1  # the marker
            open_ = False
        if not open_:
            producer.begin_transaction()
            open_ = True
        kept &= record.offset == at
        producer.produce(topic, value=value, key=record.key, partition=partition)
        at += 1
    if open_:
        producer.commit_transaction()
    return kept
