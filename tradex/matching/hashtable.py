"""Open-addressing hash table order_id -> slot (linear probing, backward-shift deletion).

One int64 array of 2 * buckets: ``table[2b]`` is the key (0 = empty), ``table[2b + 1]``
its slot, so a probe touches one cache line. Keys are positive int64 assigned by TradeX
itself (``(partition << 40) | offset``, or dense 1, 2, 3 ... in benchmarks), never by
clients, so the hash keeps their locality: the low 32 bits map to consecutive buckets
(live orders are mostly recent ids, so their buckets share cache lines) and the high bits
(the partition) shift each partition to its own region by an odd multiplier. The table
has at least twice as many buckets as orders, so probes stay short.

Every function here is a leaf (it calls nothing): Numba can then drop the reference
counting of its array arguments, which otherwise costs atomics on every call.
"""

from __future__ import annotations

import numpy as np

from tradex.matching.jit_cache import engine_njit

HIGH_MULTIPLIER = np.int64(0x9E3779B1)  # odd: spreads the high (partition) bits


def buckets_for(orders_max: int) -> int:
    """Smallest power of two >= 2 * orders_max."""
    assert orders_max > 0
    size = 1
    while size < 2 * orders_max:
        size <<= 1
    assert size >= 2 * orders_max
    return size


@engine_njit(inline="always")
def hash_home(table: np.ndarray, key: int) -> int:
    """Index in ``table`` of the key word of ``key``'s home bucket (for prefetching)."""
    mask = (table.shape[0] >> 1) - 1
    return 2 * ((key + (key >> 32) * HIGH_MULTIPLIER) & mask)


@engine_njit(inline="always")
def hash_find(table: np.ndarray, shift: int, key: int) -> int:
    """Slot of key, or -1."""
    mask = (table.shape[0] >> 1) - 1
    b = (key + (key >> 32) * HIGH_MULTIPLIER) & mask
    while True:
        k = table[np.uint64(2 * b)]
        if k == key:
            return table[np.uint64(2 * b + 1)]
        if k == 0:
            return -1
        b = (b + 1) & mask


@engine_njit(inline="always")
def hash_insert(table: np.ndarray, shift: int, key: int, slot: int) -> None:
    assert key > 0
    mask = (table.shape[0] >> 1) - 1
    b = (key + (key >> 32) * HIGH_MULTIPLIER) & mask
    while table[np.uint64(2 * b)] != 0:
        assert table[np.uint64(2 * b)] != key
        b = (b + 1) & mask
    table[np.uint64(2 * b)] = key
    table[np.uint64(2 * b + 1)] = slot


@engine_njit(inline="always")
def hash_delete(table: np.ndarray, shift: int, key: int) -> None:
    mask = (table.shape[0] >> 1) - 1
    i = (key + (key >> 32) * HIGH_MULTIPLIER) & mask
    while table[np.uint64(2 * i)] != key:
        assert table[np.uint64(2 * i)] != 0  # deleting a missing key is a bug
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        kj = table[np.uint64(2 * j)]
        if kj == 0:
            break
        h = (kj + (kj >> 32) * HIGH_MULTIPLIER) & mask
        # kj may move into the hole at i unless its home lies cyclically in (i, j].
        stays = i < h and h <= j if i <= j else i < h or h <= j
        if not stays:
            table[np.uint64(2 * i)] = kj
            table[np.uint64(2 * i + 1)] = table[np.uint64(2 * j + 1)]
            i = j
    table[np.uint64(2 * i)] = 0
    table[np.uint64(2 * i + 1)] = 0
