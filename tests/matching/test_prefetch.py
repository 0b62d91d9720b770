"""The prefetch hint compiles to a prefetch instruction and changes nothing."""

from __future__ import annotations

import numpy as np
from numba import njit

from tradex.matching.dtypes import ORDER_DTYPE
from tradex.matching.prefetch import prefetch


@njit
def prefetch_then_sum(values: np.ndarray, ahead: int) -> int:
    total = 0
    for i in range(values.shape[0]):
        if i + ahead < values.shape[0]:
            prefetch(values, i + ahead)
        total += values[i]
    return total


@njit
def prefetch_record(orders: np.ndarray, slot: int) -> int:
    prefetch(orders, slot)
    return orders[slot].remaining


def test_prefetch_is_a_hint_only() -> None:
    values = np.arange(10_000, dtype=np.int64)
    before = values.copy()
    assert prefetch_then_sum(values, 8) == int(values.sum())
    assert np.array_equal(values, before)
    orders = np.zeros(4, ORDER_DTYPE)
    orders[2]["remaining"] = 7
    assert prefetch_record(orders, 2) == 7


def test_prefetch_compiles_to_a_prefetch_instruction() -> None:
    prefetch_then_sum(np.arange(4, dtype=np.int64), 1)
    asm = prefetch_then_sum.inspect_asm(prefetch_then_sum.signatures[0])
    assert "prefetch" in asm
