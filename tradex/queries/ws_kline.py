"""When a kline stream's candle closes (pure: no I/O, no clock of its own).

Binance's ``<symbol>@kline_<interval>`` (and TradeX's ``candles:<interval>``) send the
candle of the last trade as it changes with ``x`` false, and once its interval has ended,
by the clock, its final state once with ``x`` true. One :class:`KlineCloser` per shared
render (instrument, interval, format: :class:`.ws_fanout.Render`) remembers the candle
sent open and not closed yet; the gateway asks it, with the service's clock, whether that
candle is due (:meth:`KlineCloser.due`, from the feed's loop) and, before sending a candle,
whether an older one must close first (:meth:`KlineCloser.close_before`). An interval
without trades has no candle and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradex.queries.ws_format import Entry

CLOSE_GRACE_NS = 250_000_000  # after an interval's end: a trade of its last moment reaching Redis


def interval_ended(opened_ns: int, interval_ns: int, now_ns: int, grace_ns: int) -> bool:
    """The interval opened at ``opened_ns`` has ended (plus ``grace_ns``) by ``now_ns``."""
    assert interval_ns > 0, interval_ns
    assert grace_ns >= 0, grace_ns
    return now_ns >= opened_ns + interval_ns + grace_ns


def last_trade_before(entries: list[Entry], end_ns: int) -> tuple[int, int] | None:
    """(seq, trade id) of the last trade entry before ``end_ns``, or None (no such entry;
    entries without trade fields, a new subscriber's placeholder, are skipped)."""
    for seq, fields in reversed(entries):
        time_ns = fields.get("time_ns")
        if time_ns is not None and "trade_id" in fields and int(time_ns) < end_ns:
            return seq, int(fields["trade_id"])
    return None


@dataclass
class OpenCandle:
    """The candle sent with ``x`` false and not closed yet: its open time, and the
    sequence and id of the last trade it was sent with (for its closing message)."""

    opened_ns: int
    seq: int
    trade_id: int


class KlineCloser:
    """The open candle of one shared kline render."""

    def __init__(self, interval_ns: int, grace_ns: int = CLOSE_GRACE_NS) -> None:
        assert interval_ns > 0, interval_ns
        assert grace_ns >= 0, grace_ns
        self.interval_ns = interval_ns
        self.grace_ns = grace_ns
        self.open: OpenCandle | None = None

    def ended(self, opened_ns: int, now_ns: int) -> bool:
        return interval_ended(opened_ns, self.interval_ns, now_ns, self.grace_ns)

    def close_before(self, opened_ns: int, entries: list[Entry]) -> OpenCandle | None:
        """A candle opened at ``opened_ns`` is about to be sent: the open candle of an
        earlier interval, to close first (forgotten here), with the last trade of
        ``entries`` inside it when there is one; else None."""
        candle = self.open
        if candle is None or candle.opened_ns >= opened_ns:
            return None
        self.open = None
        last = last_trade_before(entries, candle.opened_ns + self.interval_ns)
        if last is not None and last[0] >= candle.seq:
            return OpenCandle(candle.opened_ns, *last)
        return candle

    def sent(self, opened_ns: int, seq: int, trade_id: int, now_ns: int) -> bool:
        """The candle opened at ``opened_ns`` is sent now: whether it is closed already
        (its interval ended: ``x`` true, a late trade's correction or a new subscriber's
        first candle) — else it is the open one until it closes."""
        closed = self.ended(opened_ns, now_ns)
        if not closed and (self.open is None or self.open.opened_ns <= opened_ns):
            self.open = OpenCandle(opened_ns, seq, trade_id)
        return closed

    def due(self, now_ns: int) -> OpenCandle | None:
        """The open candle whose interval has ended by ``now_ns``, to close (forgotten
        here); else None."""
        candle = self.open
        if candle is None or not self.ended(candle.opened_ns, now_ns):
            return None
        self.open = None
        return candle
