"""The matcher's record mapping and per-partition fold, without Kafka.

A scripted session checks the mapping of each order request to engine-events and
settlements; seeded random streams check the properties the service relies on: outputs do
not depend on batch boundaries, a snapshot restores exactly, the hash chains link, ids are
unique, and every FillLeg of an order precedes its OrderEnded.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import struct
from collections import defaultdict
from typing import Any

import pytest

from tests.matching.order_requests import Feed, random_feed
from tradex.domain.engine import ENGINE_EVENT_TYPES
from tradex.infra.stage import Output
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, InputRecord, PartitionEngine, Topics
from tradex.matching.snapshot import SnapshotError
from tradex.schemas.chain import verify_chain
from tradex.schemas.codec import Codec

CONFIG = BookConfig(orders_max=1 << 12, price_levels_max=1 << 16)
TOPICS = Topics("or", "ee", "st", "dl")
SETTLEMENT_PARTITIONS = 3
CODEC = Codec.offline()
OUT = OutputBuffers(CONFIG.orders_max)


def engine(partition: int = 0) -> PartitionEngine:
    return PartitionEngine(partition, CODEC, TOPICS, SETTLEMENT_PARTITIONS, OUT, CONFIG)


def decoded(outputs: list[Output]) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, record name, record) per output."""
    rows = []
    for output in outputs:
        d = CODEC.decode(output.value)
        rows.append((output.topic, d.subject.rsplit(".", 1)[-1], d.record))
    return rows


def names(outputs: list[Output], topic: str) -> list[str]:
    return [name for t, name, _ in decoded(outputs) if t == topic]


def only(outputs: list[Output], name: str) -> list[dict[str, Any]]:
    return [r for _, n, r in decoded(outputs) if n == name]


def step(eng: PartitionEngine, feed: Feed, first: int) -> list[Output]:
    """Apply the feed's records from index ``first`` on."""
    return eng.apply(feed.inputs()[first:])


class Session:
    """A feed and an engine, applying each new record as it is added."""

    def __init__(self) -> None:
        self.feed = Feed(CODEC)
        self.engine = engine()

    def run(self) -> list[Output]:
        done = self.engine.next_offset
        return self.engine.apply(self.feed.inputs()[done:])


def test_rest_cross_trade_settles_both_sides_and_ends_the_filled_order() -> None:
    s = Session()
    s.feed.rules(7)
    assert names(s.run(), "ee") == ["RulesApplied"]
    s.feed.new(101, 1, 7, "SELL", 100, 5)
    out = s.run()
    assert names(out, "ee") == ["Accepted", "Rested", "L2Delta"]
    assert names(out, "st") == []
    s.feed.new(102, 2, 7, "BUY", 101, 3)
    out = s.run()
    assert names(out, "ee") == ["Accepted", "Trade", "L2Delta", "Filled"]
    (trade,) = only(out, "Trade")
    assert (trade["price"], trade["qty"], trade["taker_side"]) == (100, 3, "BUY")
    assert (trade["maker_order_id"], trade["maker_account_id"]) == (101, 1)
    assert (trade["taker_order_id"], trade["taker_account_id"]) == (102, 2)
    legs = only(out, "FillLeg")
    assert [(g["account_id"], g["order_id"], g["side"], g["liquidity"]) for g in legs] == [
        (1, 101, "SELL", "MAKER"),
        (2, 102, "BUY", "TAKER"),
    ]
    assert all(g["trade_id"] == trade["trade_id"] and g["price"] == 100 for g in legs)
    assert [(e["order_id"], e["reason"]) for e in only(out, "OrderEnded")] == [(102, "FILLED")]
    # Per-instrument seq: consecutive over all of the instrument's engine events.
    seqs = [r["envelope"]["seq"] for t, _, r in decoded(out) if t == "ee"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # Each output goes where the service must put it.
    for output in out:
        if output.topic == "ee":
            assert (output.key, output.partition) == (b"7", 0)
        else:
            assert output.topic == "st"
            assert 0 <= output.partition < SETTLEMENT_PARTITIONS
    # The maker is cancelled: its rest ends.
    s.feed.cancel(101, 1, 7)
    out = s.run()
    assert names(out, "ee") == ["Cancelled", "L2Delta"]
    (cancelled,) = only(out, "Cancelled")
    assert (cancelled["remaining_qty"], cancelled["reason"]) == (2, "UNKNOWN")
    assert [(e["order_id"], e["reason"]) for e in only(out, "OrderEnded")] == [(101, "CANCELLED")]
    # Cancelling it again: rejected, and no second OrderEnded.
    s.feed.cancel(101, 1, 7)
    out = s.run()
    assert [(r["reason"], r["request"]) for r in only(out, "Rejected")] == [
        ("UNKNOWN_ORDER", "CancelOrderRequest")
    ]
    assert names(out, "st") == []


def test_halt_rejects_new_orders_but_accepts_cancels() -> None:
    s = Session()
    s.feed.rules(7)
    s.feed.new(101, 1, 7, "BUY", 99, 5)
    s.feed.rules(7, halted=True)
    s.feed.new(102, 2, 7, "SELL", 99, 5)
    s.feed.cancel(101, 1, 7)
    out = s.run()
    assert names(out, "ee") == [
        "RulesApplied", "Accepted", "Rested", "L2Delta", "RulesApplied",
        "Rejected", "Cancelled", "L2Delta",
    ]  # fmt: skip
    assert only(out, "RulesApplied")[1]["halted"] is True
    (rejected,) = only(out, "Rejected")
    assert (rejected["order_id"], rejected["reason"], rejected["detail"]) == (
        102, "INSTRUMENT_HALTED", "halted",
    )  # fmt: skip
    ended = [(e["order_id"], e["reason"]) for e in only(out, "OrderEnded")]
    assert ended == [(102, "REJECTED"), (101, "CANCELLED")]
    assert only(out, "Trade") == []


def test_price_band_rejects_a_limit_order_far_from_the_last_trade() -> None:
    s = Session()
    s.feed.rules(7, band_bps=500)  # 5 %
    s.feed.new(101, 1, 7, "SELL", 1_000, 1)
    s.feed.new(102, 2, 7, "BUY", 1_000, 1)  # trade at 1000: the reference
    s.feed.new(103, 1, 7, "SELL", 1_049, 1)  # inside the band: rests
    s.feed.new(104, 1, 7, "SELL", 1_051, 1)  # outside
    out = s.run()
    (rejected,) = only(out, "Rejected")
    assert (rejected["order_id"], rejected["reason"]) == (104, "OUTSIDE_PRICE_BAND")
    assert [r["order_id"] for r in only(out, "Rested")] == [101, 103]


def test_self_trade_prevention_cancel_taker_keeps_the_maker() -> None:
    s = Session()
    s.feed.rules(7)
    s.feed.new(101, 1, 7, "SELL", 100, 5)
    s.feed.new(102, 1, 7, "BUY", 100, 2, stp="CANCEL_TAKER")
    s.feed.new(103, 1, 7, "BUY", 100, 2, stp="CANCEL_MAKER")
    out = s.run()
    assert only(out, "Trade") == []
    cancelled = [(r["order_id"], r["reason"]) for r in only(out, "Cancelled")]
    # 102 (taker) cancelled; then 103 cancels the maker 101 and rests itself.
    assert cancelled == [(102, "SELF_TRADE_PREVENTED"), (101, "SELF_TRADE_PREVENTED")]
    assert [r["order_id"] for r in only(out, "Rested")] == [101, 103]
    ended = [(e["order_id"], e["reason"]) for e in only(out, "OrderEnded")]
    assert ended == [(102, "CANCELLED"), (101, "CANCELLED")]


def test_market_order_never_fills_beyond_its_protection_price() -> None:
    s = Session()
    s.feed.rules(7)
    s.feed.new(101, 1, 7, "SELL", 100, 2)
    s.feed.new(102, 1, 7, "SELL", 103, 2)
    s.feed.new(103, 2, 7, "BUY", 102, 10, kind="MARKET")  # protection price 102
    out = s.run()
    assert [(t["price"], t["qty"]) for t in only(out, "Trade")] == [(100, 2)]
    (expired,) = only(out, "Expired")
    assert (expired["order_id"], expired["remaining_qty"], expired["reason"]) == (
        103, 8, "NO_LIQUIDITY",
    )  # fmt: skip
    (accepted,) = [a for a in only(out, "Accepted") if a["order_id"] == 103]
    assert (accepted["kind"], accepted["price"]) == ("MARKET", 102)
    # A market buy whose protection price is below the best ask fills nothing.
    s.feed.new(104, 2, 7, "BUY", 101, 1, kind="MARKET")
    out = s.run()
    assert only(out, "Trade") == []
    assert [(e["order_id"], e["reason"]) for e in only(out, "OrderEnded")] == [(104, "EXPIRED")]
    # protection_ticks bounds it further, from the best price at entry.
    s.feed.new(105, 3, 7, "SELL", 104, 1)
    s.feed.new(106, 2, 7, "BUY", 200, 5, kind="MARKET", protection_ticks=0)
    s.feed.new(107, 3, 7, "SELL", 105, 1)
    s.feed.new(108, 2, 7, "BUY", 200, 5, kind="MARKET", protection_ticks=1)
    out = s.run()
    trades = [(t["taker_order_id"], t["price"]) for t in only(out, "Trade")]
    assert trades == [(106, 103), (106, 104), (108, 105)]


def test_amend_keeps_or_loses_priority() -> None:
    s = Session()
    s.feed.rules(7)
    s.feed.new(101, 1, 7, "SELL", 100, 5)
    s.feed.new(102, 2, 7, "SELL", 100, 5)
    s.feed.amend(101, 1, 7, 0, 3)  # lower qty, same price: keeps priority
    s.feed.amend(102, 2, 7, 99, 0)  # new price: loses priority
    s.feed.amend(999, 2, 7, 0, 1)  # unknown order
    out = s.run()
    amends = [(a["order_id"], a["new_price"], a["new_qty"], a["lost_priority"])
              for a in only(out, "AmendApplied")]  # fmt: skip
    assert amends == [(101, 100, 3, False), (102, 99, 5, True)]
    (rejected,) = only(out, "Rejected")
    assert (rejected["order_id"], rejected["reason"], rejected["request"]) == (
        999, "UNKNOWN_ORDER", "AmendOrder",
    )  # fmt: skip
    # each applied amend is confirmed to its account (settlements), right after it: the
    # terms after it and which amend (its request's time); the unknown order's is not
    confirmed = [(c["account_id"], c["order_id"], c["price"], c["qty"]) for c in only(out, "AmendConfirmed")]  # fmt: skip
    assert confirmed == [(1, 101, 100, 3), (2, 102, 99, 5)]
    times = [a["event_time_ns"] for a in only(out, "AmendApplied")]  # (the feed's times rise)
    assert [c["amend_time_ns"] for c in only(out, "AmendConfirmed")] == times
    assert names(out, "st") == ["AmendConfirmed", "AmendConfirmed"]


@pytest.mark.parametrize("fast", [True, False], ids=["c-fold", "python-fold"])
def test_an_amend_refused_on_a_live_order_confirms_the_terms_it_keeps(fast: bool) -> None:
    """The account held for the amend's terms when it forwarded it; refused with the order
    left as it was (band, range, a total at or below what filled meanwhile), the engine
    confirms the order's own terms, so the account stops holding for the refused ones. A
    refusal that leaves no order of the requester's (unknown order) confirms nothing."""
    eng = PartitionEngine(partition=0, codec=CODEC, topics=TOPICS,
                          settlement_partitions=SETTLEMENT_PARTITIONS, out=OUT, config=CONFIG,
                          fast=fast)  # fmt: skip
    assert (eng._fast is not None) == fast
    feed = Feed(CODEC)
    feed.rules(7, band_bps=500)  # 5 %
    feed.new(101, 1, 7, "SELL", 1_000, 1)
    feed.new(102, 2, 7, "BUY", 1_000, 1)  # a trade at 1,000: the band is 950..1,050
    feed.new(103, 3, 7, "BUY", 990, 5)  # rests
    feed.amend(103, 3, 7, 1_200, 0)  # up past the band: refused
    feed.new(104, 2, 7, "SELL", 990, 2)  # fills 2 of 103
    feed.amend(103, 3, 7, 0, 2)  # a total of 2, with 2 filled: refused
    feed.amend(103, 4, 7, 995, 5)  # not the requester's order: refused
    feed.amend(999, 3, 7, 995, 1)  # unknown order: refused
    feed.amend(103, 3, 7, 995, 0)  # applied: 995, total 5
    out = eng.apply(feed.inputs())
    refused = [(r["order_id"], r["detail"]) for r in only(out, "Rejected")]
    assert refused == [(103, "price_band"), (103, "amend_qty_too_low"),
                       (103, "not_owner"), (999, "unknown_order")]  # fmt: skip
    confirmed = [(c["account_id"], c["order_id"], c["price"], c["qty"])
                 for c in only(out, "AmendConfirmed")]  # fmt: skip
    assert confirmed == [(3, 103, 990, 5), (3, 103, 990, 5), (3, 103, 995, 5)]
    rejected_times = [r["event_time_ns"] for r in only(out, "Rejected")][:2]
    applied_times = [a["event_time_ns"] for a in only(out, "AmendApplied")]
    assert [c["amend_time_ns"] for c in only(out, "AmendConfirmed")] == [
        *rejected_times, *applied_times,
    ]  # fmt: skip


def test_unknown_instrument_and_malformed_records() -> None:
    s = Session()
    s.feed.new(101, 1, 8, "BUY", 100, 1)  # no InstrumentRules for 8
    s.feed.cancel(5, 1, 8)
    s.feed.raw(b"8", b"\x00\x00\x00\x00\x01garbage")
    s.feed.raw(b"8", b"")
    s.feed.rules(7)
    _key, value = s.feed.records[-1]
    s.feed.raw(b"9", value)  # rules for 7 under key 9: misrouted
    out = s.run()
    rejected = [(r["order_id"], r["reason"], r["envelope"]["seq"]) for r in only(out, "Rejected")]
    assert rejected == [(101, "UNKNOWN_INSTRUMENT", 0), (5, "UNKNOWN_INSTRUMENT", 0)]
    assert [(e["order_id"], e["reason"]) for e in only(out, "OrderEnded")] == [(101, "REJECTED")]
    letters = only(out, "DeadLetter")
    assert [(d["reason"], d["source_offset"]) for d in letters] == [
        ("undecodable", 2), ("empty", 3), ("misrouted", 5),
    ]  # fmt: skip
    assert all(d["source_topic"] == "or" for d in letters)
    assert names(out, "ee") == ["Rejected", "Rejected", "RulesApplied"]


# --- properties over seeded random streams ---------------------------------------------------


def run_in_batches(inputs: list[InputRecord], cuts: list[int]) -> tuple[list[Output], PartitionEngine]:  # fmt: skip
    eng = engine()
    outputs: list[Output] = []
    bounds = [0, *sorted(cuts), len(inputs)]
    for lo, hi in itertools.pairwise(bounds):
        outputs += eng.apply(inputs[lo:hi])
    return outputs, eng


def as_bytes(outputs: list[Output]) -> list[tuple[str, bytes, bytes | None, int]]:
    return [(o.topic, o.value, o.key, o.partition) for o in outputs]


@pytest.mark.parametrize("seed", [1, 2])
def test_outputs_do_not_depend_on_batch_boundaries(seed: int) -> None:
    inputs = random_feed(seed, 3_000).inputs()
    whole, eng = run_in_batches(inputs, [])
    rng = random.Random(seed)
    cuts = rng.sample(range(1, len(inputs)), 40)
    split, eng_split = run_in_batches(inputs, cuts)
    assert as_bytes(split) == as_bytes(whole)
    assert eng_split.state_bytes() == eng.state_bytes()
    kinds = {name for _, name, _ in decoded(whole)}
    assert {"Trade", "Rested", "Cancelled", "Expired", "Rejected", "AmendApplied",
            "Filled", "L2Delta", "RulesApplied", "FillLeg", "OrderEnded"} <= kinds  # fmt: skip
    for book in eng.books.values():
        book.validate_internal_state()


def test_snapshot_restore_then_rest_equals_one_run() -> None:
    inputs = random_feed(3, 2_000).inputs()
    whole, eng_whole = run_in_batches(inputs, [])
    for cut in (1, 777, 1_500):
        first = engine()
        head = first.apply(inputs[:cut])
        state = first.state_bytes()
        second = engine()
        second.restore(state)
        assert second.state_bytes() == state
        assert second.next_offset == cut
        tail = second.apply(inputs[cut:])
        assert as_bytes(head + tail) == as_bytes(whole)
        assert second.state_hash() == eng_whole.state_hash()


def test_restore_refuses_bad_state_and_changes_nothing() -> None:
    eng = engine()
    eng.apply(random_feed(4, 300).inputs())
    state = eng.state_bytes()
    fresh = engine()
    before = fresh.state_bytes()
    corrupt = bytearray(state)
    corrupt[len(corrupt) // 2] ^= 1
    for bad in (bytes(corrupt), state[:-1], state[:20], b""):
        with pytest.raises(SnapshotError):
            fresh.restore(bad)
        assert fresh.state_bytes() == before
    other = PartitionEngine(1, CODEC, TOPICS, SETTLEMENT_PARTITIONS, OUT, CONFIG)
    with pytest.raises(SnapshotError, match="partition"):
        other.restore(state)
    resized = PartitionEngine(0, CODEC, TOPICS, SETTLEMENT_PARTITIONS + 1, OUT, CONFIG)
    with pytest.raises(SnapshotError, match="settlements"):
        resized.restore(state)


def test_chains_link_ids_are_unique_and_fills_precede_their_end() -> None:
    outputs, _ = run_in_batches(random_feed(5, 3_000).inputs(), [500, 1_000, 2_222])
    rows = decoded(outputs)
    engine_links = [(r["envelope"]["prev_hash"], o.value)
                    for o, (t, _, r) in zip(outputs, rows, strict=True) if t == "ee"]  # fmt: skip
    assert verify_chain(engine_links) == []
    by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for o, (t, _, r) in zip(outputs, rows, strict=True):
        if t == "st":
            by_partition[o.partition].append((r["envelope"]["prev_hash"], o.value))
    assert len(by_partition) > 1
    for links in by_partition.values():
        assert verify_chain(links) == []
    ids = [r["envelope"]["event_id"] for t, _, r in rows if t != "dl"]
    assert len(set(ids)) == len(ids)
    ended: set[int] = set()
    filled: dict[int, int] = defaultdict(int)
    for _t, name, r in rows:
        if name == "FillLeg":
            assert r["order_id"] not in ended, "a FillLeg after its order's OrderEnded"
            filled[r["order_id"]] += r["qty"]
        elif name == "OrderEnded":
            assert r["order_id"] not in ended, "two OrderEnded for one order"
            ended.add(r["order_id"])
    # Both legs of every trade; each trade id once.
    trades = [r for _, name, r in rows if name == "Trade"]
    assert len({t["trade_id"] for t in trades}) == len(trades)
    assert sum(1 for _, name, _ in rows if name == "FillLeg") == 2 * len(trades)


def test_engine_records_are_the_bytes_of_their_values_encoded_as_dicts() -> None:
    """The matcher encodes domain records in C; each engine-events record equals what
    sealing its decoded values as a plain dict gives (compiled dict encoder and fastavro),
    and decodes to a validated domain record of its type."""
    reference = Codec.offline(specialised=False)
    outputs, _ = run_in_batches(random_feed(6, 1_500).inputs(), [700])
    seen: set[str] = set()
    for output in outputs:
        if output.topic != "ee":
            continue
        d = CODEC.decode(output.value)
        name = d.subject.rsplit(".", 1)[-1]
        record = d.record
        prev_hash = record["envelope"]["prev_hash"]
        assert CODEC.seal(name, dict(record), prev_hash).data == output.value
        assert reference.seal(name, dict(record), prev_hash).data == output.value
        envelope, obj = CODEC.decode_domain(output.value)
        assert type(obj).__name__ == name
        assert obj._asdict() == {k: v for k, v in record.items() if k not in ("envelope", "hash")}
        assert envelope.event_time_ns == obj.event_time_ns
        seen.add(name)
    assert seen == {cls.__name__ for cls in ENGINE_EVENT_TYPES}


# --- engine time and book_seq ------------------------------------------------------------


def times_by_input(outputs: list[Output]) -> dict[str, set[int]]:
    """Correlation id (the Feed's per-input "r<n>") -> every time its outputs carry:
    envelope and payload of engine events and settlements."""
    found: dict[str, set[int]] = defaultdict(set)
    for output in outputs:
        if output.topic == "dl":
            continue
        envelope, obj = CODEC.decode_domain(output.value)
        found[envelope.correlation_id] |= {envelope.event_time_ns, obj.event_time_ns}
    return found


def test_engine_time_never_goes_back_per_instrument_and_clocks_are_independent() -> None:
    ms = 1_000_000
    s = Session()
    s.feed.at = 1_000 * ms
    s.feed.rules(7)  # r0
    s.feed.rules(8)  # r1
    s.feed.at = 5_000 * ms
    s.feed.new(101, 1, 7, "SELL", 100, 5)  # r2: rests at 5,000 ms
    s.feed.at = 3_000 * ms
    s.feed.new(102, 2, 7, "BUY", 100, 2)  # r3: asked at 3,000 ms, instrument 7 is at 5,000
    s.feed.at = 2_000 * ms
    s.feed.new(201, 2, 8, "BUY", 50, 1)  # r4: instrument 8's clock is at 1,000 only
    s.feed.at = 4_000 * ms
    s.feed.cancel(101, 1, 7)  # r5: still 5,000
    s.feed.at = 6_000 * ms
    s.feed.new(103, 1, 7, "SELL", 100, 1)  # r6: 6,000
    s.feed.at = 100 * ms
    s.feed.new(301, 3, 9, "BUY", 10, 1)  # r7: no book for 9: its own time (seq 0 too)
    out = s.run()
    assert names(out, "st") == ["FillLeg", "FillLeg", "OrderEnded", "OrderEnded", "OrderEnded"]
    assert times_by_input(out) == {
        "r0": {1_000 * ms}, "r1": {1_000 * ms}, "r2": {5_000 * ms}, "r3": {5_000 * ms},
        "r4": {2_000 * ms}, "r5": {5_000 * ms}, "r6": {6_000 * ms}, "r7": {100 * ms},
    }  # fmt: skip
    assert s.engine.engine_times == {7: 6_000 * ms, 8: 2_000 * ms}
    # Event ids (UUIDv7: 48 bits of ms first) hold the engine time too.
    for output in out:
        envelope, _obj = CODEC.decode_domain(output.value)
        assert int(envelope.event_id.replace("-", "")[:12], 16) == envelope.event_time_ns // ms
    # A snapshot keeps the clocks: after a restore, a late request is still held back.
    restored = engine()
    restored.restore(s.engine.state_bytes())
    s.feed.at = 10 * ms
    s.feed.new(104, 1, 7, "SELL", 100, 1)  # r8
    s.feed.new(202, 2, 8, "SELL", 60, 1)  # r9
    tail = restored.apply(s.feed.inputs()[restored.next_offset :])
    assert times_by_input(tail) == {"r8": {6_000 * ms}, "r9": {2_000 * ms}}
    assert as_bytes(tail) == as_bytes(s.run())


def check_clocks_and_book_seqs(inputs: list[InputRecord], outputs: list[Output]) -> None:
    """Every output of input n carries the running max of its instrument's request times;
    each instrument's L2Delta book_seq runs 1, 2, 3, … in log order."""
    request_times: dict[str, tuple[int, int]] = {}  # correlation id -> (instrument, time)
    for rec in inputs:
        assert rec.value is not None
        envelope, request = CODEC.decode_domain(rec.value)
        request_times[envelope.correlation_id] = (request.instrument_id, request.event_time_ns)
    clock: dict[int, int] = {}
    expected: dict[str, int] = {}
    backwards = 0
    for correlation, (instrument, time_ns) in request_times.items():
        backwards += time_ns < clock.get(instrument, time_ns)
        clock[instrument] = max(clock.get(instrument, time_ns), time_ns)
        expected[correlation] = clock[instrument]
    assert backwards > len(inputs) // 10, "the stream hardly ever goes back in time"
    found = times_by_input(outputs)
    assert found == {c: {expected[c]} for c in found}
    book_seqs: dict[int, list[int]] = defaultdict(list)
    for output in outputs:
        if output.topic == "ee":
            _envelope, obj = CODEC.decode_domain(output.value)
            if type(obj).__name__ == "L2Delta":
                book_seqs[obj.instrument_id].append(obj.book_seq)
    assert len(book_seqs) == 3
    for seqs in book_seqs.values():
        assert seqs == list(range(1, len(seqs) + 1))


def test_clocks_and_book_seqs_do_not_depend_on_batches_or_snapshots() -> None:
    inputs = random_feed(8, 2_500, jitter_ms=40).inputs()
    whole, eng_whole = run_in_batches(inputs, [])
    check_clocks_and_book_seqs(inputs, whole)
    split, eng_split = run_in_batches(inputs, random.Random(8).sample(range(1, 2_500), 30))
    assert as_bytes(split) == as_bytes(whole)
    assert eng_split.state_bytes() == eng_whole.state_bytes()
    for cut in (400, 1_900):
        first = engine()
        head = first.apply(inputs[:cut])
        second = engine()
        second.restore(first.state_bytes())
        assert second.engine_times == first.engine_times
        assert second.book_seqs == first.book_seqs
        assert as_bytes(head + second.apply(inputs[cut:])) == as_bytes(whole)
        assert second.state_hash() == eng_whole.state_hash()
    assert eng_whole.book_seqs == {
        i: sum(1 for o in whole if o.topic == "ee" and o.key == str(i).encode()
               and CODEC.decode(o.value).subject == "tradex.engine.L2Delta")
        for i in (1, 2, 3)
    }  # fmt: skip


def format_1_state(eng: PartitionEngine) -> bytes:
    """``state_bytes()`` as STATE_FORMAT 1 wrote it: books without clocks and book_seqs."""
    head = struct.Struct("<8sqqqqqqq32sqq")
    parts = [
        head.pack(
            b"TXMATCH\x00", 1, eng.partition, eng.next_offset, eng.trades_total,
            eng.settlement_partitions, eng.config.orders_max, eng.config.price_levels_max,
            eng.engine_prev, len(eng.settle_prev), len(eng.books),
        )
    ]  # fmt: skip
    for target in sorted(eng.settle_prev):
        parts.append(struct.pack("<q32s", target, eng.settle_prev[target]))
    for instrument_id in sorted(eng.books):
        blob = eng.books[instrument_id].snapshot()
        parts += [struct.pack("<qq", instrument_id, len(blob)), blob]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def test_restore_refuses_a_state_of_the_previous_format() -> None:
    eng = engine()
    eng.apply(random_feed(9, 300).inputs())
    old = format_1_state(eng)
    fresh = engine()
    before = fresh.state_bytes()
    with pytest.raises(SnapshotError, match="format 2"):
        fresh.restore(old)
    assert fresh.state_bytes() == before
    fresh.restore(eng.state_bytes())  # the current format restores
    assert fresh.state_bytes() == eng.state_bytes()
