"""Jitted leaf primitives on the book state: link, unlink, slots, output records.

Every function takes numpy arrays and scalars only and calls no other function (a leaf):
Numba then prunes the reference counting of the array arguments, which would otherwise
cost two atomic operations per array per call on the hot path. ``meta`` holds the book's
scalars (indices ``M_*`` in :mod:`tradex.matching.dtypes`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradex.matching.constants import SIDE_BUY
from tradex.matching.dtypes import (
    M_BAND_BPS,
    M_BEST_ASK,
    M_BEST_BID,
    M_FREE,
    M_LAST_TRADE,
    M_LIVE,
    M_N_EVENTS,
    M_N_L2,
    M_N_TRADES,
    M_PRICE_LO,
    M_SEQ,
)

ONE = np.int64(1)


@njit(cache=True)
def pop_free_slot(free_slots: np.ndarray, meta: np.ndarray) -> int:
    n_free = meta[M_FREE]
    assert n_free > 0  # callers check capacity before the command starts
    meta[M_FREE] = n_free - 1
    return free_slots[n_free - 1]


@njit(cache=True)
def push_free_slot(orders: np.ndarray, free_slots: np.ndarray, meta: np.ndarray, slot: int) -> None:
    n_free = meta[M_FREE]
    assert n_free < free_slots.shape[0]
    free_slots[n_free] = slot
    meta[M_FREE] = n_free + 1
    orders[slot].order_id = 0


@njit(cache=True)
def link_tail(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    meta: np.ndarray,
    slot: int,
) -> int:
    """Append the order in ``slot`` (fields already set) to the back of its level.

    No assertion before the first array access here: with one, Numba 0.68 no longer prunes
    the reference counting of the array arguments (atomics on every call, measured 2-3x
    slower overall). Check the IR (tests/matching/test_kernel_refcounts.py) after edits."""
    o = orders[slot]
    idx = o.price - meta[M_PRICE_LO]  # the kernel asserts the window before calling
    lv = levels[idx]
    o.next = -1
    if lv.count == 0:
        lv.head = slot
        lv.tail = slot
        o.prev = -1
        lv.qty = o.remaining
        lv.count = 1
        w = idx >> 6
        bits_lo[w] |= ONE << (idx & 63)
        bits_hi[w >> 6] |= ONE << (w & 63)
        if o.side == SIDE_BUY:
            assert meta[M_BEST_ASK] == -1 or idx < meta[M_BEST_ASK]  # never rest crossing
            if meta[M_BEST_BID] < idx:
                meta[M_BEST_BID] = idx
        else:
            assert meta[M_BEST_BID] < idx
            if meta[M_BEST_ASK] == -1 or idx < meta[M_BEST_ASK]:
                meta[M_BEST_ASK] = idx
    else:
        tail = lv.tail
        orders[tail].next = slot
        o.prev = tail
        lv.tail = slot
        lv.qty += o.remaining
        lv.count += 1
    meta[M_LIVE] += 1
    return idx


@njit(cache=True)
def unlink(orders: np.ndarray, levels: np.ndarray, meta: np.ndarray, slot: int) -> int:
    """Take the order in ``slot`` off its level (the slot stays allocated); return the level.

    If the level empties (count 0) the caller clears its bit and moves the best price
    (:func:`tradex.matching.bitmap.level_emptied`); kept apart so both stay leaves."""
    o = orders[slot]
    idx = o.price - meta[M_PRICE_LO]
    lv = levels[idx]
    assert lv.count > 0
    prev = o.prev
    nxt = o.next
    if prev == -1:
        lv.head = nxt
    else:
        orders[prev].next = nxt
    if nxt == -1:
        lv.tail = prev
    else:
        orders[nxt].prev = prev
    lv.qty -= o.remaining
    lv.count -= 1
    meta[M_LIVE] -= 1
    return idx


@njit(cache=True)
def emit_event(
    events: np.ndarray,
    meta: np.ndarray,
    ci: int,
    ts: int,
    kind: int,
    oid: int,
    owner: int,
    side: int,
    price: int,
    qty: int,
    filled: int,
    reason: int,
) -> None:
    n = meta[M_N_EVENTS]
    seq = meta[M_SEQ] + 1
    meta[M_SEQ] = seq
    e = events[n]
    e.seq = seq
    e.cmd_index = ci
    e.kind = kind
    e.order_id = oid
    e.owner = owner
    e.side = side
    e.price = price
    e.qty = qty
    e.filled = filled
    e.reason = reason
    e.timestamp_ns = ts
    meta[M_N_EVENTS] = n + 1


@njit(cache=True)
def emit_trade(
    trades: np.ndarray,
    meta: np.ndarray,
    ci: int,
    ts: int,
    maker_id: int,
    taker_id: int,
    maker_owner: int,
    taker_owner: int,
    taker_side: int,
    price: int,
    qty: int,
) -> None:
    assert qty > 0
    n = meta[M_N_TRADES]
    seq = meta[M_SEQ] + 1
    meta[M_SEQ] = seq
    t = trades[n]
    t.seq = seq
    t.cmd_index = ci
    t.maker_id = maker_id
    t.taker_id = taker_id
    t.maker_owner = maker_owner
    t.taker_owner = taker_owner
    t.taker_side = taker_side
    t.price = price
    t.qty = qty
    t.timestamp_ns = ts
    meta[M_N_TRADES] = n + 1


@njit(cache=True)
def emit_l2(
    deltas: np.ndarray, meta: np.ndarray, ci: int, ts: int, side: int, price: int, qty: int
) -> None:
    assert qty >= 0
    n = meta[M_N_L2]
    seq = meta[M_SEQ] + 1
    meta[M_SEQ] = seq
    d = deltas[n]
    d.seq = seq
    d.cmd_index = ci
    d.side = side
    d.price = price
    d.qty = qty
    d.timestamp_ns = ts
    meta[M_N_L2] = n + 1


@njit(cache=True)
def outside_band(meta: np.ndarray, price: int) -> bool:
    """Price further from the reference (last trade, else mid, else none) than the band."""
    band = meta[M_BAND_BPS]
    if band == 0:
        return False
    ref = meta[M_LAST_TRADE]
    if ref == 0 and meta[M_BEST_BID] >= 0 and meta[M_BEST_ASK] >= 0:
        lo = meta[M_PRICE_LO]
        ref = (meta[M_BEST_BID] + lo + meta[M_BEST_ASK] + lo) // 2
    if ref == 0:
        return False
    return abs(price - ref) * 10_000 > ref * band
