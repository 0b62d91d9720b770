"""Jitted leaf primitives on the book state: link, unlink, output records, the band.

Every function takes numpy arrays and scalars only and calls no other function (a leaf):
Numba then prunes the reference counting of the array arguments, which would otherwise
cost two atomic operations per array per call on the hot path. None of them reads or
writes the ``meta`` array: the kernel keeps the book's scalars (counters, best prices,
``price_lo``) in local variables for a whole batch, passes what a helper needs and applies
what it returns, so they live in registers instead of memory round trips.
"""

from __future__ import annotations

import numpy as np

from tradex.matching.bitmap import find_next, find_prev
from tradex.matching.constants import (
    REASON_FOK_UNFILLABLE,
    REASON_NONE,
    REASON_SELF_TRADE,
    SIDE_BUY,
    STP_NONE,
)
from tradex.matching.jit_cache import engine_njit

ONE = np.int64(1)


@engine_njit(inline="always")
def link_tail(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    slot: int,
    idx: int,
) -> bool:
    """Append the order in ``slot`` (fields already set) to the back of level ``idx``;
    True if the level was empty (the caller then updates its best price).

    No assertion before the first array access here: with one, Numba 0.68 no longer prunes
    the reference counting of the array arguments (atomics on every call, measured 2-3x
    slower overall). Check the IR (tests/matching/test_kernel_refcounts.py) after edits."""
    o = orders[np.uint64(slot)]
    lv = levels[np.uint64(idx)]
    o.next = -1
    if lv.count == 0:
        lv.head = slot
        lv.tail = slot
        o.prev = -1
        lv.qty = o.remaining
        lv.count = 1
        w = idx >> 6
        bits_lo[np.uint64(w)] |= ONE << (idx & 63)
        bits_hi[np.uint64(w >> 6)] |= ONE << (w & 63)
        return True
    tail = lv.tail
    orders[np.uint64(tail)].next = slot
    o.prev = tail
    lv.tail = slot
    lv.qty += o.remaining
    lv.count += 1
    return False


@engine_njit(inline="always")
def unlink(orders: np.ndarray, levels: np.ndarray, slot: int, idx: int) -> int:
    """Take the order in ``slot`` off its level ``idx`` (the slot stays allocated); return
    the orders left on the level.

    If the level empties the caller clears its bit and moves the best price
    (:func:`tradex.matching.bitmap.level_emptied`); kept apart so both stay leaves."""
    o = orders[np.uint64(slot)]
    lv = levels[np.uint64(idx)]
    prev = o.prev
    nxt = o.next
    if prev == -1:
        lv.head = nxt
    else:
        orders[np.uint64(prev)].next = nxt
    if nxt == -1:
        lv.tail = prev
    else:
        orders[np.uint64(nxt)].prev = prev
    lv.qty -= o.remaining
    count = lv.count - 1
    assert count >= 0
    lv.count = count
    return count


@engine_njit(inline="always")
def emit_event(
    events: np.ndarray,
    n: int,
    seq: int,
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
    """Write event record ``n`` (the caller counts records and sequence numbers)."""
    e = events[np.uint64(n)]
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


@engine_njit(inline="always")
def emit_trade(
    trades: np.ndarray,
    n: int,
    seq: int,
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
    t = trades[np.uint64(n)]
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
    assert qty > 0


@engine_njit(inline="always")
def emit_l2(
    deltas: np.ndarray, n: int, seq: int, ci: int, ts: int, side: int, price: int, qty: int
) -> None:
    d = deltas[np.uint64(n)]
    d.seq = seq
    d.cmd_index = ci
    d.side = side
    d.price = price
    d.qty = qty
    d.timestamp_ns = ts
    assert qty >= 0


@engine_njit(inline="always")
def outside_band(
    price: int, band: int, last_trade: int, best_bid: int, best_ask: int, lo: int
) -> bool:
    """Price further from the reference (last trade, else mid, else none) than the band."""
    if band == 0:
        return False
    ref = last_trade
    if ref == 0 and best_bid >= 0 and best_ask >= 0:
        ref = (best_bid + lo + best_ask + lo) // 2
    if ref == 0:
        return False
    return abs(price - ref) * 10_000 > ref * band


@engine_njit()
def fok_outcome(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    best: int,
    lo: int,
    side: int,
    limit: int,
    qty: int,
    owner: int,
    stp: int,
) -> int:
    """REASON_NONE if a FOK of ``qty`` fills completely against the opposite side starting
    at level ``best`` (in priority order, up to ``limit``), REASON_SELF_TRADE if it would
    first meet an own order with STP on, else REASON_FOK_UNFILLABLE. Reads only.

    Not inlined (FOKs are rare; the scan loop would keep reference counting in the kernel)
    and written with early returns, so it compiles without reference counting itself."""
    need = qty
    idx = best
    while idx >= 0:
        if side == SIDE_BUY and idx + lo > limit:
            return REASON_FOK_UNFILLABLE
        if side != SIDE_BUY and idx + lo < limit:
            return REASON_FOK_UNFILLABLE
        slot = levels[np.uint64(idx)].head
        for _ in range(levels[np.uint64(idx)].count):
            if stp != STP_NONE and orders[np.uint64(slot)].owner == owner:
                return REASON_SELF_TRADE
            need -= orders[np.uint64(slot)].remaining
            if need <= 0:
                return REASON_NONE
            slot = orders[np.uint64(slot)].next
        if side == SIDE_BUY:
            idx = find_next(bits_lo, bits_hi, idx + 1)
        else:
            idx = find_prev(bits_lo, bits_hi, idx - 1)
    return REASON_FOK_UNFILLABLE
