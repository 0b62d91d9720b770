"""Jitted primitives on the book state: rest, unlink, release a slot, emit output records.

Every function takes numpy arrays and scalars only. ``meta`` holds the book's scalars
(indices ``M_*`` in :mod:`tradex.matching.dtypes`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradex.matching.bitmap import bit_clear, bit_set, find_next, find_prev
from tradex.matching.constants import SIDE_BUY
from tradex.matching.dtypes import (
    M_BEST_ASK,
    M_BEST_BID,
    M_FREE,
    M_HASH_SHIFT,
    M_LIVE,
    M_N_EVENTS,
    M_N_L2,
    M_N_TRADES,
    M_PRICE_LO,
    M_SEQ,
)
from tradex.matching.hashtable import hash_delete, hash_insert


@njit(cache=True)
def anchor_window(levels: np.ndarray, meta: np.ndarray, price: int) -> None:
    """Centre the price window on ``price``; only legal while the book is empty."""
    assert meta[M_LIVE] == 0
    lo = price - levels.shape[0] // 2
    meta[M_PRICE_LO] = lo if lo > 1 else 1


@njit(cache=True)
def in_window(levels: np.ndarray, meta: np.ndarray, price: int) -> bool:
    idx = price - meta[M_PRICE_LO]
    return idx >= 0 and idx < levels.shape[0]


@njit(cache=True)
def take_slot(
    hkeys: np.ndarray, hslots: np.ndarray, free_slots: np.ndarray, meta: np.ndarray, oid: int
) -> int:
    n_free = meta[M_FREE]
    assert n_free > 0  # callers check capacity before the command starts
    slot = free_slots[n_free - 1]
    meta[M_FREE] = n_free - 1
    hash_insert(hkeys, hslots, meta[M_HASH_SHIFT], oid, slot)
    return slot


@njit(cache=True)
def release_slot(
    orders: np.ndarray,
    hkeys: np.ndarray,
    hslots: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    slot: int,
) -> None:
    hash_delete(hkeys, hslots, meta[M_HASH_SHIFT], orders[slot].order_id)
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
    """Append the order in ``slot`` (fields already set) to the back of its level."""
    o = orders[slot]
    idx = o.price - meta[M_PRICE_LO]
    assert idx >= 0
    assert idx < levels.shape[0]
    assert o.remaining > 0
    lv = levels[idx]
    o.next = -1
    if lv.count == 0:
        lv.head = slot
        lv.tail = slot
        o.prev = -1
        lv.qty = o.remaining
        lv.count = 1
        bit_set(bits_lo, bits_hi, idx)
        if o.side == SIDE_BUY:
            assert meta[M_BEST_ASK] == -1 or idx < meta[M_BEST_ASK]
            if meta[M_BEST_BID] < idx:
                meta[M_BEST_BID] = idx
        else:
            assert meta[M_BEST_BID] < idx
            if meta[M_BEST_ASK] == -1 or idx < meta[M_BEST_ASK]:
                meta[M_BEST_ASK] = idx
    else:
        tail = lv.tail
        assert orders[tail].side == o.side
        orders[tail].next = slot
        o.prev = tail
        lv.tail = slot
        lv.qty += o.remaining
        lv.count += 1
    meta[M_LIVE] += 1
    return idx


@njit(cache=True)
def unlink(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    meta: np.ndarray,
    slot: int,
) -> int:
    """Take the order in ``slot`` off its level (the slot stays allocated); return the level."""
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
    if lv.count == 0:
        assert lv.qty == 0
        bit_clear(bits_lo, bits_hi, idx)
        if meta[M_BEST_BID] == idx:
            meta[M_BEST_BID] = find_prev(bits_lo, bits_hi, idx - 1)
        elif meta[M_BEST_ASK] == idx:
            meta[M_BEST_ASK] = find_next(bits_lo, bits_hi, idx + 1)
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
