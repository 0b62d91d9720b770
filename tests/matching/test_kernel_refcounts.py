"""The hot-path leaves compile without reference counting of their array arguments.

Numba increments/decrements the refcount of every array argument of a function unless it
can prove the pair redundant; for a leaf called per order that costs two atomics per array
per call (measured 2-3x slower overall). Edits that break the pruning (a call to another
jitted function, an assertion before the first array access) fail here, not in a benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numba import njit

from tradex.matching import book_ops, hashtable
from tradex.matching.dtypes import (
    EVENT_DTYPE,
    L2_DTYPE,
    LEVEL_DTYPE,
    META_SIZE,
    ORDER_DTYPE,
    TRADE_DTYPE,
)


def own_function_ir(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    fresh = njit(fn)  # no cache: the IR of cached code cannot be inspected
    fresh(*args)
    ir = fresh.inspect_llvm(fresh.signatures[0])
    bodies = [b for b in re.split(r"\ndefine ", ir)[1:] if "@_ZN6tradex" in b.split("\n")[0]]
    assert len(bodies) == 1
    return bodies[0]


def state() -> dict[str, np.ndarray]:
    orders = np.zeros(4, ORDER_DTYPE)
    orders[1]["price"], orders[1]["remaining"], orders[1]["next"], orders[1]["prev"] = 10, 1, -1, -1
    meta = np.zeros(META_SIZE, np.int64)
    meta[7] = meta[8] = -1
    meta[6] = 2
    return {
        "orders": orders,
        "levels": np.zeros(4096, LEVEL_DTYPE),
        "bits_lo": np.zeros(64, np.int64),
        "bits_hi": np.zeros(1, np.int64),
        "meta": meta,
        "free": np.zeros(4, np.int64),
        "table": np.zeros(16, np.int64),
    }


CASES: dict[str, Callable[[dict[str, np.ndarray]], tuple[Callable[..., Any], tuple[Any, ...]]]] = {
    "link_tail": lambda s: (
        book_ops.link_tail.py_func,
        (s["orders"], s["levels"], s["bits_lo"], s["bits_hi"], s["meta"], 1),
    ),
    "unlink": lambda s: (book_ops.unlink.py_func, (s["orders"], s["levels"], s["meta"], 1)),
    "emit_event": lambda s: (
        book_ops.emit_event.py_func,
        (np.zeros(2, EVENT_DTYPE), s["meta"], 0, 0, 1, 1, 1, 0, 1, 1, 0, 0),
    ),
    "emit_trade": lambda s: (
        book_ops.emit_trade.py_func,
        (np.zeros(2, TRADE_DTYPE), s["meta"], 0, 0, 1, 2, 1, 2, 0, 1, 1),
    ),
    "emit_l2": lambda s: (
        book_ops.emit_l2.py_func,
        (np.zeros(2, L2_DTYPE), s["meta"], 0, 0, 0, 1, 1),
    ),
    "pop_free_slot": lambda s: (book_ops.pop_free_slot.py_func, (s["free"], s["meta"])),
    "push_free_slot": lambda s: (
        book_ops.push_free_slot.py_func,
        (s["orders"], s["free"], s["meta"], 1),
    ),
    "outside_band": lambda s: (book_ops.outside_band.py_func, (s["meta"], 10)),
    "hash_find": lambda s: (hashtable.hash_find.py_func, (s["table"], 0, 5)),
    "hash_insert": lambda s: (hashtable.hash_insert.py_func, (s["table"], 0, 5, 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_leaf_has_no_refcount_traffic(name: str) -> None:
    s = state()
    if name == "unlink":
        s["levels"][10]["count"], s["levels"][10]["qty"] = 1, 1
    fn, args = CASES[name](s)
    assert "NRT_incref" not in own_function_ir(fn, args)
