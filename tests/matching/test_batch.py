"""The fast fold (C decode and emit, tradex/matching/batch.py) against its twin, the Python
fold of PartitionEngine: byte for byte on large seeded streams, whatever the batch cuts."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import numpy as np

from tests.matching.order_requests import Feed, random_feed
from tradex.domain.commands import FillLeg
from tradex.domain.ids import event_id
from tradex.domain.orders import CancelOrderRequest, NewOrder
from tradex.domain.types import Liquidity, OrderKind, Side, StpMode
from tradex.infra.partitioner import murmur2
from tradex.infra.stage import Output
from tradex.matching import _matcher_wire as native
from tradex.matching import batch, wire
from tradex.matching import constants as k
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, InputRecord, PartitionEngine, Topics
from tradex.schemas.codec import Codec, EnvelopeFields

CONFIG = BookConfig(orders_max=1 << 12, price_levels_max=1 << 16)
TOPICS = Topics("or", "ee", "st", "dl")
SETTLEMENT_PARTITIONS = 5
CODEC = Codec.offline()
OUT = OutputBuffers(CONFIG.orders_max)
FEED_RECORDS = 100_000
INSTRUMENTS = (1, 2, 3, 5, 8, 13)


def engine(fast: bool, partition: int = 3) -> PartitionEngine:
    eng = PartitionEngine(partition, CODEC, TOPICS, SETTLEMENT_PARTITIONS, OUT, CONFIG, fast=fast)
    assert (eng._fast is not None) == fast
    return eng


def odd_records(feed: Feed, rng: random.Random) -> None:
    """Records only the Python path reads, or nobody can: every dead-letter reason, a
    request with non-ASCII envelope text, a trace parent, an instrument without rules,
    negative and large account ids."""
    n = len(feed.records)
    t = feed.now()
    choice = rng.randrange(10)
    order = NewOrder(900_000 + n, 7, 2, Side.BUY, OrderKind.GTC, 100, 1, 0, StpMode.NONE, 1, 2, t)
    if choice == 0:
        feed.raw(b"2", b"\x00garbage")  # undecodable
    elif choice == 1:
        feed.raw(b"2", b"")  # empty
    elif choice == 2:
        leg = FillLeg(7, 1, 2, 2, Side.BUY, 100, 1, Liquidity.MAKER, t)
        fields = EnvelopeFields(event_id(t, 1, 0, n, 0), "c", "r", "x", 0)
        feed.raw(b"2", CODEC.encode_domain(leg, fields).data)  # unexpected type
    elif choice == 3:
        feed.new(900_000 + n, 7, 3, "SELL", 100, 1)
        feed.records[-1] = (b"2", feed.records[-1][1])  # misrouted
    elif choice == 4:
        fields = EnvelopeFields(event_id(t, 0, 0, n, 0), f"ç{n}", f"corr-ü{n}", "accounts/0", 0,
                                "00-trace-é")  # fmt: skip
        feed.raw(b"2", CODEC.encode_domain(order, fields).data)  # non-ASCII: Python decodes
    elif choice == 5:
        fields = EnvelopeFields(event_id(t, 0, 0, n, 0), f"c{n}", f"r{n}", "accounts/0", 0,
                                f"00-{n:032x}-{n:016x}-01")  # fmt: skip
        feed.raw(b"2", CODEC.encode_domain(order, fields).data)  # a trace parent (ASCII)
    elif choice == 6:
        feed.new(900_000 + n, 7, 77, "BUY", 100, 1)  # instrument 77 never has rules
    elif choice == 7:
        feed.cancel(5, 7, 77)
    elif choice == 8:  # a system account and a large one: settlement keys and routes
        side = rng.choice(("BUY", "SELL"))
        feed.new(900_000 + n, rng.choice((-3, 10**15 + 7)), 2, side, 100, 2)
    else:
        feed.raw(None, CODEC.encode_domain(
            CancelOrderRequest(1, 1, 2, t), EnvelopeFields("e", "c", "r", "p", 0)
        ).data)  # fmt: skip  # no key: misrouted


def mixed_feed(seed: int, records: int) -> Feed:
    """``random_feed`` with odd records sprinkled in (about 1 %), and an instrument whose
    requests come before its rules."""
    rng = random.Random(seed)
    base = random_feed(seed, records, instruments=INSTRUMENTS, jitter_ms=30)
    feed = Feed(CODEC, jitter_ms=30, seed=seed)
    feed.new(1, 1, 21, "BUY", 100, 1)  # 21 has no rules yet: UNKNOWN_INSTRUMENT
    for key, value in base.records:
        feed.raw(key, value)
        if rng.random() < 0.01:
            odd_records(feed, rng)
        if len(feed.records) == records // 2:
            feed.rules(21)  # from here on, 21 has a book
            feed.new(2, 1, 21, "SELL", 100, 3)
            feed.new(3, 2, 21, "BUY", 101, 2)
    return feed


def cut_points(rng: random.Random, n: int) -> list[int]:
    cuts: list[int] = []
    at = 0
    while at < n:
        at += rng.choice((1, 2, 7, 50, 500, 3_000))
        cuts.append(min(at, n))
    return cuts


def run(eng: PartitionEngine, inputs: list[InputRecord], cuts: list[int]) -> list[Output]:
    outputs: list[Output] = []
    start = 0
    for stop in cuts:
        outputs += eng.apply(inputs[start:stop])
        start = stop
    return outputs


def test_fast_fold_writes_the_python_folds_bytes_on_a_large_seeded_stream() -> None:
    feed = mixed_feed(20261202, FEED_RECORDS)
    inputs = feed.inputs(partition=3, first_offset=17)
    rng = random.Random(5)
    slow, fast = engine(fast=False), engine(fast=True)
    want = run(slow, inputs, cut_points(rng, len(inputs)))
    got = run(fast, inputs, cut_points(rng, len(inputs)))  # other cuts: boundaries do not matter
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"output {i} differs:\n fast   {CODEC.decode(g.value)}\n python {CODEC.decode(w.value)}"  # fmt: skip
    assert fast.state_bytes() == slow.state_bytes()
    assert fast.stats == slow.stats
    # The stream exercised what the fast fold does differently (a test that cannot fail
    # proves nothing): every dead-letter reason, Python-decoded requests, unknown
    # instruments, every engine record type and the three settlements, hard-limited markets.
    names = Counter(CODEC.decode(o.value).subject.rsplit(".", 1)[-1] for o in got)
    letters = Counter(CODEC.decode(o.value).record["reason"] for o in got if o.topic == "dl")
    assert set(letters) == {"undecodable", "empty", "unexpected type", "misrouted"}, letters
    assert len(names) == 14, names  # 10 engine types, 3 settlements, DeadLetter
    assert names["Trade"] > 10_000
    assert names["AmendApplied"] > 100
    confirmed = [r for r in (CODEC.decode(o.value).record for o in got)
                 if r["envelope"]["type"] == "AmendConfirmed"]  # fmt: skip
    decrements = [r for r in confirmed if r["amend_time_ns"] < 0]
    assert len(confirmed) - len(decrements) > 100
    assert len(decrements) > 100  # a self-trade prevention decrement is confirmed too
    assert len({(r["order_id"], r["amend_time_ns"]) for r in decrements}) == len(decrements)
    records = [CODEC.decode(o.value).record for o in got]
    halted_kept = [  # an amend of a live order refused for a halt: its terms confirmed too
        b for a, b in itertools.pairwise(records)
        if a["envelope"]["type"] == "Rejected" and a["reason"] == "INSTRUMENT_HALTED"
        and a["request"] == "AmendOrder" and b["envelope"]["type"] == "AmendConfirmed"
    ]  # fmt: skip
    assert len(halted_kept) > 50
    rejected = Counter(
        (r["reason"], r["request"]) for r in (CODEC.decode(o.value).record for o in got)
        if r["envelope"]["type"] == "Rejected"
    )  # fmt: skip
    assert rejected[("UNKNOWN_INSTRUMENT", "NewOrder")] > 50
    assert rejected[("UNKNOWN_INSTRUMENT", "CancelOrderRequest")] > 50
    assert sum(n for (reason, _), n in rejected.items() if reason == "UNKNOWN_ORDER") > 100
    traced = [o for o in got if "00-trace-é" in str(CODEC.decode(o.value).record["envelope"])]
    assert len(traced) > 50  # records caused by Python-decoded requests carry their text
    assert fast.stats.trades == names["Trade"]
    keys = {o.key for o in got if o.topic == "st"}
    assert {b"-3", str(10**15 + 7).encode()} <= keys


def test_an_amended_order_keeps_its_self_trade_prevention() -> None:
    """An amend carries its order's mode (the account sends it): a DECREMENT buy moved
    across the book onto its own account's resting sell shrinks both instead of trading,
    in both folds, and each decrement is confirmed to the account."""
    feed = Feed(CODEC, jitter_ms=0, seed=1)
    feed.rules(2)
    feed.new(1, 7, 2, "SELL", 101, 3, stp="DECREMENT")
    feed.new(2, 7, 2, "BUY", 99, 5, stp="DECREMENT")
    feed.amend(2, 7, 2, 101, 0, "DECREMENT")
    for fast in (False, True):
        got = [CODEC.decode(o.value).record for o in engine(fast).apply(feed.inputs(3))]
        types = [r["envelope"]["type"] for r in got]
        assert "Trade" not in types, types
        decremented = [r for r in got if r["envelope"]["type"] == "AmendConfirmed"
                       and r["amend_time_ns"] < 0]  # fmt: skip
        # the sell (3 lots) ends: only the buy is decremented, 5 -> 2 lots, and rests
        assert [(r["order_id"], r["qty"]) for r in decremented] == [(2, 2)], got
    plain = Feed(CODEC, jitter_ms=0, seed=1)  # an amend without the mode trades with itself
    plain.rules(2)
    plain.new(1, 7, 2, "SELL", 101, 3, stp="DECREMENT")
    plain.new(2, 7, 2, "BUY", 99, 5, stp="DECREMENT")
    plain.amend(2, 7, 2, 101, 0)
    types = [CODEC.decode(o.value).record["envelope"]["type"]
             for o in engine(True).apply(plain.inputs(3))]  # fmt: skip
    assert "Trade" in types


def test_decoder_rows_are_parse_requests_rows() -> None:
    """The C decoder's command rows and request fields against wire.parse_request, record
    by record; what it leaves to Python is exactly what it cannot read."""
    feed = mixed_feed(7, 5_000)
    fold = engine(fast=True)._fast
    assert fold is not None
    keys = [key for key, _ in feed.records]
    values: list[bytes | None] = [value for _, value in feed.records]
    cmds = np.empty((len(values), native.CMD_W), np.int64)
    meta = np.empty((len(values), native.META_W), np.int64)
    left = fold.decoder.decode(values, keys, cmds, meta)
    assert left == int(np.count_nonzero(meta[:, native.M_STATUS] == native.STATUS_PYTHON))
    decoded = 0
    for i, (key, value) in enumerate(feed.records):
        parsed = wire.parse_request(CODEC, key, value)
        if meta[i, native.M_STATUS] == native.STATUS_PYTHON:
            assert isinstance(parsed, wire.Malformed) or not parsed.correlation_id.isascii()
            continue
        assert isinstance(parsed, wire.Request)
        decoded += 1
        row = list(parsed.row)
        if parsed.kind == wire.REQ_AMEND:  # the kernel resolves it (the Python fold: Book.order)
            row[0] = k.OP_AMEND_KEEP
        assert cmds[i].tolist() == row
        m = meta[i]
        assert (m[native.M_KIND], m[native.M_INSTRUMENT], m[native.M_TIME]) == (
            parsed.kind, parsed.instrument_id, parsed.time_ns,
        )  # fmt: skip
        assert (m[native.M_PRICE], m[native.M_ORDER_ID], m[native.M_ACCOUNT]) == (
            parsed.price, parsed.order_id, parsed.account_id,
        )  # fmt: skip
        for column, text in ((native.M_EID_AT, parsed.causation_id),
                             (native.M_CORR_AT, parsed.correlation_id),
                             (native.M_TRACE_AT, parsed.trace_parent)):  # fmt: skip
            at, size = int(m[column]), int(m[column + 1])
            assert value[at : at + size].decode() == text
        if parsed.kind == wire.REQ_NEW:
            assert fold.order_kinds[parsed.order_kind] == m[native.M_ORDER_KIND]
    assert decoded > 4_900
    assert left > 20


def test_market_requests_map_their_protection_price_to_the_kernels_hard_limit() -> None:
    assert wire.market_fields(105, 0) == (105, k.PROTECTION_NONE)
    assert wire.market_fields(105, 3) == (105, 3)
    assert wire.market_fields(0, 0)[0] < 0  # the kernel rejects it: bad price
    assert wire.market_fields(-4, 2) == (-4, 2)
    assert wire.market_fields(105, -1) == (105, wire.PROTECTION_BAD)
    assert wire.PROTECTION_BAD < k.PROTECTION_NONE


def test_emitter_routes_settlements_with_kafkas_murmur2() -> None:
    rng = random.Random(3)
    for _ in range(2_000):
        key = str(rng.randrange(-(10**12), 10**12)).encode()
        assert native.murmur2(key) == murmur2(key)
    for key in (b"", b"1", b"12", b"123", b"1234", b"12345"):
        assert native.murmur2(key) == murmur2(key)


def test_without_the_c_codec_the_engine_folds_in_python() -> None:
    eng = PartitionEngine(0, Codec.offline(native=False), TOPICS, 1, OUT, CONFIG)
    assert eng._fast is None
    assert batch.FastFold.of(eng) is None


def test_counting_without_outputs_leaves_the_engine_as_applying_does() -> None:
    """count_columns (the fast fold without building outputs: the audit's re-run) against
    apply_columns of the fast fold and of its Python twin: the same chain tails, state,
    stats and output counts batch by batch, whatever the cuts."""
    feed = mixed_feed(20261203, 20_000)
    inputs = feed.inputs(partition=3, first_offset=5)
    rng = random.Random(11)
    counting, applying = engine(fast=True), engine(fast=True)
    slow, slow_counting = engine(fast=False), engine(fast=False)
    start = 0
    letters = 0
    for stop in cut_points(rng, len(inputs)):
        part = inputs[start:stop]
        columns = (
            [r.offset for r in part], [r.key for r in part], [r.value for r in part],
            lambda i, part=part: part[i].timestamp_ms,
        )  # fmt: skip
        counted = counting.count_columns(*columns)
        outputs = slow.apply_columns(*columns)
        assert counted == len(applying.apply_columns(*columns)) == len(outputs)
        assert slow_counting.count_columns(*columns) == counted
        letters += sum(1 for o in outputs if o.topic == TOPICS.dead_letters)
        start = stop
    assert letters > 10  # dead letters counted too (built in Python, never chained)
    assert counting.engine_prev == applying.engine_prev
    assert counting.settle_prev == applying.settle_prev
    assert counting.state_bytes() == applying.state_bytes() == slow.state_bytes()
    assert slow_counting.state_bytes() == slow.state_bytes()
    assert counting.stats == applying.stats == slow.stats
    assert counting.stats.trades > 1_000
