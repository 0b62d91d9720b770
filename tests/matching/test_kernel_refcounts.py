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

from tradex.matching import bitmap, book_ops, hashtable, kernel
from tradex.matching import constants as k
from tradex.matching.book import Book, OutputBuffers
from tradex.matching.commands import batch, gtc
from tradex.matching.dtypes import (
    EVENT_DTYPE,
    L2_DTYPE,
    LEVEL_DTYPE,
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
    return {
        "orders": orders,
        "levels": np.zeros(4096, LEVEL_DTYPE),
        "bits_lo": np.zeros(64, np.int64),
        "bits_hi": np.zeros(1, np.int64),
        "free": np.zeros(4, np.int64),
        "table": np.zeros(16, np.int64),
    }


CASES: dict[str, Callable[[dict[str, np.ndarray]], tuple[Callable[..., Any], tuple[Any, ...]]]] = {
    "link_tail": lambda s: (
        book_ops.link_tail.py_func,
        (s["orders"], s["levels"], s["bits_lo"], s["bits_hi"], 1, 10),
    ),
    "unlink": lambda s: (book_ops.unlink.py_func, (s["orders"], s["levels"], 1, 10)),
    "bit_clear": lambda s: (bitmap.bit_clear.py_func, (s["bits_lo"], s["bits_hi"], 10)),
    "find_next": lambda s: (bitmap.find_next.py_func, (s["bits_lo"], s["bits_hi"], 10)),
    "find_prev": lambda s: (bitmap.find_prev.py_func, (s["bits_lo"], s["bits_hi"], 10)),
    "emit_event": lambda s: (
        book_ops.emit_event.py_func,
        (np.zeros(2, EVENT_DTYPE), 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0),
    ),
    "emit_trade": lambda s: (
        book_ops.emit_trade.py_func,
        (np.zeros(2, TRADE_DTYPE), 0, 1, 0, 0, 1, 2, 1, 2, 0, 1, 1),
    ),
    "emit_l2": lambda s: (
        book_ops.emit_l2.py_func,
        (np.zeros(2, L2_DTYPE), 0, 1, 0, 0, 0, 1, 1),
    ),
    "hash_find": lambda s: (hashtable.hash_find.py_func, (s["table"], 0, 5)),
    "hash_insert": lambda s: (hashtable.hash_insert.py_func, (s["table"], 0, 5, 1)),
    "hash_delete": lambda s: (hashtable.hash_delete.py_func, (s["table"], 0, 5)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_leaf_has_no_refcount_traffic(name: str) -> None:
    s = state()
    if name == "unlink":
        s["levels"][10]["count"], s["levels"][10]["qty"] = 1, 1
    if name == "hash_delete":
        s["table"][10], s["table"][11] = 5, 1  # key 5 in its home bucket
    fn, args = CASES[name](s)
    assert "NRT_incref" not in own_function_ir(fn, args)


def test_kernel_counts_references_only_on_entry_and_around_the_fok_scan() -> None:
    """The helpers are inlined into process_batch (inline="always"); what matters is the
    kernel's own IR: reference counting of its arrays once per batch (entry block), plus
    around the call to the out-of-line FOK scan (rare), never on the common paths."""
    book = Book(orders_max=64, price_levels_max=4096)
    out = OutputBuffers(64)
    cmds = batch([gtc(k.SIDE_BUY, 1, 100, 5)])
    fresh = njit(kernel.process_batch.py_func)  # no cache: cached code has no IR
    fresh(
        book.orders, book.levels, book.bits_lo, book.bits_hi, book.htable, book.free_slots,
        book.meta, cmds, out.trades, out.events, out.l2,
    )  # fmt: skip
    ir = fresh.inspect_llvm(fresh.signatures[0])
    bodies = [
        body
        for body in re.split(r"\ndefine ", ir)[1:]
        if re.search(r"@_ZN6tradex8matching6kernel13process_batch\w*\(", body.split("\n")[0])
    ]
    assert len(bodies) == 1
    blocks = [b for b in re.split(r"\n(?=[\w.]+:)", bodies[0]) if "NRT_incref" in b]
    assert blocks[0].count("NRT_incref") == 11  # on entry: once per array argument
    for block in blocks[1:]:
        assert "fok_outcome" in block, block[:400]
