"""When a kline stream's candle closes: at its interval's end by the clock (after the
grace), or before a candle of a later interval; once; an interval without a candle sends
nothing; a candle sent after its interval ended is already closed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradex.queries.ws_kline import KlineCloser, OpenCandle, interval_ended, last_trade_before

MINUTE_NS = 60_000_000_000
GRACE_NS = 250_000_000


def _trade(seq: int, trade_id: int, time_ns: int) -> tuple[int, dict[str, int]]:
    return seq, {"trade_id": trade_id, "time_ns": time_ns}


def test_an_interval_ends_at_its_end_plus_the_grace() -> None:
    assert not interval_ended(0, MINUTE_NS, MINUTE_NS + GRACE_NS - 1, GRACE_NS)
    assert interval_ended(0, MINUTE_NS, MINUTE_NS + GRACE_NS, GRACE_NS)
    assert interval_ended(0, MINUTE_NS, MINUTE_NS, 0)


def test_last_trade_before_skips_later_trades_and_placeholders() -> None:
    entries = [_trade(5, 50, 10), _trade(6, 51, MINUTE_NS - 1), _trade(7, 52, MINUTE_NS)]
    assert last_trade_before(entries, MINUTE_NS) == (6, 51)
    assert last_trade_before(entries, 11) == (5, 50)
    assert last_trade_before(entries, 10) is None
    assert last_trade_before([(9, {})], MINUTE_NS) is None


def test_the_open_candle_closes_once_at_its_intervals_end() -> None:
    closer = KlineCloser(MINUTE_NS, GRACE_NS)
    assert closer.due(0) is None  # nothing sent: nothing to close
    assert closer.sent(0, 3, 30, now_ns=10) is False
    assert closer.sent(0, 4, 31, now_ns=20) is False
    assert closer.due(MINUTE_NS) is None  # within the grace
    assert closer.due(MINUTE_NS + GRACE_NS) == OpenCandle(0, 4, 31)
    assert closer.due(5 * MINUTE_NS) is None  # once


def test_a_later_intervals_candle_closes_the_open_one_first() -> None:
    closer = KlineCloser(MINUTE_NS, GRACE_NS)
    closer.sent(0, 3, 30, now_ns=10)
    assert closer.close_before(0, [_trade(4, 31, 20)]) is None  # the same interval
    # a batch with the interval's last trade and the next one's first
    batch = [_trade(5, 32, MINUTE_NS - 5), _trade(6, 33, MINUTE_NS + 5)]
    assert closer.close_before(MINUTE_NS, batch) == OpenCandle(0, 5, 32)
    assert closer.sent(MINUTE_NS, 6, 33, now_ns=MINUTE_NS + 10) is False
    assert closer.due(MINUTE_NS + 20) is None  # closed already; the new one is open
    # the next trade three minutes later: no candle for the two empty minutes
    assert closer.close_before(4 * MINUTE_NS, [_trade(7, 34, 4 * MINUTE_NS)]) == OpenCandle(
        MINUTE_NS, 6, 33
    )


def test_a_candle_sent_after_its_interval_is_closed_already() -> None:
    closer = KlineCloser(MINUTE_NS, GRACE_NS)
    # a new subscriber's first candle, its interval long over
    assert closer.sent(0, 3, 30, now_ns=3 * MINUTE_NS) is True
    assert closer.due(4 * MINUTE_NS) is None
    # a late trade of a closed interval while a later one is open: a correction, closed
    closer.sent(2 * MINUTE_NS, 4, 31, now_ns=2 * MINUTE_NS + 1)
    assert closer.close_before(MINUTE_NS, []) is None
    assert closer.sent(MINUTE_NS, 5, 32, now_ns=2 * MINUTE_NS + GRACE_NS) is True
    assert closer.due(3 * MINUTE_NS + GRACE_NS) == OpenCandle(2 * MINUTE_NS, 4, 31)


@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 3)), max_size=50))
def test_every_sent_interval_closes_exactly_once_in_order(steps) -> None:
    """Trades (minute, then how many minutes the clock moves on, each a tick) through the
    closer: each interval sent open is closed exactly once, in order, and never while the
    clock is inside it."""
    closer = KlineCloser(MINUTE_NS, GRACE_NS)
    now_ns, minute = 0, 0
    opened: list[int] = []
    closed: list[int] = []
    for seq, (jump, wait) in enumerate(steps, start=1):
        minute = max(minute, now_ns // MINUTE_NS) + jump
        now_ns = max(now_ns, minute * MINUTE_NS)
        earlier = closer.close_before(minute * MINUTE_NS, [_trade(seq, seq, now_ns)])
        if earlier is not None:
            closed.append(earlier.opened_ns)
        if not closer.sent(minute * MINUTE_NS, seq, seq, now_ns) and (
            not opened or opened[-1] != minute * MINUTE_NS
        ):
            opened.append(minute * MINUTE_NS)
        now_ns += wait * MINUTE_NS
        due = closer.due(now_ns)
        if due is not None:
            assert now_ns >= due.opened_ns + MINUTE_NS + GRACE_NS
            closed.append(due.opened_ns)
    last = closer.due(now_ns + 2 * MINUTE_NS)
    if last is not None:
        closed.append(last.opened_ns)
    assert closed == opened
