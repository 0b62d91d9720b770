"""``tradex matching verify`` on the real Kafka: it passes on a real matcher run, and it
finds (and locates) a changed record, a removed record, an extra record, and a log produced
from a different input."""

from __future__ import annotations

import dataclasses

import pytest

from tests.matching.order_requests import random_feed
from tradex.infra.kafka import TopicSpec, ensure_topics, produce_sync
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.matching import verify
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, InputRecord, PartitionEngine
from tradex.matching.service import build, topics_of
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec

pytestmark = pytest.mark.integration

CONFIG = BookConfig(orders_max=1 << 12, price_levels_max=1 << 16)
BOOK_ARGS = ["--orders-max", str(CONFIG.orders_max), "--price-levels-max", str(CONFIG.price_levels_max)]  # fmt: skip
CODEC = Codec.offline()
SETTLEMENT_PARTITIONS = 2


def prefixed(settings: Settings, suffix: str) -> Settings:
    """Another topic prefix under the test's own (its topics are deleted with the test's)."""
    return dataclasses.replace(settings, topic_prefix=f"{settings.topic_prefix}{suffix}-")


def topics(settings: Settings) -> None:
    ensure_topics(
        settings,
        {
            "order-requests": TopicSpec(1),
            "engine-events": TopicSpec(1),
            "settlements": TopicSpec(SETTLEMENT_PARTITIONS),
        },
    )


def log(settings: Settings, name: str, partition: int = 0) -> list[tuple[bytes | None, bytes]]:
    with KafkaLog(settings) as source:
        return [(r.key, r.value or b"") for r in source.read(name, partition)]


@pytest.fixture
def matched(settings: Settings) -> tuple[Settings, list[tuple[bytes | None, bytes]]]:
    """A real matcher run over a random stream; (settings, its order-requests records)."""
    topics(settings)
    records = random_feed(21, 600, instruments=(1, 3), jitter_ms=20).records  # times go back
    produce_sync(settings, settings.topic("order-requests"), records)
    stage, _processor = build(settings, instance="v", config=CONFIG, batch_records=100)
    assert stage.run(idle_s_max=1.5).records_in == len(records)
    return settings, records


def test_verify_passes_on_a_real_run(
    matched: tuple[Settings, list[tuple[bytes | None, bytes]]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, records = matched
    result = verify.verify_partition(settings, 0, config=CONFIG, codec=CODEC)
    assert result.ok
    assert result.input_end == len(records)
    assert result.log_records == result.expected_records > len(records)
    assert len(result.settlements) == SETTLEMENT_PARTITIONS
    assert all(s.log_records == s.expected_records > 100 for s in result.settlements)
    assert verify.main(["--topic-prefix", settings.topic_prefix, *BOOK_ARGS]) == 0
    out = capsys.readouterr().out
    assert "partition 0: identical" in out
    assert f"{result.settlement_records} settlements in 2 partitions" in out
    assert '"ok": true' in out


def test_verify_locates_a_changed_removed_or_extra_settlement_and_ignores_other_producers(
    matched: tuple[Settings, list[tuple[bytes | None, bytes]]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, records = matched
    events = log(settings, "engine-events")
    settled = [log(settings, "settlements", p) for p in range(SETTLEMENT_PARTITIONS)]
    legs = [i for i, (_, v) in enumerate(settled[1]) if CODEC.decode(v).subject.endswith("FillLeg")]
    k = legs[len(legs) // 2]
    record = CODEC.decode(settled[1][k][1]).record
    record["qty"] += 1  # re-sealed: its hash is right, its content lies
    forged = CODEC.seal("FillLeg", record, record["envelope"]["prev_hash"]).data
    changed = [settled[0], [*settled[1][:k], (settled[1][k][0], forged), *settled[1][k + 1 :]]]
    out = run_verify(tampered(settings, records, "s-changed", events, changed), capsys)
    assert f"first divergence at record {k} (settlements partition 1 offset {k})" in out
    assert "engine-events:" not in out  # only the settlements stream diverges
    assert f"'qty': {record['qty']}" in out.split("got:")[1]

    removed = [settled[0][1:], settled[1]]
    out = run_verify(tampered(settings, records, "s-removed", events, removed), capsys)
    assert "first divergence at record 0 (settlements partition 0 offset 0)" in out

    extra = [settled[0], [*settled[1], settled[1][-1]]]
    out = run_verify(tampered(settings, records, "s-extra", events, extra), capsys)
    n = len(settled[1])
    assert f"first divergence at record {n} (settlements partition 1 offset {n})" in out

    # Another matcher's records between ours (another input partition's producer): ignored.
    decoded = CODEC.decode(settled[0][0][1])
    record = decoded.record
    record["envelope"]["producer"] = "matcher/7"
    other = CODEC.seal(decoded.subject, record, record["envelope"]["prev_hash"]).data
    mixed = [[(settled[0][0][0], other), *settled[0], (settled[0][0][0], other)], settled[1]]
    target = tampered(settings, records, "s-mixed", events, mixed)
    assert verify.main(["--topic-prefix", target.topic_prefix, *BOOK_ARGS]) == 0
    capsys.readouterr()


def tampered(
    settings: Settings,
    records: list[tuple[bytes | None, bytes]],
    suffix: str,
    events: list[tuple[bytes | None, bytes]],
    settlements: list[list[tuple[bytes | None, bytes]]] | None = None,
) -> Settings:
    """A fresh prefix with the original order-requests, the given engine-events and the
    given settlements (per partition; default: the original ones)."""
    target = prefixed(settings, suffix)
    topics(target)
    produce_sync(target, target.topic("order-requests"), records)
    if events:
        produce_sync(target, target.topic("engine-events"), events)
    if settlements is None:
        settlements = [log(settings, "settlements", p) for p in range(SETTLEMENT_PARTITIONS)]
    for partition, logged in enumerate(settlements):
        produce_sync(target, target.topic("settlements"), logged)  # by key: same partition
        assert log(target, "settlements", partition) == logged
    return target


def run_verify(target: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    code = verify.main(["--topic-prefix", target.topic_prefix, *BOOK_ARGS])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "partition 0: DIVERGES" in out
    assert '"ok": false' in out
    return out


def test_verify_locates_a_changed_removed_or_extra_record(
    matched: tuple[Settings, list[tuple[bytes | None, bytes]]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, records = matched
    events = log(settings, "engine-events")
    trades = [i for i, (_, v) in enumerate(events) if CODEC.decode(v).subject.endswith("Trade")]
    k = trades[len(trades) // 2]
    # A trade with one more lot, re-sealed: its own hash is right, only its content lies.
    record = CODEC.decode(events[k][1]).record
    record["qty"] += 1
    forged = CODEC.seal("Trade", record, record["envelope"]["prev_hash"]).data
    changed = [*events[:k], (events[k][0], forged), *events[k + 1 :]]
    out = run_verify(tampered(settings, records, "changed", changed), capsys)
    assert f"first divergence at record {k} (engine-events offset {k})" in out
    assert f"'qty': {record['qty'] - 1}" in out.split("expected:")[1].split("got:")[0]
    assert f"'qty': {record['qty']}" in out.split("got:")[1]

    removed = events[:k] + events[k + 1 :]
    out = run_verify(tampered(settings, records, "removed", removed), capsys)
    assert f"first divergence at record {k} (engine-events offset {k})" in out

    extra = [*events, events[-1]]
    out = run_verify(tampered(settings, records, "extra", extra), capsys)
    n = len(events)
    assert f"first divergence at record {n} (engine-events offset {n})" in out
    assert "expected: <no record>" in out


def test_verify_finds_a_log_produced_from_another_input(
    matched: tuple[Settings, list[tuple[bytes | None, bytes]]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, records = matched
    # The same stream with one order's quantity changed halfway, matched by a clean engine.
    j = len(records) // 2
    while not CODEC.decode(records[j][1]).subject.endswith("NewOrder"):
        j += 1
    record = CODEC.decode(records[j][1]).record
    record["qty"] += 3
    modified = list(records)
    modified[j] = (records[j][0], CODEC.seal("NewOrder", record, ZERO_HASH).data)
    names = topics_of(settings)
    engine = PartitionEngine(0, CODEC, names, 2, OutputBuffers(CONFIG.orders_max), CONFIG)
    inputs = [InputRecord(0, i, k, v, 0) for i, (k, v) in enumerate(modified)]
    events: list[tuple[bytes | None, bytes]] = [
        (o.key, o.value) for o in engine.apply(inputs) if o.topic == names.engine_events
    ]
    original = log(settings, "engine-events")
    first = next(i for i, (a, b) in enumerate(zip(original, events, strict=False)) if a != b)
    assert (
        CODEC.decode(original[first][1]).record["envelope"]["causation_id"]
        == (CODEC.decode(records[j][1]).record["envelope"]["event_id"])
    )  # the first difference comes from the changed input
    out = run_verify(tampered(settings, records, "input", events), capsys)
    assert f"first divergence at record {first} (engine-events offset {first})" in out
