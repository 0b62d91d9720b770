"""Open-addressing hash table order_id -> slot (linear probing, backward-shift deletion).

One int64 array of 2 * buckets: ``table[2b]`` is the key (0 = empty), ``table[2b + 1]``
its slot, so a probe touches one cache line and a cancel is one probe plus one touch of
the order's slot. Ids are assigned by TradeX (``(partition << 40) | offset``, or 1, 2, 3
... in benchmarks), so recent ids are mostly consecutive. Each group of 4 consecutive ids
(``GROUP_BITS``) shares one 64-byte line of buckets (new orders' inserts hit lines already
in cache), and the groups land on lines chosen by multiplicative hashing (top bits of
``(key >> 2) * FIBONACCI``), so dense or strided ids spread evenly and no run of
consecutive ids forms a long probe cluster, whatever the table size. The
table has at least ``LOAD_INVERSE`` times as many buckets as the book has order slots
(load factor <= 1/4), and is sized from the book's ``orders_max`` (a book created for a
few thousand live orders gets a table that stays in the CPU caches).

Every function here is a leaf (it calls nothing): Numba can then drop the reference
counting of its array arguments, which otherwise costs atomics on every call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# 2**64 / golden ratio, as a (wrapping) int64: the multiplicative hash's factor.
FIBONACCI = np.int64(0x9E3779B97F4A7C15 - (1 << 64))
LOAD_INVERSE = 4  # buckets per order slot, at least
GROUP_BITS = 2  # 2**GROUP_BITS consecutive ids share one 64-byte line of (key, slot) pairs


def buckets_for(orders_max: int) -> int:
    """Smallest power of two >= LOAD_INVERSE * orders_max (and >= 8)."""
    assert orders_max > 0
    size = 8
    while size < LOAD_INVERSE * orders_max:
        size <<= 1
    assert size >= LOAD_INVERSE * orders_max
    return size


def shift_for(buckets: int) -> int:
    """The hash's right shift for a power-of-two bucket count: 64 - log2(buckets)."""
    assert buckets >= 8
    assert buckets & (buckets - 1) == 0
    return 64 - (buckets.bit_length() - 1)


@njit(cache=True, inline="always")
def home(key: int, shift: int, mask: int) -> int:
    """Home bucket of ``key``: its group of 2**GROUP_BITS consecutive ids lands on a line
    chosen by multiplicative hashing, the low bits pick the bucket inside the line."""
    line = ((key >> GROUP_BITS) * FIBONACCI) >> (shift + GROUP_BITS)
    return int(((line << GROUP_BITS) | (key & ((1 << GROUP_BITS) - 1))) & mask)


@njit(cache=True)
def hash_find(table: np.ndarray, shift: int, key: int) -> int:
    """Slot of key, or -1."""
    mask = (table.shape[0] >> 1) - 1
    b = home(key, shift, mask)
    while True:
        k = table[2 * b]
        if k == key:
            return table[2 * b + 1]
        if k == 0:
            return -1
        b = (b + 1) & mask


@njit(cache=True)
def hash_insert(table: np.ndarray, shift: int, key: int, slot: int) -> None:
    assert key > 0
    mask = (table.shape[0] >> 1) - 1
    b = home(key, shift, mask)
    while table[2 * b] != 0:
        assert table[2 * b] != key
        b = (b + 1) & mask
    table[2 * b] = key
    table[2 * b + 1] = slot


@njit(cache=True)
def hash_delete(table: np.ndarray, shift: int, key: int) -> None:
    mask = (table.shape[0] >> 1) - 1
    i = home(key, shift, mask)
    while table[2 * i] != key:
        assert table[2 * i] != 0  # deleting a missing key is a bug
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        kj = table[2 * j]
        if kj == 0:
            break
        h = home(kj, shift, mask)
        # kj may move into the hole at i unless its home lies cyclically in (i, j].
        stays = i < h and h <= j if i <= j else i < h or h <= j
        if not stays:
            table[2 * i] = kj
            table[2 * i + 1] = table[2 * j + 1]
            i = j
    table[2 * i] = 0
    table[2 * i + 1] = 0
