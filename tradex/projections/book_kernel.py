"""The jitted kernel of the ClickHouse read model's books: L2 deltas in log order, the top
after each (its Python owner is :mod:`.book_state`; its slow twin ``analytics_model.Book``).

State, all int64 numpy arrays owned by the caller:

- per instrument slot ``b``: ``seq[b]``, the last ``book_seq`` applied;
- per book side ``h = 2 * b + side`` (side 0 buy, 1 sell): a segment of the level pool,
  ``level_price[start[h] : start[h] + count[h]]`` and ``level_qty`` likewise, room for
  ``cap[h]`` levels; sorted so that the best level is last (bids by ascending price, asks
  by descending), so the top is one read and most updates, near the top, move few levels.

The caller reserves room first (``cap[h]`` at least ``count[h]`` plus the deltas of ``h`` in
the batch): the kernel never grows anything, and reports a full side as a status. It stops
at the first delta it cannot apply and returns (status, its index); the deltas before it
are applied (as the twin's assertion leaves its books). No allocation, no Python object.
"""

from __future__ import annotations

import numpy as np

from tradex.matching.jit_cache import engine_njit

OK = 0
SEQ_GAP = 1  # book_seq is not the instrument's previous + 1
LEVEL_MISSING = 2  # a level removed (qty 0) that is not in the book
SIDE_FULL = 3  # a new level beyond the side's room or levels_max
BAD_LEVEL = 4  # price <= 0, qty < 0 or a side other than 0/1


@engine_njit()
def apply_deltas(
    slot: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    book_seq: np.ndarray,
    start: np.ndarray,
    count: np.ndarray,
    cap: np.ndarray,
    seq: np.ndarray,
    level_price: np.ndarray,
    level_qty: np.ndarray,
    levels_max: int,
    bid_price: np.ndarray,
    bid_qty: np.ndarray,
    ask_price: np.ndarray,
    ask_qty: np.ndarray,
) -> tuple[int, int]:
    """Apply delta i (level ``price[i]`` of ``side[i]`` of book ``slot[i]`` now holds
    ``qty[i]`` lots, 0: gone) for i in order; write the top after each into the four out
    arrays. Returns (OK, n) or (status, index of the delta refused)."""
    n = slot.shape[0]
    for i in range(n):
        b = slot[i]
        s = side[i]
        p = price[i]
        q = qty[i]
        if p <= 0 or q < 0 or (s != 0 and s != 1):
            return BAD_LEVEL, i
        k = book_seq[i]
        if k != 0:  # 0: written before book_seq existed
            if k != seq[b] + 1:
                return SEQ_GAP, i
            seq[b] = k
        h = 2 * b + s
        base = start[h]
        c = count[h]
        lo = 0
        hi = c
        if s == 0:  # bids ascending
            while lo < hi:
                mid = (lo + hi) >> 1
                if level_price[base + mid] < p:
                    lo = mid + 1
                else:
                    hi = mid
        else:  # asks descending
            while lo < hi:
                mid = (lo + hi) >> 1
                if level_price[base + mid] > p:
                    lo = mid + 1
                else:
                    hi = mid
        found = lo < c and level_price[base + lo] == p
        if q > 0:
            if found:
                level_qty[base + lo] = q
            else:
                if c >= cap[h] or c >= levels_max:
                    return SIDE_FULL, i
                for j in range(c, lo, -1):
                    level_price[base + j] = level_price[base + j - 1]
                    level_qty[base + j] = level_qty[base + j - 1]
                level_price[base + lo] = p
                level_qty[base + lo] = q
                count[h] = c + 1
        else:
            if not found:
                return LEVEL_MISSING, i
            for j in range(lo, c - 1):
                level_price[base + j] = level_price[base + j + 1]
                level_qty[base + j] = level_qty[base + j + 1]
            count[h] = c - 1
        hb = 2 * b
        cb = count[hb]
        if cb > 0:
            bid_price[i] = level_price[start[hb] + cb - 1]
            bid_qty[i] = level_qty[start[hb] + cb - 1]
        else:
            bid_price[i] = 0
            bid_qty[i] = 0
        ca = count[hb + 1]
        if ca > 0:
            ask_price[i] = level_price[start[hb + 1] + ca - 1]
            ask_qty[i] = level_qty[start[hb + 1] + ca - 1]
        else:
            ask_price[i] = 0
            ask_qty[i] = 0
    return OK, n
