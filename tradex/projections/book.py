"""One instrument's order book as the ClickHouse read model sees it: price levels and the
best prices, from L2 deltas. The slow, obvious twin of :mod:`.book_state` (arrays and a
Numba kernel), which the read model uses; this one is for tests and for reading a book.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradex.domain import engine

LEVELS_MAX = 1_000_000  # price levels of one side of one book (a bound, not a target)


class Book:
    """One instrument's price levels (lots per price) and its best prices (0: none)."""

    __slots__ = ("asks", "best_ask", "best_bid", "bids", "seq")

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.best_bid = 0
        self.best_ask = 0
        self.seq = 0  # the last book_seq applied

    def set_level(self, side: str, price: int, qty: int) -> None:
        """The level ``price`` of ``side`` now holds ``qty`` lots (0: it is gone)."""
        assert price > 0, price
        assert qty >= 0, qty
        if side == "BUY":
            levels = self.bids
            if qty:
                levels[price] = qty
                assert len(levels) <= LEVELS_MAX, "bid levels beyond LEVELS_MAX"
                if price > self.best_bid:
                    self.best_bid = price
            else:
                assert price in levels, f"bid level {price} removed but not in the book"
                del levels[price]
                if price == self.best_bid:
                    self.best_bid = max(levels) if levels else 0
        else:
            assert side == "SELL", side
            levels = self.asks
            if qty:
                levels[price] = qty
                assert len(levels) <= LEVELS_MAX, "ask levels beyond LEVELS_MAX"
                if not self.best_ask or price < self.best_ask:
                    self.best_ask = price
            else:
                assert price in levels, f"ask level {price} removed but not in the book"
                del levels[price]
                if price == self.best_ask:
                    self.best_ask = min(levels) if levels else 0

    def check(self) -> None:
        assert self.best_bid == (max(self.bids) if self.bids else 0), "best bid"
        assert self.best_ask == (min(self.asks) if self.asks else 0), "best ask"
        assert not self.bids or not self.asks or self.best_bid < self.best_ask, "crossed"


def apply_deltas(
    deltas: Sequence[engine.L2Delta], books: dict[int, Book]
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Apply book updates in log order; the top after each: bid and ask price and lots."""
    bid_price: list[int] = []
    bid_qty: list[int] = []
    ask_price: list[int] = []
    ask_qty: list[int] = []
    for delta in deltas:
        book = books.get(delta.instrument_id)
        if book is None:
            book = books[delta.instrument_id] = Book()
        seq = delta.book_seq
        if seq:  # 0: written before book_seq existed
            assert seq == book.seq + 1, f"book_seq {seq} after {book.seq}: a gap or a repeat"
            book.seq = seq
        book.set_level(delta.side, delta.price, delta.qty)
        best_bid, best_ask = book.best_bid, book.best_ask
        bid_price.append(best_bid)
        bid_qty.append(book.bids[best_bid] if best_bid else 0)
        ask_price.append(best_ask)
        ask_qty.append(book.asks[best_ask] if best_ask else 0)
    return bid_price, bid_qty, ask_price, ask_qty
