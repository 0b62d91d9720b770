"""Open-addressing hash table order_id -> slot (linear probing, backward-shift deletion).

Keys are positive int64 (0 marks an empty bucket). Fibonacci hashing spreads both dense ids
(1, 2, 3, ...) and sparse ones like ``(partition << 40) | offset``. The table is at least
twice the order capacity, so probes stay short and a free bucket always exists.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FIB_MULTIPLIER = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 as a signed int64


def hash_size_for(orders_max: int) -> int:
    """Smallest power of two >= 2 * orders_max."""
    assert orders_max > 0
    size = 1
    while size < 2 * orders_max:
        size <<= 1
    assert size >= 2 * orders_max
    return size


@njit(cache=True)
def _home(key: int, shift: int, mask: int) -> int:
    return ((key * FIB_MULTIPLIER) >> shift) & mask


@njit(cache=True)
def hash_find(hkeys: np.ndarray, hslots: np.ndarray, shift: int, key: int) -> int:
    """Slot of key, or -1."""
    mask = hkeys.shape[0] - 1
    i = _home(key, shift, mask)
    while True:
        k = hkeys[i]
        if k == key:
            return hslots[i]
        if k == 0:
            return -1
        i = (i + 1) & mask


@njit(cache=True)
def hash_insert(hkeys: np.ndarray, hslots: np.ndarray, shift: int, key: int, slot: int) -> None:
    assert key > 0
    mask = hkeys.shape[0] - 1
    i = _home(key, shift, mask)
    while hkeys[i] != 0:
        assert hkeys[i] != key
        i = (i + 1) & mask
    hkeys[i] = key
    hslots[i] = slot


@njit(cache=True)
def hash_delete(hkeys: np.ndarray, hslots: np.ndarray, shift: int, key: int) -> None:
    mask = hkeys.shape[0] - 1
    i = _home(key, shift, mask)
    while hkeys[i] != key:
        assert hkeys[i] != 0  # deleting a missing key is a bug
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        kj = hkeys[j]
        if kj == 0:
            break
        h = _home(kj, shift, mask)
        # kj may move into the hole at i unless its home lies cyclically in (i, j].
        stays = i < h and h <= j if i <= j else i < h or h <= j
        if not stays:
            hkeys[i] = kj
            hslots[i] = hslots[j]
            i = j
    hkeys[i] = 0
    hslots[i] = 0
