"""The order-id hash table agrees with a dict under inserts and deletes (backward-shift
deletion keeps every remaining key findable), for dense and partitioned ids."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tradex.matching.hashtable import buckets_for, hash_delete, hash_find, hash_insert

ORDERS_MAX = 4096


@pytest.mark.parametrize("partitions", [1, 4])
def test_table_agrees_with_a_dict(partitions: int) -> None:
    buckets = buckets_for(ORDERS_MAX)
    assert buckets >= 2 * ORDERS_MAX
    table = np.zeros(2 * buckets, np.int64)
    shift = 64 - (buckets.bit_length() - 1)
    rng = random.Random(7)
    live: dict[int, int] = {}
    next_offset = 1
    for step in range(40_000):
        if len(live) < ORDERS_MAX and (rng.random() < 0.55 or not live):
            # (partition << 40) | offset, offsets running past the table size (wrap-around)
            key = (rng.randrange(partitions) << 40) | next_offset
            next_offset += 1
            slot = step % ORDERS_MAX
            assert hash_find(table, shift, key) == -1
            hash_insert(table, shift, key, slot)
            live[key] = slot
        else:
            key = rng.choice(list(live)) if step % 7 else min(live)  # random and oldest ids
            assert hash_find(table, shift, key) == live.pop(key)
            hash_delete(table, shift, key)
            assert hash_find(table, shift, key) == -1
    assert next_offset > buckets  # the ids wrapped around the table
    assert len(live) > ORDERS_MAX // 2
    for key, slot in live.items():
        assert hash_find(table, shift, key) == slot
    assert int(np.count_nonzero(table[0::2])) == len(live)
