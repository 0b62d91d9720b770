"""The market as engine events show it: per instrument, price levels and the last trade.

Pure: fed the decoded ``engine-events`` of a run in order (:meth:`Market.apply`), it knows
each book's levels (from ``L2Delta``), best bid and ask, and last trade price — what a
strategy sees (:mod:`.strategy`) and what the report samples (spread after each input).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tradex.domain.engine import L2Delta, Trade
from tradex.domain.types import Side
from tradex.matching.constants import SIDE_BUY

DEPTH_SHOWN_MAX = 50  # levels per side a strategy may ask for


class Levels:
    """One side of a book: price (ticks) -> total lots, with the best price cached."""

    def __init__(self, bids: bool) -> None:
        self.bids = bids
        self.qty: dict[int, int] = {}
        self._best: int | None = None
        self._stale = False

    def set(self, price: int, qty: int) -> None:
        assert price > 0, price
        assert qty >= 0, qty
        if qty == 0:
            self.qty.pop(price, None)
            if price == self._best:
                self._stale = True
            return
        self.qty[price] = qty
        if not self._stale and (self._best is None or self._better(price, self._best)):
            self._best = price

    def _better(self, a: int, b: int) -> bool:
        return a > b if self.bids else a < b

    def best(self) -> int | None:
        if self._stale or (self._best is not None and self._best not in self.qty):
            self._best = (max(self.qty) if self.bids else min(self.qty)) if self.qty else None
            self._stale = False
        return self._best

    def top(self, depth: int) -> tuple[tuple[int, int], ...]:
        """(price, lots) of the best ``depth`` levels, best first."""
        assert 0 <= depth <= DEPTH_SHOWN_MAX, depth
        prices = sorted(self.qty, reverse=self.bids)[:depth]
        return tuple((p, self.qty[p]) for p in prices)


class Book:
    def __init__(self) -> None:
        self.bids = Levels(bids=True)
        self.asks = Levels(bids=False)
        self.last_price = 0  # ticks; 0: no trade yet

    def spread(self) -> int | None:
        """Best ask − best bid in ticks, None unless both sides exist."""
        bid, ask = self.bids.best(), self.asks.best()
        if bid is None or ask is None:
            return None
        assert ask > bid, f"crossed book {bid} >= {ask}"
        return ask - bid

    def mid2(self) -> int | None:
        """Best bid + best ask (twice the mid, an integer), None unless both sides exist."""
        bid, ask = self.bids.best(), self.asks.best()
        return None if bid is None or ask is None else bid + ask


class Market:
    def __init__(self) -> None:
        self.books: dict[int, Book] = {}

    def book(self, instrument_id: int) -> Book:
        found = self.books.get(instrument_id)
        if found is None:
            found = self.books[instrument_id] = Book()
        return found

    def seed(self, instrument_id: int, live_orders: np.ndarray) -> None:
        """The book as the engine holds it (``Book.live_orders`` rows: id, owner, side,
        price, remaining, filled) — the state before a window's first input."""
        book = self.book(instrument_id)
        totals: dict[tuple[int, int], int] = {}
        for _id, _owner, side, price, remaining, _filled in live_orders.tolist():
            totals[(side, price)] = totals.get((side, price), 0) + remaining
        for (side, price), qty in sorted(totals.items()):
            (book.bids if side == SIDE_BUY else book.asks).set(price, qty)

    def apply(self, events: Iterable[object]) -> None:
        for obj in events:
            if isinstance(obj, L2Delta):
                book = self.book(obj.instrument_id)
                (book.bids if obj.side == Side.BUY else book.asks).set(obj.price, obj.qty)
            elif isinstance(obj, Trade):
                self.book(obj.instrument_id).last_price = obj.price
