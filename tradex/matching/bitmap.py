"""Two-level occupancy bitmap over the price window: find the next non-empty level in O(1)-ish.

``bits_lo`` has one bit per level (price tick), ``bits_hi`` one bit per non-zero word of
``bits_lo``. Finding the next best level after the best one empties scans at most
``len(bits_hi)`` words (256 for a 2**20-tick window), never the levels themselves.

All functions are leaves (they call nothing), so Numba prunes the reference counting of
their array arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba.cpython.unsafe import numbers as unsafe_numbers

from tradex.matching.jit_cache import engine_njit

# LLVM ctlz/cttz intrinsics (typed Any: their Python signature is the intrinsic's).
leading_zeros: Any = unsafe_numbers.leading_zeros
trailing_zeros: Any = unsafe_numbers.trailing_zeros

WORD_BITS = 64
LEVELS_PER_HI_BIT = WORD_BITS * WORD_BITS  # a window is a multiple of this many ticks

ONE = np.int64(1)


@engine_njit(inline="always")
def bit_set(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> None:
    w = i >> 6
    bits_lo[np.uint64(w)] |= ONE << (i & 63)
    bits_hi[np.uint64(w >> 6)] |= ONE << (w & 63)


@engine_njit(inline="always")
def bit_clear(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> None:
    w = i >> 6
    v = bits_lo[np.uint64(w)] & ~(ONE << (i & 63))
    bits_lo[np.uint64(w)] = v
    if v == 0:
        bits_hi[np.uint64(w >> 6)] &= ~(ONE << (w & 63))


@engine_njit(inline="always")
def bit_test(bits_lo: np.ndarray, i: int) -> bool:
    return (bits_lo[np.uint64(i >> 6)] >> (i & 63)) & 1 == 1


@engine_njit(inline="always")
def find_prev(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> int:
    """Largest set index <= i, or -1."""
    if i < 0:
        return -1
    w = i >> 6
    v = bits_lo[np.uint64(w)] & ((np.int64(2) << (i & 63)) - 1)
    if v != 0:
        return (w << 6) + 63 - leading_zeros(v)
    hw = w >> 6
    hv = bits_hi[np.uint64(hw)] & ((ONE << (w & 63)) - 1)
    while True:
        if hv != 0:
            ww = (hw << 6) + 63 - leading_zeros(hv)
            return (ww << 6) + 63 - leading_zeros(bits_lo[np.uint64(ww)])
        hw -= 1
        if hw < 0:
            return -1
        hv = bits_hi[np.uint64(hw)]


@engine_njit(inline="always")
def find_next(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> int:
    """Smallest set index >= i, or -1."""
    if i >= bits_lo.shape[0] * 64:
        return -1
    w = i >> 6
    v = bits_lo[np.uint64(w)] & (np.int64(-1) << (i & 63))
    if v != 0:
        return (w << 6) + trailing_zeros(v)
    hw = w >> 6
    hv = bits_hi[np.uint64(hw)] & (np.int64(-2) << (w & 63))
    n_hi = bits_hi.shape[0]
    while True:
        if hv != 0:
            ww = (hw << 6) + trailing_zeros(hv)
            return (ww << 6) + trailing_zeros(bits_lo[np.uint64(ww)])
        hw += 1
        if hw >= n_hi:
            return -1
        hv = bits_hi[np.uint64(hw)]


@engine_njit(inline="always")
def level_emptied(
    bits_lo: np.ndarray, bits_hi: np.ndarray, idx: int, best_bid: int, best_ask: int
) -> tuple[int, int]:
    """Clear level ``idx``'s bit; return (best_bid, best_ask), a best that was ``idx``
    moved to the next non-empty level (-1 if none).

    Early returns only: an if-then whose result merges with the other path made Numba keep
    reference counting of the array arguments (atomics on the hot path)."""
    bit_clear(bits_lo, bits_hi, idx)
    if idx == best_bid:
        return find_prev(bits_lo, bits_hi, idx - 1), best_ask
    if idx == best_ask:
        return best_bid, find_next(bits_lo, bits_hi, idx + 1)
    return best_bid, best_ask
