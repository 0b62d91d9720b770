"""The books of the ClickHouse read model as arrays: L2 deltas in, the top after each out.

    state = BookState()
    tops = state.apply(instrument_id, side, price, qty, book_seq)   # numpy arrays, log order
    tops.bid_price, tops.bid_qty, tops.ask_price, tops.ask_qty
    state.books()        # {instrument_id: Book}: the same books as Python objects

The work per delta is :func:`.book_kernel.apply_deltas` (Numba); this class owns its arrays:
a slot per instrument, a segment of one level pool per book side, room reserved before
each call (a side that may gain levels in the batch is moved to a bigger segment, the pool
grows and is compacted as needed). ``analytics_model.Book`` is its slow twin (one dict per
side), kept for tests and for reading a book: ``tests/projections/test_book_state.py``
replays 100,000 seeded deltas through both.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tradex.projections import book_kernel
from tradex.projections.book import LEVELS_MAX, Book

SIDE_BUY = 0
SIDE_SELL = 1
SEGMENT_MIN = 16  # levels of a side's first segment
INSTRUMENTS_MAX = 1_000_000  # books one read model keeps


@dataclass(frozen=True)
class Tops:
    """The top of an instrument's book after each delta (0: that side is empty)."""

    bid_price: np.ndarray
    bid_qty: np.ndarray
    ask_price: np.ndarray
    ask_qty: np.ndarray


class BookState:
    """Every instrument's book (see the module doc)."""

    def __init__(self, levels_max: int = LEVELS_MAX) -> None:
        assert 0 < levels_max <= LEVELS_MAX, levels_max
        self.levels_max = levels_max
        self.slots: dict[int, int] = {}  # instrument id -> slot
        self.instrument_ids = np.zeros(0, np.int64)  # per slot
        self.seq = np.zeros(0, np.int64)  # per slot: the last book_seq applied
        self.start = np.zeros(0, np.int64)  # per side (2 * slot + side)
        self.count = np.zeros(0, np.int64)
        self.cap = np.zeros(0, np.int64)
        self.level_price = np.zeros(0, np.int64)
        self.level_qty = np.zeros(0, np.int64)
        self.used = 0  # the pool's end: segments lie below it
        self.moves = 0  # segments moved to a bigger one (counted for tests)
        self.compactions = 0

    # -- applying deltas ------------------------------------------------------------------

    def apply(
        self,
        instrument_id: np.ndarray,
        side: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
        book_seq: np.ndarray,
    ) -> Tops:
        """Apply the deltas in order (``side``: SIDE_BUY / SIDE_SELL); the top after each.
        A delta the book refuses raises AssertionError, as the twin's ``set_level`` does
        (the deltas before it stay applied)."""
        n = len(instrument_id)
        for column in (side, price, qty, book_seq):
            assert len(column) == n, (len(column), n)
        slot = self._slots_of(np.asarray(instrument_id, np.int64))
        sides = np.asarray(side, np.int64)
        self._reserve(2 * slot + sides)
        tops = Tops(*(np.zeros(n, np.int64) for _ in range(4)))
        status, at = book_kernel.apply_deltas(
            slot, sides, np.asarray(price, np.int64), np.asarray(qty, np.int64),
            np.asarray(book_seq, np.int64), self.start, self.count, self.cap, self.seq,
            self.level_price, self.level_qty, self.levels_max, tops.bid_price, tops.bid_qty,
            tops.ask_price, tops.ask_qty,
        )  # fmt: skip
        if status != book_kernel.OK:
            raise AssertionError(self._refusal(status, at, slot, sides, price, book_seq))
        assert at == n, (at, n)
        return tops

    def _refusal(
        self, status: int, at: int, slot: np.ndarray, side: np.ndarray, price: np.ndarray,
        book_seq: np.ndarray,
    ) -> str:  # fmt: skip
        """The twin's message for the delta refused."""
        name = "bid" if side[at] == SIDE_BUY else "ask"
        if status == book_kernel.SEQ_GAP:
            before = int(self.seq[slot[at]])
            return f"book_seq {int(book_seq[at])} after {before}: a gap or a repeat"
        if status == book_kernel.LEVEL_MISSING:
            return f"{name} level {int(price[at])} removed but not in the book"
        if status == book_kernel.SIDE_FULL:
            return f"{name} levels beyond LEVELS_MAX"
        return f"a bad level at delta {at}: side {int(side[at])}, price {int(price[at])}"

    def _slots_of(self, instrument_id: np.ndarray) -> np.ndarray:
        """The slot of each instrument (new instruments get one)."""
        ids, inverse = np.unique(instrument_id, return_inverse=True)
        new = [int(i) for i in ids if int(i) not in self.slots]
        if new:
            self._add_slots(new)
        table = np.array([self.slots[int(i)] for i in ids], np.int64)
        return table[inverse]

    def _add_slots(self, new: list[int]) -> None:
        first = len(self.instrument_ids)
        assert first + len(new) <= INSTRUMENTS_MAX, "books beyond INSTRUMENTS_MAX"
        for k, instrument_id in enumerate(new):
            self.slots[instrument_id] = first + k
        self.instrument_ids = np.concatenate([self.instrument_ids, np.array(new, np.int64)])
        self.seq = np.concatenate([self.seq, np.zeros(len(new), np.int64)])
        sides = 2 * len(new)
        self.start = np.concatenate([self.start, np.zeros(sides, np.int64)])
        self.count = np.concatenate([self.count, np.zeros(sides, np.int64)])
        self.cap = np.concatenate([self.cap, np.zeros(sides, np.int64)])

    def _reserve(self, sides: np.ndarray) -> None:
        """Room in each side's segment for every delta of it to add a level."""
        wanted, adds = np.unique(sides, return_counts=True)
        need = self.count[wanted] + adds
        short = need > self.cap[wanted]
        if not short.any():
            return
        grow = wanted[short]
        caps = np.maximum(np.maximum(2 * self.cap[grow], need[short]), SEGMENT_MIN)
        caps = np.minimum(caps, np.maximum(self.levels_max, need[short]))
        if self.used + int(caps.sum()) > len(self.level_price):
            self._compact(int(caps.sum()))
        for h, new_cap in zip(grow.tolist(), caps.tolist(), strict=True):
            start, count = int(self.start[h]), int(self.count[h])
            at = self.used
            self.level_price[at : at + count] = self.level_price[start : start + count]
            self.level_qty[at : at + count] = self.level_qty[start : start + count]
            self.start[h], self.cap[h] = at, new_cap
            self.used = at + new_cap
            self.moves += 1
        assert self.used <= len(self.level_price), (self.used, len(self.level_price))

    def _compact(self, more: int) -> None:
        """Pack the segments into a pool with room for ``more`` levels after them."""
        live = int(self.cap.sum())
        size = max(SEGMENT_MIN, 2 * (live + more))
        price = np.zeros(size, np.int64)
        qty = np.zeros(size, np.int64)
        at = 0
        for h in range(len(self.start)):
            start, count, cap = int(self.start[h]), int(self.count[h]), int(self.cap[h])
            price[at : at + count] = self.level_price[start : start + count]
            qty[at : at + count] = self.level_qty[start : start + count]
            self.start[h] = at
            at += cap
        self.level_price, self.level_qty, self.used = price, qty, at
        self.compactions += 1

    # -- loading and reading -------------------------------------------------------------

    def load(self, instrument_id: int, seq: int, levels: list[tuple[int, int, int]]) -> None:
        """Set one instrument's book: its last ``book_seq`` and its (side, price, qty)
        levels (qty > 0; each level once), e.g. read back from the store."""
        assert instrument_id not in self.slots, f"instrument {instrument_id} loaded twice"
        slot = int(self._slots_of(np.array([instrument_id], np.int64))[0])
        self.seq[slot] = seq
        for side in (SIDE_BUY, SIDE_SELL):
            prices = sorted(p for s, p, _ in levels if s == side)
            if side == SIDE_SELL:
                prices.reverse()
            qty_of = {p: q for s, p, q in levels if s == side}
            assert len(qty_of) == len(prices), "a level given twice"
            h = 2 * slot + side
            self._reserve(np.full(len(prices), h, np.int64))
            base = int(self.start[h])
            self.level_price[base : base + len(prices)] = prices
            self.level_qty[base : base + len(prices)] = [qty_of[p] for p in prices]
            self.count[h] = len(prices)
        self.check()

    def books(self) -> dict[int, Book]:
        """Every book as the twin's :class:`Book` (slow: tests, inspection)."""
        found = {}
        for instrument_id, slot in self.slots.items():
            book = Book()
            book.seq = int(self.seq[slot])
            for side, name in ((SIDE_BUY, "BUY"), (SIDE_SELL, "SELL")):
                h = 2 * slot + side
                start, count = int(self.start[h]), int(self.count[h])
                for k in range(start, start + count):
                    book.set_level(name, int(self.level_price[k]), int(self.level_qty[k]))
            found[instrument_id] = book
        return found

    def check(self) -> None:
        """The invariants: each side strictly sorted best last, quantities > 0, within its
        segment, segments apart, the book not crossed."""
        ends = []
        for h in range(len(self.start)):
            start, count, cap = int(self.start[h]), int(self.count[h]), int(self.cap[h])
            assert 0 <= count <= cap, (h, count, cap)
            assert start + cap <= self.used or cap == 0, (h, start, cap, self.used)
            prices = self.level_price[start : start + count]
            steps = np.diff(prices)
            assert (steps > 0).all() if h % 2 == SIDE_BUY else (steps < 0).all(), f"side {h}"
            assert (self.level_qty[start : start + count] > 0).all(), f"side {h}: qty <= 0"
            if cap:
                ends.append((start, start + cap))
        ends.sort()
        for (_, end), (next_start, _) in itertools.pairwise(ends):
            assert end <= next_start, "two segments overlap"
        for slot in range(len(self.instrument_ids)):
            bids, asks = self.count[2 * slot], self.count[2 * slot + 1]
            if bids and asks:
                best_bid = self.level_price[self.start[2 * slot] + bids - 1]
                best_ask = self.level_price[self.start[2 * slot + 1] + asks - 1]
                assert best_bid < best_ask, f"book of slot {slot} crossed"
