"""The ClickHouse read model's books: BookState (arrays, the Numba kernel) against its slow
twin Book (a dict per side), 100,000 seeded deltas compared after every delta, batch by
batch, and the same refusals."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tradex.projections.book import Book
from tradex.projections.book_state import SIDE_BUY, SIDE_SELL, BookState

DELTAS = 100_000
INSTRUMENTS = 7
SEED = 20261203


def _stream(seed: int, count: int) -> list[tuple[int, int, int, int, int]]:
    """(instrument, side, price, qty, book_seq): levels set and removed around a moving
    mid price, so books grow deep on some instruments, empty out on others, and the best
    level changes often; book_seq dense per instrument (0 now and then: old records)."""
    rng = random.Random(seed)
    levels: dict[tuple[int, int], set[int]] = {}
    seqs = dict.fromkeys(range(INSTRUMENTS), 0)
    mids = {i: 1_000 + 100 * i for i in range(INSTRUMENTS)}
    out = []
    for _ in range(count):
        instrument = rng.randrange(INSTRUMENTS) * 3 + 1  # ids 1, 4, 7, ...
        slot = (instrument - 1) // 3
        mids[slot] = max(60, mids[slot] + rng.choice((-1, 0, 1)))
        side = rng.choice((SIDE_BUY, SIDE_SELL))
        held = levels.setdefault((instrument, side), set())
        if held and rng.random() < 0.45:
            price, qty = rng.choice(sorted(held)), 0
            held.discard(price)
        else:
            depth = rng.randrange(1, 40 if slot % 2 else 400)
            price = mids[slot] - depth if side == SIDE_BUY else mids[slot] + depth
            other = levels.get((instrument, 1 - side), set())
            if (
                price in other
                or (side == SIDE_BUY and other and price >= min(other))
                or (side == SIDE_SELL and other and price <= max(other))
            ):
                continue  # would cross the book
            qty = rng.randrange(1, 50)
            held.add(price)
        seq = 0  # now and then a record from before book_seq existed
        if rng.random() >= 0.01:
            seqs[slot] += 1
            seq = seqs[slot]
        out.append((instrument, side, price, qty, seq))
    return out


def _twin(
    books: dict[int, Book], deltas: list[tuple[int, int, int, int, int]]
) -> list[tuple[int, ...]]:
    tops = []
    for instrument, side, price, qty, seq in deltas:
        book = books.setdefault(instrument, Book())
        if seq:
            assert seq == book.seq + 1, f"book_seq {seq} after {book.seq}: a gap or a repeat"
            book.seq = seq
        book.set_level("BUY" if side == SIDE_BUY else "SELL", price, qty)
        tops.append((book.best_bid, book.bids.get(book.best_bid, 0), book.best_ask,
                     book.asks.get(book.best_ask, 0)))  # fmt: skip
    return tops


def _apply(state: BookState, deltas: list[tuple[int, int, int, int, int]]) -> list[tuple[int, ...]]:
    columns = [np.array(c, np.int64) for c in zip(*deltas, strict=True)]
    tops = state.apply(*columns)
    return list(zip(*(c.tolist() for c in (tops.bid_price, tops.bid_qty, tops.ask_price,
                                              tops.ask_qty)), strict=True))  # fmt: skip


def test_the_kernel_books_equal_the_twin_after_every_delta() -> None:
    deltas = _stream(SEED, DELTAS)
    assert len(deltas) > 0.9 * DELTAS
    rng = random.Random(SEED)
    state = BookState()
    twin: dict[int, Book] = {}
    at = 0
    removals = sum(1 for d in deltas if d[3] == 0)
    assert removals > DELTAS // 4, "the stream removes levels"
    while at < len(deltas):
        size = rng.choice((1, 7, 100, 2_000))
        chunk = deltas[at : at + size]
        assert _apply(state, chunk) == _twin(twin, chunk), f"tops differ in deltas {at}.."
        at += len(chunk)
        if rng.random() < 0.05:
            state.check()
            assert {i: (b.bids, b.asks, b.seq) for i, b in state.books().items()} == {
                i: (b.bids, b.asks, b.seq) for i, b in twin.items()
            }
    state.check()
    deepest = max(len(b.bids) + len(b.asks) for b in twin.values())
    assert deepest > 100, "some book got deep"
    assert state.moves > 2 * INSTRUMENTS and state.compactions > 3, "segments moved, compacted"
    assert len(state.level_price) < 8 * int(state.cap.sum()), "the pool stays compact"


def test_a_loaded_book_goes_on_like_the_twin() -> None:
    deltas = _stream(SEED + 1, 5_000)
    twin: dict[int, Book] = {}
    _twin(twin, deltas[:3_000])
    state = BookState()
    for instrument, book in twin.items():
        levels = [(SIDE_BUY, p, q) for p, q in book.bids.items()]
        levels += [(SIDE_SELL, p, q) for p, q in book.asks.items()]
        state.load(instrument, book.seq, levels)
    assert _apply(state, deltas[3_000:]) == _twin(twin, deltas[3_000:])
    with pytest.raises(AssertionError, match="loaded twice"):
        state.load(1, 0, [])


def test_refusals_are_the_twins() -> None:
    state = BookState(levels_max=3)
    one = [np.array([v], np.int64) for v in (5, SIDE_BUY, 10, 1, 1)]
    state.apply(*one)
    with pytest.raises(AssertionError, match="book_seq 3 after 1: a gap or a repeat"):
        state.apply(*[np.array([v], np.int64) for v in (5, SIDE_BUY, 11, 1, 3)])
    with pytest.raises(AssertionError, match="ask level 20 removed but not in the book"):
        state.apply(*[np.array([v], np.int64) for v in (5, SIDE_SELL, 20, 0, 2)])
    full = [np.array(v, np.int64) for v in ([5] * 3, [SIDE_BUY] * 3, [7, 8, 9], [1] * 3, [0] * 3)]
    with pytest.raises(AssertionError, match="bid levels beyond LEVELS_MAX"):
        state.apply(*full)  # 10 was there: the third new level is the fourth
    with pytest.raises(AssertionError, match="bad level"):
        state.apply(*[np.array([v], np.int64) for v in (5, SIDE_BUY, 0, 1, 0)])
    twin = Book()
    with pytest.raises(AssertionError, match="removed but not in the book"):
        twin.set_level("SELL", 20, 0)
