"""The stream rewrites, record by record (pure: no engine, no Kafka)."""

from __future__ import annotations

from tests.matching.order_requests import T0_NS, Feed
from tradex.audit.timetravel import AsOf
from tradex.backtest.rewrite import Changes, Halt, Rewriter
from tradex.domain.orders import InstrumentRules, NewOrder
from tradex.domain.types import InstrumentStatus, StpMode
from tradex.schemas.codec import Codec

CODEC = Codec.offline()


def feed() -> Feed:
    f = Feed(CODEC)
    f.rules(1, band_bps=100)  # offset 0
    f.new(1, 1, 1, "SELL", 100, 5)  # 1
    f.rules(2)  # 2
    f.new(2, 2, 1, "BUY", 100, 5, stp="CANCEL_MAKER")  # 3
    f.rules(1, band_bps=200)  # 4
    f.new(3, 2, 1, "BUY", 99, 1)  # 5
    return f


def rewrite(changes: Changes) -> list[list[object]]:
    """What each input becomes, decoded (one list per input)."""
    rewriter = Rewriter(CODEC, changes)
    out = []
    for offset, (key, value) in enumerate(feed().records):
        decoded = CODEC.decode_domain(value)
        records = rewriter.records(offset, decoded[1].event_time_ns, decoded, key, value)
        if changes.empty:
            assert records == [(key, value)]  # the same bytes
        out.append([CODEC.decode_domain(v or b"")[1] for _k, v in records])
    return out


def test_nothing_changed_keeps_every_record_as_it_is() -> None:
    assert len(rewrite(Changes())) == 6


def test_band_replaces_the_instruments_rules_only() -> None:
    got = rewrite(Changes(band={1: 0}))
    bands = [(r.instrument_id, r.price_band_bps) for rs in got for r in rs
             if isinstance(r, InstrumentRules)]  # fmt: skip
    assert bands == [(1, 0), (2, 0), (1, 0)]


def test_stp_applies_to_every_new_order() -> None:
    got = rewrite(Changes(stp=StpMode.CANCEL_BOTH))
    modes = [r.stp_mode for rs in got for r in rs if isinstance(r, NewOrder)]
    assert modes == [StpMode.CANCEL_BOTH] * 3


def test_a_halt_inserts_rules_copies_and_halts_rules_arriving_meanwhile() -> None:
    start = AsOf(time_ns=T0_NS + 3 * 1_000_000)  # the request time of offset 3
    got = rewrite(Changes(halts=(Halt(1, start, AsOf(offset=5)),)))
    assert [len(rs) for rs in got] == [1, 1, 1, 2, 1, 2]
    halted, order = got[3]
    assert isinstance(halted, InstrumentRules)
    assert (halted.instrument_id, halted.status, halted.price_band_bps) == (
        1, InstrumentStatus.HALTED, 100)  # fmt: skip
    assert halted.event_time_ns == order.event_time_ns  # at the input's time
    rules = got[4][0]
    assert isinstance(rules, InstrumentRules)
    assert (rules.status, rules.price_band_bps) == (InstrumentStatus.HALTED, 200)
    resumed = got[5][0]
    assert isinstance(resumed, InstrumentRules)
    assert (resumed.status, resumed.price_band_bps) == (InstrumentStatus.TRADING, 200)


def test_a_halt_before_the_instrument_has_rules_inserts_nothing_at_its_start() -> None:
    got = rewrite(Changes(halts=(Halt(2, AsOf(offset=0), AsOf(offset=3)),)))
    assert [len(rs) for rs in got] == [1, 1, 1, 2, 1, 1]
    first, resumed = got[2][0], got[3][0]
    assert isinstance(first, InstrumentRules)
    assert isinstance(resumed, InstrumentRules)
    assert (first.status, resumed.status) == (InstrumentStatus.HALTED, InstrumentStatus.TRADING)
