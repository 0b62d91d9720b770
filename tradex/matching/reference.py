"""The slow, obvious twin of the jitted engine: same semantics, same output records.

Dicts of price -> list (FIFO), ``max``/``min`` for the best price, no cleverness. It exists
to be read and to be compared with the engine (tests replay >= 100k random commands through
both and compare every record and the state hash). Keep it obvious rather than fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tradex.matching import constants as k
from tradex.matching.book import BatchResult, CapacityError
from tradex.matching.dtypes import COMMAND_DTYPE, EVENT_DTYPE, L2_DTYPE, TRADE_DTYPE
from tradex.matching.snapshot import BookState, SnapshotError, decode_snapshot

PRICE_INF = 1 << 62


class Cmd(NamedTuple):
    """One command as Python ints (a row of COMMAND_DTYPE, same field order)."""

    op: int
    side: int
    order_id: int
    owner: int
    price: int
    qty: int
    stp_mode: int
    protection_ticks: int
    band_bps: int
    halted: int
    timestamp_ns: int


assert Cmd._fields == COMMAND_DTYPE.names


@dataclass(eq=False)  # identity: list.remove(order) must not compare every field
class RefOrder:
    order_id: int
    owner: int
    side: int
    price: int
    remaining: int
    filled: int


def records(rows: list[tuple[int, ...]], dtype: np.dtype) -> np.ndarray:
    """Tuples of ints -> a structured array of an all-int64 dtype (via a plain int64 array:
    numpy converts that much faster than tuples into structured records)."""
    width = len(dtype.names or ())
    assert dtype.itemsize == 8 * width
    flat = np.array(rows, dtype=np.int64).reshape(len(rows), width)
    return flat.view(dtype).reshape(len(rows))


def crosses(side: int, level_price: int, limit: int) -> bool:
    return level_price <= limit if side == k.SIDE_BUY else level_price >= limit


class ReferenceBook:
    def __init__(
        self,
        orders_max: int = k.ORDERS_MAX_DEFAULT,
        price_levels_max: int = k.PRICE_LEVELS_MAX_DEFAULT,
    ) -> None:
        self.orders_max = orders_max
        self.price_levels_max = price_levels_max
        self.bids: dict[int, list[RefOrder]] = {}
        self.asks: dict[int, list[RefOrder]] = {}
        self.by_id: dict[int, RefOrder] = {}
        self.seq = 0
        self.last_trade = 0
        self.band_bps = 0
        self.halted = 0
        self.price_lo = 0
        self._trades: list[tuple[int, ...]] = []
        self._events: list[tuple[int, ...]] = []
        self._l2: list[tuple[int, ...]] = []
        self._ci = 0
        self._ts = 0
        self._taker_filled = 0
        self._stp_stop = False
        self._stp_qty = 0

    # --- outputs ----------------------------------------------------------------------

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _event(
        self,
        kind: int,
        oid: int,
        owner: int,
        side: int,
        price: int,
        qty: int,
        filled: int,
        reason: int,
    ) -> None:
        seq = self._next_seq()
        self._events.append(
            (seq, self._ci, kind, oid, owner, side, price, qty, filled, reason, self._ts)
        )

    def _trade(
        self, maker: RefOrder, taker_id: int, taker_owner: int, side: int, price: int, qty: int
    ) -> None:
        seq = self._next_seq()
        self._trades.append(
            (
                seq,
                self._ci,
                maker.order_id,
                taker_id,
                maker.owner,
                taker_owner,
                side,
                price,
                qty,
                self._ts,
            )
        )

    def _delta(self, side: int, price: int, qty: int) -> None:
        seq = self._next_seq()
        self._l2.append((seq, self._ci, side, price, qty, self._ts))

    def _reject(self, c: Cmd, reason: int) -> None:
        self._event(
            k.EV_REJECTED,
            c.order_id,
            c.owner,
            c.side,
            c.price,
            c.qty,
            0,
            reason,
        )

    # --- book helpers -----------------------------------------------------------------

    @property
    def live(self) -> int:
        return len(self.by_id)

    def best_bid(self) -> int:
        return max(self.bids) if self.bids else 0

    def best_ask(self) -> int:
        return min(self.asks) if self.asks else 0

    def order(self, order_id: int) -> tuple[int, int, int, int] | None:
        """(side, price, remaining, filled) of a resting order, None if not in the book."""
        found = self.by_id.get(order_id)
        if found is None:
            return None
        return found.side, found.price, found.remaining, found.filled

    def _side_book(self, side: int) -> dict[int, list[RefOrder]]:
        return self.bids if side == k.SIDE_BUY else self.asks

    def _level_qty(self, side: int, price: int) -> int:
        return sum(o.remaining for o in self._side_book(side).get(price, []))

    def _in_window(self, price: int) -> bool:
        return self.price_lo <= price < self.price_lo + self.price_levels_max

    def _reference_price(self) -> int:
        if self.last_trade > 0:
            return self.last_trade
        if self.bids and self.asks:
            return (self.best_bid() + self.best_ask()) // 2
        return 0

    def _outside_band(self, price: int) -> bool:
        ref = self._reference_price()
        if self.band_bps == 0 or ref == 0:
            return False
        return abs(price - ref) * 10_000 > ref * self.band_bps

    def _best_opposite(self, side: int) -> int:
        return self.best_ask() if side == k.SIDE_BUY else self.best_bid()

    def _take_off(self, order: RefOrder) -> None:
        """Remove from its level (not from by_id)."""
        book = self._side_book(order.side)
        book[order.price].remove(order)
        if not book[order.price]:
            del book[order.price]

    # --- matching ---------------------------------------------------------------------

    def _fok_check(self, side: int, limit: int, qty: int, owner: int, stp_mode: int) -> int:
        need = qty
        book = self.asks if side == k.SIDE_BUY else self.bids
        for price in sorted(book, reverse=side == k.SIDE_SELL):
            if not crosses(side, price, limit):
                break
            for o in book[price]:
                if stp_mode != k.STP_NONE and o.owner == owner:
                    return k.REASON_SELF_TRADE
                need -= o.remaining
                if need <= 0:
                    return k.REASON_NONE
        return k.REASON_FOK_UNFILLABLE

    def _match(
        self,
        taker_id: int,
        owner: int,
        side: int,
        taker_price: int,
        limit: int,
        rem: int,
        stp_mode: int,
    ) -> int:
        self._stp_stop = False
        self._stp_qty = 0
        maker_side = k.SIDE_SELL if side == k.SIDE_BUY else k.SIDE_BUY
        book = self._side_book(maker_side)
        while rem > 0 and book:
            level_price = min(book) if side == k.SIDE_BUY else max(book)
            if not crosses(side, level_price, limit):
                break
            queue = book[level_price]
            qty_before = sum(o.remaining for o in queue)
            while rem > 0 and queue:
                mk = queue[0]
                if stp_mode != k.STP_NONE and mk.owner == owner:
                    if stp_mode == k.STP_CANCEL_NEWEST:
                        self._stp_stop, self._stp_qty, rem = True, rem, 0
                        break
                    if stp_mode in (k.STP_CANCEL_OLDEST, k.STP_CANCEL_BOTH):
                        self._event(
                            k.EV_CANCELLED,
                            mk.order_id,
                            mk.owner,
                            maker_side,
                            level_price,
                            mk.remaining,
                            mk.filled,
                            k.REASON_SELF_TRADE,
                        )
                        queue.pop(0)
                        del self.by_id[mk.order_id]
                        if stp_mode == k.STP_CANCEL_BOTH:
                            self._stp_stop, self._stp_qty, rem = True, rem, 0
                            break
                        continue
                    dec = min(rem, mk.remaining)
                    if mk.remaining == dec:
                        self._event(
                            k.EV_CANCELLED,
                            mk.order_id,
                            mk.owner,
                            maker_side,
                            level_price,
                            dec,
                            mk.filled,
                            k.REASON_SELF_TRADE,
                        )
                        queue.pop(0)
                        del self.by_id[mk.order_id]
                    else:
                        mk.remaining -= dec
                        self._event(
                            k.EV_DECREMENTED,
                            mk.order_id,
                            mk.owner,
                            maker_side,
                            level_price,
                            mk.remaining,
                            mk.filled,
                            k.REASON_SELF_TRADE,
                        )
                    if rem == dec:
                        self._stp_stop, self._stp_qty, rem = True, dec, 0
                        break
                    rem -= dec
                    self._event(
                        k.EV_DECREMENTED,
                        taker_id,
                        owner,
                        side,
                        taker_price,
                        rem,
                        self._taker_filled,
                        k.REASON_SELF_TRADE,
                    )
                    continue
                fill = min(rem, mk.remaining)
                self._trade(mk, taker_id, owner, side, level_price, fill)
                rem -= fill
                self._taker_filled += fill
                self.last_trade = level_price
                mk.filled += fill
                mk.remaining -= fill
                if mk.remaining == 0:
                    queue.pop(0)
                    del self.by_id[mk.order_id]
                    self._event(
                        k.EV_FILLED,
                        mk.order_id,
                        mk.owner,
                        maker_side,
                        level_price,
                        0,
                        mk.filled,
                        k.REASON_NONE,
                    )
            qty_after = sum(o.remaining for o in queue)
            if not queue:
                del book[level_price]
            if qty_after != qty_before:
                self._delta(maker_side, level_price, qty_after)
        return rem

    # --- commands ---------------------------------------------------------------------

    def _new_order(self, c: Cmd) -> None:
        op, side, oid, owner = c.op, c.side, c.order_id, c.owner
        price, qty, stp_mode, prot = (
            c.price,
            c.qty,
            c.stp_mode,
            c.protection_ticks,
        )
        may_rest = op in (k.OP_LIMIT_GTC, k.OP_POST_ONLY)
        reason = k.REASON_NONE
        if side not in (k.SIDE_BUY, k.SIDE_SELL):
            reason = k.REASON_BAD_SIDE
        elif oid <= 0:
            reason = k.REASON_BAD_ID
        elif qty <= 0:
            reason = k.REASON_BAD_QTY
        elif op == k.OP_MARKET and price < 0:
            reason = k.REASON_BAD_PRICE
        elif op == k.OP_MARKET and prot < k.PROTECTION_NONE:
            reason = k.REASON_BAD_PROTECTION
        elif op != k.OP_MARKET and price <= 0:
            reason = k.REASON_BAD_PRICE
        elif not 0 <= stp_mode <= k.STP_MODE_MAX:
            reason = k.REASON_BAD_STP
        elif self.halted:
            reason = k.REASON_HALTED
        elif oid in self.by_id:
            reason = k.REASON_DUPLICATE_ID
        elif may_rest and self.live > 0 and not self._in_window(price):
            reason = k.REASON_PRICE_OUT_OF_RANGE
        elif op != k.OP_MARKET and self._outside_band(price):
            reason = k.REASON_PRICE_BAND
        elif op == k.OP_POST_ONLY:
            best = self._best_opposite(side)
            if best > 0 and crosses(side, best, price):
                reason = k.REASON_POST_ONLY_WOULD_TRADE
        if reason != k.REASON_NONE:
            self._reject(c, reason)
            return
        if may_rest and self.live >= self.orders_max:
            raise CapacityError(f"orders_max={self.orders_max} live orders reached")
        self._event(k.EV_ACCEPTED, oid, owner, side, price, qty, 0, k.REASON_NONE)
        limit = price
        if op == k.OP_MARKET:
            best = self._best_opposite(side)
            if prot == k.PROTECTION_NONE or best == 0:
                limit = PRICE_INF if side == k.SIDE_BUY else -PRICE_INF
            else:
                limit = best + prot if side == k.SIDE_BUY else best - prot
            if price > 0:  # the hard limit: a buy never above it, a sell never below
                limit = min(limit, price) if side == k.SIDE_BUY else max(limit, price)
        if op == k.OP_LIMIT_FOK:
            why = self._fok_check(side, limit, qty, owner, stp_mode)
            if why != k.REASON_NONE:
                self._event(k.EV_EXPIRED, oid, owner, side, price, qty, 0, why)
                return
        self._taker_filled = 0
        rem = self._match(oid, owner, side, price, limit, qty, stp_mode)
        filled = self._taker_filled
        if self._stp_stop:
            self._event(
                k.EV_CANCELLED, oid, owner, side, price, self._stp_qty, filled, k.REASON_SELF_TRADE
            )
        elif rem == 0:
            self._event(k.EV_FILLED, oid, owner, side, price, 0, filled, k.REASON_NONE)
        elif may_rest:
            if self.live == 0:
                self.price_lo = max(1, price - self.price_levels_max // 2)
            order = RefOrder(oid, owner, side, price, rem, filled)
            self._side_book(side).setdefault(price, []).append(order)
            self.by_id[oid] = order
            self._event(k.EV_RESTED, oid, owner, side, price, rem, filled, k.REASON_NONE)
            self._delta(side, price, self._level_qty(side, price))
        else:
            why = k.REASON_MARKET_REMAINDER if op == k.OP_MARKET else k.REASON_IOC_REMAINDER
            self._event(k.EV_EXPIRED, oid, owner, side, price, rem, filled, why)

    def _cancel(self, c: Cmd) -> None:
        order = self.by_id.get(c.order_id)
        if order is None:
            self._reject(c, k.REASON_UNKNOWN_ORDER)
            return
        if order.owner != c.owner:
            self._reject(c, k.REASON_NOT_OWNER)
            return
        self._take_off(order)
        del self.by_id[order.order_id]
        self._event(
            k.EV_CANCELLED,
            order.order_id,
            order.owner,
            order.side,
            order.price,
            order.remaining,
            order.filled,
            k.REASON_USER_CANCEL,
        )
        self._delta(order.side, order.price, self._level_qty(order.side, order.price))

    def _amend(self, c: Cmd) -> None:
        price, qty, stp_mode = c.price, c.qty, c.stp_mode
        order = self.by_id.get(c.order_id)
        keep = c.op == k.OP_AMEND_KEEP  # 0 price / 0 qty keep the order's; its side
        side = c.side
        reason = k.REASON_NONE
        if self.halted:
            reason = k.REASON_HALTED
            if order is not None and order.owner == c.owner and (keep or order.side == side):
                reason = k.REASON_AMEND_HALTED  # the requester's live order stays as it was
                side = order.side
        elif price < 0 or (price == 0 and not keep):
            reason = k.REASON_BAD_PRICE
        elif qty < 0 or (qty == 0 and not keep):
            reason = k.REASON_BAD_QTY
        elif not 0 <= stp_mode <= k.STP_MODE_MAX:
            reason = k.REASON_BAD_STP
        elif order is None:
            reason = k.REASON_UNKNOWN_ORDER
        if reason == k.REASON_NONE:
            assert order is not None
            if keep:
                side = order.side
                price = price if price != 0 else order.price
                qty = qty if qty != 0 else order.remaining + order.filled
            if order.owner != c.owner:
                reason = k.REASON_NOT_OWNER
            elif order.side != side:
                reason = k.REASON_SIDE_MISMATCH
            elif qty - order.filled <= 0:
                reason = k.REASON_AMEND_QTY_TOO_LOW
            elif price != order.price and not self._in_window(price):
                reason = k.REASON_PRICE_OUT_OF_RANGE
            elif price != order.price and self._outside_band(price):
                reason = k.REASON_PRICE_BAND
        if reason != k.REASON_NONE:
            if reason in k.AMEND_LIVE_REASONS:  # the order stays: the row carries its terms
                assert order is not None
                price, qty, filled = order.price, order.remaining, order.filled
            else:  # the fields as the checks saw them (an OP_AMEND_KEEP resolved once found)
                filled = 0
            self._event(k.EV_REJECTED, c.order_id, c.owner, side, price, qty, filled, reason)
            return
        assert order is not None
        new_rem = qty - order.filled
        if price == order.price and new_rem <= order.remaining:
            changed = new_rem != order.remaining
            order.remaining = new_rem
            self._event(
                k.EV_AMENDED,
                order.order_id,
                order.owner,
                order.side,
                price,
                new_rem,
                order.filled,
                k.REASON_NONE,
            )
            if changed:
                self._delta(order.side, price, self._level_qty(order.side, price))
            return
        old_price = order.price
        self._take_off(order)
        del self.by_id[order.order_id]
        self._event(
            k.EV_AMENDED,
            order.order_id,
            order.owner,
            order.side,
            price,
            new_rem,
            order.filled,
            k.REASON_NONE,
        )
        self._delta(order.side, old_price, self._level_qty(order.side, old_price))
        self._taker_filled = order.filled
        rem = self._match(order.order_id, order.owner, order.side, price, price, new_rem, stp_mode)
        filled = self._taker_filled
        if self._stp_stop:
            self._event(
                k.EV_CANCELLED,
                order.order_id,
                order.owner,
                order.side,
                price,
                self._stp_qty,
                filled,
                k.REASON_SELF_TRADE,
            )
        elif rem == 0:
            self._event(
                k.EV_FILLED,
                order.order_id,
                order.owner,
                order.side,
                price,
                0,
                filled,
                k.REASON_NONE,
            )
        else:
            if self.live == 0:
                self.price_lo = max(1, price - self.price_levels_max // 2)
            moved = RefOrder(order.order_id, order.owner, order.side, price, rem, filled)
            self._side_book(moved.side).setdefault(price, []).append(moved)
            self.by_id[moved.order_id] = moved
            self._event(
                k.EV_RESTED,
                moved.order_id,
                moved.owner,
                moved.side,
                price,
                rem,
                filled,
                k.REASON_NONE,
            )
            self._delta(moved.side, price, self._level_qty(moved.side, price))

    def _rules(self, c: Cmd) -> None:
        band, halted = c.band_bps, c.halted
        if band < 0 or halted not in (0, 1):
            self._reject(c, k.REASON_BAD_RULES)
            return
        self.band_bps, self.halted = band, halted
        self._event(k.EV_RULES, 0, 0, halted, 0, band, 0, k.REASON_NONE)

    def process(self, cmds: np.ndarray) -> BatchResult:
        """Process every command; return the same records the engine would."""
        if cmds.dtype != COMMAND_DTYPE:
            raise TypeError(f"commands must have dtype COMMAND_DTYPE, got {cmds.dtype}")
        self._trades, self._events, self._l2 = [], [], []
        for ci, row in enumerate(cmds.tolist()):
            c = Cmd(*row)
            self._ci, self._ts = ci, c.timestamp_ns
            op = c.op
            if k.OP_LIMIT_GTC <= op <= k.OP_MARKET:
                self._new_order(c)
            elif op == k.OP_CANCEL:
                self._cancel(c)
            elif op in (k.OP_AMEND, k.OP_AMEND_KEEP):
                self._amend(c)
            elif op == k.OP_RULES:
                self._rules(c)
            else:
                self._reject(c, k.REASON_BAD_OP)
        return BatchResult(
            cmds.shape[0],
            records(self._trades, TRADE_DTYPE),
            records(self._events, EVENT_DTYPE),
            records(self._l2, L2_DTYPE),
        )

    # --- state ------------------------------------------------------------------------

    def live_orders(self) -> np.ndarray:
        rows: list[tuple[int, ...]] = []
        for price in sorted(self.bids, reverse=True):
            rows += [
                (o.order_id, o.owner, o.side, o.price, o.remaining, o.filled)
                for o in self.bids[price]
            ]
        for price in sorted(self.asks):
            rows += [
                (o.order_id, o.owner, o.side, o.price, o.remaining, o.filled)
                for o in self.asks[price]
            ]
        return np.array(rows, dtype=np.int64).reshape(len(rows), 6)

    def state(self) -> BookState:
        return BookState(
            price_levels_max=self.price_levels_max,
            seq=self.seq,
            last_trade_price=self.last_trade,
            band_bps=self.band_bps,
            halted=self.halted,
            price_lo=self.price_lo,
            rows=self.live_orders(),
        )

    def state_hash(self) -> str:
        return self.state().hash_hex()

    def snapshot(self) -> bytes:
        return self.state().snapshot()

    def validate_internal_state(self) -> None:
        ids = [o.order_id for book in (self.bids, self.asks) for q in book.values() for o in q]
        assert len(ids) == len(set(ids)) == len(self.by_id), "order index out of sync"
        assert all(q for book in (self.bids, self.asks) for q in book.values()), "empty level kept"
        for book, side in ((self.bids, k.SIDE_BUY), (self.asks, k.SIDE_SELL)):
            for price, queue in book.items():
                for o in queue:
                    assert o.side == side, "order on the wrong side"
                    assert o.price == price, "order on the wrong level"
                    assert o.remaining > 0, "empty order on the book"
                    assert self.by_id[o.order_id] is o, "index points elsewhere"
                    assert self._in_window(price), "order outside the window"
        assert not (self.bids and self.asks and self.best_bid() >= self.best_ask()), "crossed book"

    def restore(self, blob: bytes) -> None:
        state = decode_snapshot(blob)
        if state.price_levels_max != self.price_levels_max:
            raise SnapshotError("snapshot window differs from this book's")
        fresh = ReferenceBook(self.orders_max, self.price_levels_max)
        fresh.seq, fresh.last_trade = state.seq, state.last_trade_price
        fresh.band_bps, fresh.halted, fresh.price_lo = state.band_bps, state.halted, state.price_lo
        for row in state.rows.tolist():
            order = RefOrder(*row)
            fresh._side_book(order.side).setdefault(order.price, []).append(order)
            fresh.by_id[order.order_id] = order
        fresh.validate_internal_state()
        self.__dict__.update(fresh.__dict__)
