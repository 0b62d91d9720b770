"""The order-id hash table: agrees with a dict under inserts/deletes, and keeps probes short
for the id patterns TradeX produces (dense ids, partitioned ids), whatever the table size."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tradex.matching.hashtable import (
    LOAD_INVERSE,
    buckets_for,
    hash_delete,
    hash_find,
    hash_insert,
    home,
    shift_for,
)

ORDERS_MAX = 4096


def probe_lengths(table: np.ndarray, shift: int) -> list[int]:
    """Distance of every stored key from its home bucket."""
    buckets = table.shape[0] // 2
    mask = buckets - 1
    out = []
    with np.errstate(over="ignore"):  # the hash multiplies with int64 wrap-around
        for b in range(buckets):
            key = table[2 * b]
            if key != 0:
                out.append((b - home.py_func(key, shift, mask)) % buckets)
    return out


@pytest.mark.parametrize("pattern", ["dense", "partitioned", "strided"])
def test_table_agrees_with_a_dict_and_probes_stay_short(pattern: str) -> None:
    buckets = buckets_for(ORDERS_MAX)
    assert buckets >= LOAD_INVERSE * ORDERS_MAX
    shift = shift_for(buckets)
    table = np.zeros(2 * buckets, np.int64)
    rng = random.Random(7)
    live: dict[int, int] = {}
    stride = {"dense": 1, "partitioned": 1, "strided": buckets}[pattern]
    next_offset = 1
    for step in range(40_000):
        if len(live) < ORDERS_MAX and (rng.random() < 0.55 or not live):
            partition = rng.randrange(4) if pattern == "partitioned" else 0
            key = (partition << 40) | (next_offset * stride)
            next_offset += 1
            slot = step % ORDERS_MAX
            assert hash_find(table, shift, key) == -1
            hash_insert(table, shift, key, slot)
            live[key] = slot
        else:
            key = rng.choice(list(live)) if step % 7 else min(live)  # old and random ids
            assert hash_find(table, shift, key) == live.pop(key)
            hash_delete(table, shift, key)
            assert hash_find(table, shift, key) == -1
    for key, slot in live.items():
        assert hash_find(table, shift, key) == slot
    assert int(np.count_nonzero(table[0::2])) == len(live)
    lengths = probe_lengths(table, shift)
    assert len(live) > ORDERS_MAX // 2
    assert sum(lengths) / len(lengths) < 1.0, pattern
    assert max(lengths) < 40, pattern
