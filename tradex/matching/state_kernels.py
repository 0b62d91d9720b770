"""Jitted whole-book walks: canonical export, internal-state validation, restore."""

from __future__ import annotations

import numpy as np

from tradex.matching.bitmap import bit_test, find_next, find_prev
from tradex.matching.book_ops import link_tail
from tradex.matching.constants import SIDE_BUY, SIDE_SELL
from tradex.matching.dtypes import (
    M_BEST_ASK,
    M_BEST_BID,
    M_FREE,
    M_HASH_SHIFT,
    M_LIVE,
    M_PRICE_LO,
)
from tradex.matching.hashtable import hash_find, hash_insert
from tradex.matching.jit_cache import engine_njit

CANONICAL_WIDTH = 6  # order_id, owner, side, price, remaining, filled


@engine_njit()
def export_canonical(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    meta: np.ndarray,
    out: np.ndarray,
) -> int:
    """Fill ``out`` (live x 6) with live orders: bids best first, then asks best first."""
    n = 0
    lo = meta[M_PRICE_LO]
    for side in (SIDE_BUY, SIDE_SELL):
        idx = meta[M_BEST_BID] if side == SIDE_BUY else meta[M_BEST_ASK]
        while idx >= 0:
            lv = levels[idx]
            slot = lv.head
            for _ in range(lv.count):
                o = orders[slot]
                out[n, 0] = o.order_id
                out[n, 1] = o.owner
                out[n, 2] = o.side
                out[n, 3] = idx + lo
                out[n, 4] = o.remaining
                out[n, 5] = o.filled
                n += 1
                slot = o.next
            if side == SIDE_BUY:
                idx = find_prev(bits_lo, bits_hi, idx - 1)
            else:
                idx = find_next(bits_lo, bits_hi, idx + 1)
    return n


@engine_njit()
def validate_state(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    htable: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
) -> int:
    """0 if consistent, else the number of the first check that failed (see book.py)."""
    lo = meta[M_PRICE_LO]
    live = 0
    highest_bid = -1
    lowest_ask = -1
    for idx in range(levels.shape[0]):
        lv = levels[idx]
        if lv.count == 0:
            if bit_test(bits_lo, idx):
                return 1  # bit set for an empty level
            if lv.qty != 0:
                return 2  # empty level with quantity
            continue
        if not bit_test(bits_lo, idx):
            return 3  # non-empty level without its bit
        w = idx >> 6
        if (bits_hi[w >> 6] >> (w & 63)) & 1 != 1:
            return 4  # summary bit missing
        slot = lv.head
        prev = -1
        total = 0
        side = orders[slot].side
        for _ in range(lv.count):
            if slot < 0 or slot >= orders.shape[0]:
                return 5  # broken link
            o = orders[slot]
            if o.prev != prev:
                return 6  # prev link inconsistent
            if o.side != side:
                return 7  # mixed sides on one level
            if o.price != idx + lo:
                return 8  # order price differs from its level
            if o.remaining <= 0 or o.filled < 0:
                return 9  # bad quantities
            if hash_find(htable, meta[M_HASH_SHIFT], o.order_id) != slot:
                return 10  # hash table does not point at the slot
            total += o.remaining
            prev = slot
            slot = o.next
        if slot != -1 or lv.tail != prev:
            return 11  # level list does not end at its tail
        if total != lv.qty:
            return 12  # level total differs from the sum of its orders
        live += lv.count
        if side == SIDE_BUY:
            highest_bid = idx
        elif lowest_ask == -1:
            lowest_ask = idx
        if side == SIDE_BUY and lowest_ask != -1:
            return 13  # a bid above an ask: crossed book
    if live != meta[M_LIVE]:
        return 14  # live count wrong
    if meta[M_BEST_BID] != highest_bid or meta[M_BEST_ASK] != lowest_ask:
        return 15  # best prices wrong
    if meta[M_FREE] + live != orders.shape[0]:
        return 16  # slots leaked
    used = 0
    for b in range(htable.shape[0] >> 1):
        if htable[2 * b] != 0:
            used += 1
    if used != live:
        return 17  # hash table holds stale ids
    return 0


@engine_njit()
def order_slot(htable: np.ndarray, order_id: int) -> int:
    """Slot of the live order ``order_id`` (> 0), or -1: one probe sequence of the id table."""
    return hash_find(htable, 0, order_id)


@engine_njit()
def restore_rows(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    htable: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    rows: np.ndarray,
) -> None:
    """Rest canonical rows (already validated) into an empty book with its window set."""
    assert meta[M_LIVE] == 0
    lo = meta[M_PRICE_LO]
    n_free = meta[M_FREE]
    best_bid = meta[M_BEST_BID]
    best_ask = meta[M_BEST_ASK]
    for i in range(rows.shape[0]):
        assert n_free > 0
        n_free -= 1
        slot = free_slots[n_free]
        hash_insert(htable, meta[M_HASH_SHIFT], rows[i, 0], slot)
        o = orders[slot]
        o.order_id = rows[i, 0]
        o.owner = rows[i, 1]
        o.side = rows[i, 2]
        o.price = rows[i, 3]
        o.remaining = rows[i, 4]
        o.filled = rows[i, 5]
        idx = rows[i, 3] - lo
        assert idx >= 0
        assert idx < levels.shape[0]
        if link_tail(orders, levels, bits_lo, bits_hi, slot, idx):
            if rows[i, 2] == SIDE_BUY:
                if best_bid < idx:
                    best_bid = idx
            elif best_ask == -1 or idx < best_ask:
                best_ask = idx
    meta[M_FREE] = n_free
    meta[M_LIVE] = rows.shape[0]
    meta[M_BEST_BID] = best_bid
    meta[M_BEST_ASK] = best_ask
