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
from numba import njit
from numba.cpython.unsafe import numbers as unsafe_numbers

from tradex.matching.dtypes import M_BEST_ASK, M_BEST_BID

# LLVM ctlz/cttz intrinsics (typed Any: their Python signature is the intrinsic's).
leading_zeros: Any = unsafe_numbers.leading_zeros
trailing_zeros: Any = unsafe_numbers.trailing_zeros

WORD_BITS = 64
LEVELS_PER_HI_BIT = WORD_BITS * WORD_BITS  # a window is a multiple of this many ticks

ONE = np.int64(1)


@njit(cache=True)
def bit_set(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> None:
    w = i >> 6
    bits_lo[w] |= ONE << (i & 63)
    bits_hi[w >> 6] |= ONE << (w & 63)


@njit(cache=True)
def bit_clear(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> None:
    w = i >> 6
    v = bits_lo[w] & ~(ONE << (i & 63))
    bits_lo[w] = v
    if v == 0:
        bits_hi[w >> 6] &= ~(ONE << (w & 63))


@njit(cache=True)
def bit_test(bits_lo: np.ndarray, i: int) -> bool:
    return (bits_lo[i >> 6] >> (i & 63)) & 1 == 1


@njit(cache=True)
def find_prev(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> int:
    """Largest set index <= i, or -1."""
    if i < 0:
        return -1
    w = i >> 6
    v = bits_lo[w] & ((np.int64(2) << (i & 63)) - 1)
    if v != 0:
        return (w << 6) + 63 - leading_zeros(v)
    hw = w >> 6
    hv = bits_hi[hw] & ((ONE << (w & 63)) - 1)
    while True:
        if hv != 0:
            ww = (hw << 6) + 63 - leading_zeros(hv)
            return (ww << 6) + 63 - leading_zeros(bits_lo[ww])
        hw -= 1
        if hw < 0:
            return -1
        hv = bits_hi[hw]


@njit(cache=True)
def find_next(bits_lo: np.ndarray, bits_hi: np.ndarray, i: int) -> int:
    """Smallest set index >= i, or -1."""
    if i >= bits_lo.shape[0] * 64:
        return -1
    w = i >> 6
    v = bits_lo[w] & (np.int64(-1) << (i & 63))
    if v != 0:
        return (w << 6) + trailing_zeros(v)
    hw = w >> 6
    hv = bits_hi[hw] & (np.int64(-2) << (w & 63))
    n_hi = bits_hi.shape[0]
    while True:
        if hv != 0:
            ww = (hw << 6) + trailing_zeros(hv)
            return (ww << 6) + trailing_zeros(bits_lo[ww])
        hw += 1
        if hw >= n_hi:
            return -1
        hv = bits_hi[hw]


@njit(cache=True)
def level_emptied(bits_lo: np.ndarray, bits_hi: np.ndarray, meta: np.ndarray, idx: int) -> None:
    """Clear level ``idx``'s bit; if it was a best price, move that best to the next level.

    The searches are written out (not calls to find_prev/find_next) so that this stays a
    leaf function: Numba prunes the reference counting of a leaf's array arguments."""
    w = idx >> 6
    v = bits_lo[w] & ~(ONE << (idx & 63))
    bits_lo[w] = v
    if v == 0:
        bits_hi[w >> 6] &= ~(ONE << (w & 63))
    if meta[M_BEST_BID] == idx:  # largest set index < idx
        best = -1
        v = bits_lo[w] & ((ONE << (idx & 63)) - 1)
        hw = w >> 6
        hv = bits_hi[hw] & ((ONE << (w & 63)) - 1)
        if v != 0:
            best = (w << 6) + 63 - leading_zeros(v)
        else:
            while True:
                if hv != 0:
                    ww = (hw << 6) + 63 - leading_zeros(hv)
                    best = (ww << 6) + 63 - leading_zeros(bits_lo[ww])
                    break
                hw -= 1
                if hw < 0:
                    break
                hv = bits_hi[hw]
        meta[M_BEST_BID] = best
    elif meta[M_BEST_ASK] == idx:  # smallest set index > idx
        best = -1
        v = bits_lo[w] & (np.int64(-2) << (idx & 63))
        hw = w >> 6
        hv = bits_hi[hw] & (np.int64(-2) << (w & 63))
        if v != 0:
            best = (w << 6) + trailing_zeros(v)
        else:
            while True:
                if hv != 0:
                    ww = (hw << 6) + trailing_zeros(hv)
                    best = (ww << 6) + trailing_zeros(bits_lo[ww])
                    break
                hw += 1
                if hw >= bits_hi.shape[0]:
                    break
                hv = bits_hi[hw]
        meta[M_BEST_ASK] = best
