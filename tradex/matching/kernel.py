"""The matching kernel: one jitted call processes a batch of commands against one book.

Inputs are numpy arrays and scalars only (see :mod:`tradex.matching.dtypes`). Outputs go to
preallocated, reused buffers; the counts are left in ``meta``. The semantics are documented
in docs/matching.md and mirrored line by line by :mod:`tradex.matching.reference`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradex.matching.bitmap import find_next, find_prev
from tradex.matching.book_ops import (
    anchor_window,
    emit_event,
    emit_l2,
    emit_trade,
    in_window,
    link_tail,
    release_slot,
    take_slot,
    unlink,
)
from tradex.matching.constants import (
    EV_ACCEPTED,
    EV_AMENDED,
    EV_CANCELLED,
    EV_DECREMENTED,
    EV_EXPIRED,
    EV_FILLED,
    EV_REJECTED,
    EV_RESTED,
    EV_RULES,
    OP_AMEND,
    OP_CANCEL,
    OP_LIMIT_FOK,
    OP_LIMIT_GTC,
    OP_MARKET,
    OP_POST_ONLY,
    OP_RULES,
    PROTECTION_NONE,
    REASON_AMEND_QTY_TOO_LOW,
    REASON_BAD_ID,
    REASON_BAD_OP,
    REASON_BAD_PRICE,
    REASON_BAD_PROTECTION,
    REASON_BAD_QTY,
    REASON_BAD_RULES,
    REASON_BAD_SIDE,
    REASON_BAD_STP,
    REASON_DUPLICATE_ID,
    REASON_FOK_UNFILLABLE,
    REASON_HALTED,
    REASON_IOC_REMAINDER,
    REASON_MARKET_REMAINDER,
    REASON_NONE,
    REASON_NOT_OWNER,
    REASON_POST_ONLY_WOULD_TRADE,
    REASON_PRICE_BAND,
    REASON_PRICE_OUT_OF_RANGE,
    REASON_SELF_TRADE,
    REASON_SIDE_MISMATCH,
    REASON_UNKNOWN_ORDER,
    REASON_USER_CANCEL,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_OK,
    STATUS_ORDERS_FULL,
    STATUS_OUTPUT_FULL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_MODE_MAX,
    STP_NONE,
)
from tradex.matching.dtypes import (
    M_BAND_BPS,
    M_BEST_ASK,
    M_BEST_BID,
    M_DONE,
    M_FREE,
    M_HALTED,
    M_HASH_SHIFT,
    M_LAST_TRADE,
    M_LIVE,
    M_N_EVENTS,
    M_N_L2,
    M_N_TRADES,
    M_PRICE_LO,
    M_STP_QTY,
    M_STP_STOP,
    M_TAKER_FILLED,
)
from tradex.matching.hashtable import hash_find

PRICE_INF = np.int64(1) << np.int64(62)  # "no limit" for a market buy; -PRICE_INF for a sell


@njit(cache=True)
def reference_price(meta: np.ndarray) -> int:
    """Last trade, else mid of best bid and ask, else 0 (no band check)."""
    if meta[M_LAST_TRADE] > 0:
        return meta[M_LAST_TRADE]
    if meta[M_BEST_BID] >= 0 and meta[M_BEST_ASK] >= 0:
        lo = meta[M_PRICE_LO]
        return (meta[M_BEST_BID] + lo + meta[M_BEST_ASK] + lo) // 2
    return 0


@njit(cache=True)
def outside_band(meta: np.ndarray, price: int) -> bool:
    band = meta[M_BAND_BPS]
    if band == 0:
        return False
    ref = reference_price(meta)
    if ref == 0:
        return False
    return abs(price - ref) * 10_000 > ref * band


@njit(cache=True)
def best_opposite_price(meta: np.ndarray, side: int) -> int:
    """Best price the taker on ``side`` would meet, 0 if that side of the book is empty."""
    idx = meta[M_BEST_ASK] if side == SIDE_BUY else meta[M_BEST_BID]
    if idx < 0:
        return 0
    return idx + meta[M_PRICE_LO]


@njit(cache=True)
def crosses(side: int, level_price: int, limit: int) -> bool:
    if side == SIDE_BUY:
        return level_price <= limit
    return level_price >= limit


@njit(cache=True)
def fok_check(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    meta: np.ndarray,
    side: int,
    limit: int,
    qty: int,
    owner: int,
    stp_mode: int,
) -> int:
    """REASON_NONE if a FOK would fill completely, else why not (nothing is changed)."""
    need = qty
    lo = meta[M_PRICE_LO]
    idx = meta[M_BEST_ASK] if side == SIDE_BUY else meta[M_BEST_BID]
    while idx >= 0 and crosses(side, idx + lo, limit):
        lv = levels[idx]
        slot = lv.head
        for _ in range(lv.count):
            o = orders[slot]
            if stp_mode != STP_NONE and o.owner == owner:
                return REASON_SELF_TRADE
            need -= o.remaining
            if need <= 0:
                return REASON_NONE
            slot = o.next
        if side == SIDE_BUY:
            idx = find_next(bits_lo, bits_hi, idx + 1)
        else:
            idx = find_prev(bits_lo, bits_hi, idx - 1)
    return REASON_FOK_UNFILLABLE


@njit(cache=True)
def remove_maker(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    hkeys: np.ndarray,
    hslots: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    slot: int,
) -> None:
    unlink(orders, levels, bits_lo, bits_hi, meta, slot)
    release_slot(orders, hkeys, hslots, free_slots, meta, slot)


@njit(cache=True)
def match(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    hkeys: np.ndarray,
    hslots: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    trades: np.ndarray,
    events: np.ndarray,
    deltas: np.ndarray,
    ci: int,
    ts: int,
    taker_id: int,
    taker_owner: int,
    side: int,
    taker_price: int,
    limit: int,
    rem: int,
    stp_mode: int,
) -> int:
    """Trade the taker against the opposite side up to ``limit``; return its remaining qty.

    Level by level, FIFO inside a level; one L2 delta per level whose quantity changed.
    Sets meta[M_STP_STOP] (and meta[M_STP_QTY]) when self-trade prevention ends the taker.
    """
    meta[M_STP_STOP] = 0
    meta[M_STP_QTY] = 0
    maker_side = SIDE_SELL if side == SIDE_BUY else SIDE_BUY
    while rem > 0:
        idx = meta[M_BEST_ASK] if side == SIDE_BUY else meta[M_BEST_BID]
        if idx < 0:
            break
        level_price = idx + meta[M_PRICE_LO]
        if not crosses(side, level_price, limit):
            break
        lv = levels[idx]
        qty_before = lv.qty
        while rem > 0 and lv.count > 0:
            slot = lv.head
            mk = orders[slot]
            assert mk.side == maker_side
            if stp_mode != STP_NONE and mk.owner == taker_owner:
                if stp_mode == STP_CANCEL_NEWEST:
                    meta[M_STP_STOP] = 1
                    meta[M_STP_QTY] = rem
                    rem = 0
                    break
                if stp_mode in (STP_CANCEL_OLDEST, STP_CANCEL_BOTH):
                    emit_event(
                        events, meta, ci, ts, EV_CANCELLED, mk.order_id, mk.owner, maker_side,
                        level_price, mk.remaining, mk.filled, REASON_SELF_TRADE,
                    )  # fmt: skip
                    remove_maker(
                        orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, slot
                    )
                    if stp_mode == STP_CANCEL_BOTH:
                        meta[M_STP_STOP] = 1
                        meta[M_STP_QTY] = rem
                        rem = 0
                        break
                    continue
                # decrement-and-cancel
                dec = rem if rem < mk.remaining else mk.remaining
                if mk.remaining == dec:
                    emit_event(
                        events, meta, ci, ts, EV_CANCELLED, mk.order_id, mk.owner, maker_side,
                        level_price, dec, mk.filled, REASON_SELF_TRADE,
                    )  # fmt: skip
                    remove_maker(
                        orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, slot
                    )
                else:
                    mk.remaining -= dec
                    lv.qty -= dec
                    emit_event(
                        events, meta, ci, ts, EV_DECREMENTED, mk.order_id, mk.owner, maker_side,
                        level_price, mk.remaining, mk.filled, REASON_SELF_TRADE,
                    )  # fmt: skip
                if rem == dec:
                    meta[M_STP_STOP] = 1
                    meta[M_STP_QTY] = dec
                    rem = 0
                    break
                rem -= dec
                emit_event(
                    events, meta, ci, ts, EV_DECREMENTED, taker_id, taker_owner, side,
                    taker_price, rem, meta[M_TAKER_FILLED], REASON_SELF_TRADE,
                )  # fmt: skip
                continue
            fill = rem if rem < mk.remaining else mk.remaining
            emit_trade(
                trades, meta, ci, ts, mk.order_id, taker_id, mk.owner, taker_owner, side,
                level_price, fill,
            )  # fmt: skip
            rem -= fill
            meta[M_TAKER_FILLED] += fill
            meta[M_LAST_TRADE] = level_price
            mk.filled += fill
            if fill == mk.remaining:
                maker_id = mk.order_id
                maker_owner = mk.owner
                maker_filled = mk.filled
                remove_maker(
                    orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, slot
                )
                emit_event(
                    events, meta, ci, ts, EV_FILLED, maker_id, maker_owner, maker_side,
                    level_price, 0, maker_filled, REASON_NONE,
                )  # fmt: skip
            else:
                mk.remaining -= fill
                lv.qty -= fill
        if lv.qty != qty_before:
            emit_l2(deltas, meta, ci, ts, maker_side, level_price, lv.qty)
    return rem


@njit(cache=True)
def reject(events: np.ndarray, meta: np.ndarray, ci: int, ts: int, c: np.void, reason: int) -> None:
    emit_event(
        events, meta, ci, ts, EV_REJECTED, c.order_id, c.owner, c.side, c.price, c.qty, 0, reason
    )


@njit(cache=True)
def new_order(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    hkeys: np.ndarray,
    hslots: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    trades: np.ndarray,
    events: np.ndarray,
    deltas: np.ndarray,
    ci: int,
    c: np.void,
) -> int:
    """Ops 1-5. Returns a status (STATUS_ORDERS_FULL before touching anything)."""
    op = c.op
    side = c.side
    oid = c.order_id
    owner = c.owner
    price = c.price
    qty = c.qty
    stp_mode = c.stp_mode
    ts = c.timestamp_ns
    may_rest = op in (OP_LIMIT_GTC, OP_POST_ONLY)
    reason = REASON_NONE
    if side != SIDE_BUY and side != SIDE_SELL:
        reason = REASON_BAD_SIDE
    elif oid <= 0:
        reason = REASON_BAD_ID
    elif qty <= 0:
        reason = REASON_BAD_QTY
    elif op == OP_MARKET and price != 0:
        reason = REASON_BAD_PRICE
    elif op == OP_MARKET and c.protection_ticks < PROTECTION_NONE:
        reason = REASON_BAD_PROTECTION
    elif op != OP_MARKET and price <= 0:
        reason = REASON_BAD_PRICE
    elif stp_mode < 0 or stp_mode > STP_MODE_MAX:
        reason = REASON_BAD_STP
    elif meta[M_HALTED] != 0:
        reason = REASON_HALTED
    elif hash_find(hkeys, hslots, meta[M_HASH_SHIFT], oid) >= 0:
        reason = REASON_DUPLICATE_ID
    elif may_rest and meta[M_LIVE] > 0 and not in_window(levels, meta, price):
        reason = REASON_PRICE_OUT_OF_RANGE
    elif op != OP_MARKET and outside_band(meta, price):
        reason = REASON_PRICE_BAND
    elif op == OP_POST_ONLY:
        best = best_opposite_price(meta, side)
        if best > 0 and crosses(side, best, price):
            reason = REASON_POST_ONLY_WOULD_TRADE
    if reason != REASON_NONE:
        reject(events, meta, ci, ts, c, reason)
        return STATUS_OK
    if may_rest and meta[M_FREE] == 0:
        return STATUS_ORDERS_FULL

    emit_event(events, meta, ci, ts, EV_ACCEPTED, oid, owner, side, price, qty, 0, REASON_NONE)
    limit = price
    if op == OP_MARKET:
        best = best_opposite_price(meta, side)
        if c.protection_ticks == PROTECTION_NONE or best == 0:
            limit = PRICE_INF if side == SIDE_BUY else -PRICE_INF
        elif side == SIDE_BUY:
            limit = best + c.protection_ticks
        else:
            limit = best - c.protection_ticks
    if op == OP_LIMIT_FOK:
        why = fok_check(orders, levels, bits_lo, bits_hi, meta, side, limit, qty, owner, stp_mode)
        if why != REASON_NONE:
            emit_event(events, meta, ci, ts, EV_EXPIRED, oid, owner, side, price, qty, 0, why)
            return STATUS_OK
    meta[M_TAKER_FILLED] = 0
    rem = match(
        orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, trades, events,
        deltas, ci, ts, oid, owner, side, price, limit, qty, stp_mode,
    )  # fmt: skip
    filled = meta[M_TAKER_FILLED]
    if meta[M_STP_STOP] != 0:
        emit_event(
            events, meta, ci, ts, EV_CANCELLED, oid, owner, side, price, meta[M_STP_QTY],
            filled, REASON_SELF_TRADE,
        )  # fmt: skip
    elif rem == 0:
        emit_event(events, meta, ci, ts, EV_FILLED, oid, owner, side, price, 0, filled, REASON_NONE)
    elif may_rest:
        if meta[M_LIVE] == 0:
            anchor_window(levels, meta, price)
        slot = take_slot(hkeys, hslots, free_slots, meta, oid)
        o = orders[slot]
        o.order_id = oid
        o.owner = owner
        o.side = side
        o.price = price
        o.remaining = rem
        o.filled = filled
        idx = link_tail(orders, levels, bits_lo, bits_hi, meta, slot)
        emit_event(
            events, meta, ci, ts, EV_RESTED, oid, owner, side, price, rem, filled, REASON_NONE
        )
        emit_l2(deltas, meta, ci, ts, side, price, levels[idx].qty)
    else:
        why = REASON_MARKET_REMAINDER if op == OP_MARKET else REASON_IOC_REMAINDER
        assert op != OP_LIMIT_FOK
        emit_event(events, meta, ci, ts, EV_EXPIRED, oid, owner, side, price, rem, filled, why)
    return STATUS_OK


@njit(cache=True)
def cancel_order(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    hkeys: np.ndarray,
    hslots: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    events: np.ndarray,
    deltas: np.ndarray,
    ci: int,
    c: np.void,
) -> None:
    ts = c.timestamp_ns
    slot = hash_find(hkeys, hslots, meta[M_HASH_SHIFT], c.order_id) if c.order_id > 0 else -1
    if slot < 0:
        reject(events, meta, ci, ts, c, REASON_UNKNOWN_ORDER)
        return
    o = orders[slot]
    if o.owner != c.owner:
        reject(events, meta, ci, ts, c, REASON_NOT_OWNER)
        return
    oid = o.order_id
    owner = o.owner
    side = o.side
    price = o.price
    rem = o.remaining
    filled = o.filled
    idx = unlink(orders, levels, bits_lo, bits_hi, meta, slot)
    release_slot(orders, hkeys, hslots, free_slots, meta, slot)
    emit_event(
        events, meta, ci, ts, EV_CANCELLED, oid, owner, side, price, rem, filled, REASON_USER_CANCEL
    )
    emit_l2(deltas, meta, ci, ts, side, price, levels[idx].qty)


@njit(cache=True)
def amend_order(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    hkeys: np.ndarray,
    hslots: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    trades: np.ndarray,
    events: np.ndarray,
    deltas: np.ndarray,
    ci: int,
    c: np.void,
) -> None:
    ts = c.timestamp_ns
    price = c.price
    stp_mode = c.stp_mode
    slot = -1
    reason = REASON_NONE
    if meta[M_HALTED] != 0:
        reason = REASON_HALTED
    elif price <= 0:
        reason = REASON_BAD_PRICE
    elif c.qty <= 0:
        reason = REASON_BAD_QTY
    elif stp_mode < 0 or stp_mode > STP_MODE_MAX:
        reason = REASON_BAD_STP
    else:
        if c.order_id > 0:
            slot = hash_find(hkeys, hslots, meta[M_HASH_SHIFT], c.order_id)
        if slot < 0:
            reason = REASON_UNKNOWN_ORDER
        elif orders[slot].owner != c.owner:
            reason = REASON_NOT_OWNER
        elif orders[slot].side != c.side:
            reason = REASON_SIDE_MISMATCH
        elif c.qty - orders[slot].filled <= 0:
            reason = REASON_AMEND_QTY_TOO_LOW
        elif price != orders[slot].price and not in_window(levels, meta, price):
            reason = REASON_PRICE_OUT_OF_RANGE
        elif price != orders[slot].price and outside_band(meta, price):
            reason = REASON_PRICE_BAND
    if reason != REASON_NONE:
        reject(events, meta, ci, ts, c, reason)
        return
    o = orders[slot]
    oid = o.order_id
    owner = o.owner
    side = o.side
    new_rem = c.qty - o.filled
    if price == o.price and new_rem <= o.remaining:
        idx = price - meta[M_PRICE_LO]
        lv = levels[idx]
        delta = o.remaining - new_rem
        o.remaining = new_rem
        lv.qty -= delta
        emit_event(
            events,
            meta,
            ci,
            ts,
            EV_AMENDED,
            oid,
            owner,
            side,
            price,
            new_rem,
            o.filled,
            REASON_NONE,
        )
        if delta != 0:
            emit_l2(deltas, meta, ci, ts, side, price, lv.qty)
        return
    old_price = o.price
    idx = unlink(orders, levels, bits_lo, bits_hi, meta, slot)
    emit_event(
        events, meta, ci, ts, EV_AMENDED, oid, owner, side, price, new_rem, o.filled, REASON_NONE
    )
    emit_l2(deltas, meta, ci, ts, side, old_price, levels[idx].qty)
    meta[M_TAKER_FILLED] = o.filled
    rem = match(
        orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, trades, events,
        deltas, ci, ts, oid, owner, side, price, price, new_rem, stp_mode,
    )  # fmt: skip
    filled = meta[M_TAKER_FILLED]
    o = orders[slot]
    assert o.order_id == oid
    if meta[M_STP_STOP] != 0:
        release_slot(orders, hkeys, hslots, free_slots, meta, slot)
        emit_event(
            events, meta, ci, ts, EV_CANCELLED, oid, owner, side, price, meta[M_STP_QTY],
            filled, REASON_SELF_TRADE,
        )  # fmt: skip
    elif rem == 0:
        release_slot(orders, hkeys, hslots, free_slots, meta, slot)
        emit_event(events, meta, ci, ts, EV_FILLED, oid, owner, side, price, 0, filled, REASON_NONE)
    else:
        if meta[M_LIVE] == 0:
            anchor_window(levels, meta, price)
        o.price = price
        o.remaining = rem
        o.filled = filled
        idx = link_tail(orders, levels, bits_lo, bits_hi, meta, slot)
        emit_event(
            events, meta, ci, ts, EV_RESTED, oid, owner, side, price, rem, filled, REASON_NONE
        )
        emit_l2(deltas, meta, ci, ts, side, price, levels[idx].qty)


@njit(cache=True)
def apply_rules(events: np.ndarray, meta: np.ndarray, ci: int, c: np.void) -> None:
    ts = c.timestamp_ns
    if c.band_bps < 0 or (c.halted != 0 and c.halted != 1):
        reject(events, meta, ci, ts, c, REASON_BAD_RULES)
        return
    meta[M_BAND_BPS] = c.band_bps
    meta[M_HALTED] = c.halted
    emit_event(events, meta, ci, ts, EV_RULES, 0, 0, c.halted, 0, c.band_bps, 0, REASON_NONE)


@njit(cache=True)
def process_batch(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    hkeys: np.ndarray,
    hslots: np.ndarray,
    free_slots: np.ndarray,
    meta: np.ndarray,
    cmds: np.ndarray,
    trades: np.ndarray,
    events: np.ndarray,
    deltas: np.ndarray,
) -> int:
    """Process ``cmds`` in order; return a STATUS_* code, with meta[M_DONE] commands done.

    Before each command the kernel checks that the worst case of that command fits the
    output buffers; if not it stops (STATUS_OUTPUT_FULL) and the caller drains the buffers
    and calls again with the rest.
    """
    meta[M_N_TRADES] = 0
    meta[M_N_EVENTS] = 0
    meta[M_N_L2] = 0
    meta[M_DONE] = 0
    trades_max = trades.shape[0]
    events_max = events.shape[0]
    deltas_max = deltas.shape[0]
    status = STATUS_OK
    for ci in range(cmds.shape[0]):
        live = meta[M_LIVE]
        if (
            trades_max - meta[M_N_TRADES] < live + 1
            or events_max - meta[M_N_EVENTS] < 2 * live + 8
            or deltas_max - meta[M_N_L2] < live + 4
        ):
            status = STATUS_OUTPUT_FULL
            break
        c = cmds[ci]
        op = c.op
        if op >= OP_LIMIT_GTC and op <= OP_MARKET:
            status = new_order(
                orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, trades,
                events, deltas, ci, c,
            )  # fmt: skip
            if status != STATUS_OK:
                break
        elif op == OP_CANCEL:
            cancel_order(
                orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, events,
                deltas, ci, c,
            )  # fmt: skip
        elif op == OP_AMEND:
            amend_order(
                orders, levels, bits_lo, bits_hi, hkeys, hslots, free_slots, meta, trades,
                events, deltas, ci, c,
            )  # fmt: skip
        elif op == OP_RULES:
            apply_rules(events, meta, ci, c)
        else:
            reject(events, meta, ci, c.timestamp_ns, c, REASON_BAD_OP)
        meta[M_DONE] = ci + 1
    return status
