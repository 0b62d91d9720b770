"""The matching kernel: one jitted call processes a batch of commands against one book.

The whole command loop is one function that calls only leaf helpers (functions that call
nothing else): Numba then keeps the reference counts of the state arrays out of the hot
path (a non-leaf helper taking arrays costs two atomics per array per call, which measured
here at 5-10x the cost of the matching itself).

Inputs are numpy arrays and scalars only (see :mod:`tradex.matching.dtypes`). Outputs go
to preallocated, reused buffers; the counts are left in ``meta``. The semantics are
documented in docs/matching.md and mirrored by :mod:`tradex.matching.reference`.

Numba's on-disk cache is keyed on this file only: after editing a helper module it
inlines (hashtable.py, book_ops.py, bitmap.py) touch this file or delete the cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradex.matching.bitmap import find_next, find_prev, level_emptied
from tradex.matching.book_ops import (
    emit_event,
    emit_l2,
    emit_trade,
    link_tail,
    outside_band,
    pop_free_slot,
    push_free_slot,
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
)
from tradex.matching.hashtable import hash_delete, hash_find, hash_insert

PRICE_INF = np.int64(1) << np.int64(62)  # "no limit" for a market buy; -PRICE_INF for a sell


@njit(cache=True)
def process_batch(
    orders: np.ndarray,
    levels: np.ndarray,
    bits_lo: np.ndarray,
    bits_hi: np.ndarray,
    htable: np.ndarray,
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
    and calls again with the rest. STATUS_ORDERS_FULL stops before a command that might
    need a free order slot when none is left (nothing of that command is applied).
    """
    meta[M_N_TRADES] = 0
    meta[M_N_EVENTS] = 0
    meta[M_N_L2] = 0
    meta[M_DONE] = 0
    shift = meta[M_HASH_SHIFT]
    levels_max = levels.shape[0]
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
        ts = c.timestamp_ns
        reason = REASON_NONE
        # The taker: a new order (ops 1-5) or an amended order re-entering the book.
        t_id = c.order_id
        t_owner = c.owner
        t_side = c.side
        t_price = c.price
        t_rem = c.qty
        t_filled = 0
        t_stp = c.stp_mode
        t_slot = -1  # the amended order's slot, kept while it is off the book
        t_rests = False  # GTC, post-only and amends rest; IOC, FOK and market never do
        t_limit = c.price
        lo = meta[M_PRICE_LO]

        if op >= OP_LIMIT_GTC and op <= OP_MARKET:
            t_rests = op in (OP_LIMIT_GTC, OP_POST_ONLY)
            if t_side != SIDE_BUY and t_side != SIDE_SELL:
                reason = REASON_BAD_SIDE
            elif t_id <= 0:
                reason = REASON_BAD_ID
            elif t_rem <= 0:
                reason = REASON_BAD_QTY
            elif op == OP_MARKET and t_price != 0:
                reason = REASON_BAD_PRICE
            elif op == OP_MARKET and c.protection_ticks < PROTECTION_NONE:
                reason = REASON_BAD_PROTECTION
            elif op != OP_MARKET and t_price <= 0:
                reason = REASON_BAD_PRICE
            elif t_stp < 0 or t_stp > STP_MODE_MAX:
                reason = REASON_BAD_STP
            elif meta[M_HALTED] != 0:
                reason = REASON_HALTED
            elif hash_find(htable, shift, t_id) >= 0:
                reason = REASON_DUPLICATE_ID
            elif t_rests and live > 0 and (t_price - lo < 0 or t_price - lo >= levels_max):
                reason = REASON_PRICE_OUT_OF_RANGE
            elif op != OP_MARKET and outside_band(meta, t_price):
                reason = REASON_PRICE_BAND
            elif op == OP_POST_ONLY:
                if t_side == SIDE_BUY:
                    if meta[M_BEST_ASK] >= 0 and meta[M_BEST_ASK] + lo <= t_price:
                        reason = REASON_POST_ONLY_WOULD_TRADE
                elif meta[M_BEST_BID] >= 0 and meta[M_BEST_BID] + lo >= t_price:
                    reason = REASON_POST_ONLY_WOULD_TRADE
            if reason != REASON_NONE:
                emit_event(
                    events, meta, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price, t_rem, 0,
                    reason,
                )  # fmt: skip
                meta[M_DONE] = ci + 1
                continue
            if t_rests and meta[M_FREE] == 0:
                status = STATUS_ORDERS_FULL
                break
            emit_event(
                events, meta, ci, ts, EV_ACCEPTED, t_id, t_owner, t_side, t_price, t_rem, 0,
                REASON_NONE,
            )  # fmt: skip
            if op == OP_MARKET:
                best_idx = meta[M_BEST_ASK] if t_side == SIDE_BUY else meta[M_BEST_BID]
                if c.protection_ticks == PROTECTION_NONE or best_idx < 0:
                    t_limit = PRICE_INF if t_side == SIDE_BUY else -PRICE_INF
                elif t_side == SIDE_BUY:
                    t_limit = best_idx + lo + c.protection_ticks
                else:
                    t_limit = best_idx + lo - c.protection_ticks
            if op == OP_LIMIT_FOK:
                # Fills completely or not at all; meeting an own order (STP on) kills it.
                need = t_rem
                reason = REASON_FOK_UNFILLABLE
                idx = meta[M_BEST_ASK] if t_side == SIDE_BUY else meta[M_BEST_BID]
                while idx >= 0 and reason == REASON_FOK_UNFILLABLE:
                    if t_side == SIDE_BUY and idx + lo > t_limit:
                        break
                    if t_side == SIDE_SELL and idx + lo < t_limit:
                        break
                    slot = levels[idx].head
                    for _ in range(levels[idx].count):
                        if t_stp != STP_NONE and orders[slot].owner == t_owner:
                            reason = REASON_SELF_TRADE
                            break
                        need -= orders[slot].remaining
                        if need <= 0:
                            reason = REASON_NONE
                            break
                        slot = orders[slot].next
                    if t_side == SIDE_BUY:
                        idx = find_next(bits_lo, bits_hi, idx + 1)
                    else:
                        idx = find_prev(bits_lo, bits_hi, idx - 1)
                if reason != REASON_NONE:
                    emit_event(
                        events, meta, ci, ts, EV_EXPIRED, t_id, t_owner, t_side, t_price, t_rem,
                        0, reason,
                    )  # fmt: skip
                    meta[M_DONE] = ci + 1
                    continue

        elif op == OP_CANCEL:
            slot = hash_find(htable, shift, t_id) if t_id > 0 else -1
            if slot < 0:
                reason = REASON_UNKNOWN_ORDER
            elif orders[slot].owner != t_owner:
                reason = REASON_NOT_OWNER
            if reason != REASON_NONE:
                emit_event(
                    events, meta, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price, t_rem, 0,
                    reason,
                )  # fmt: skip
            else:
                o = orders[slot]
                side = o.side
                price = o.price
                rem = o.remaining
                filled = o.filled
                idx = unlink(orders, levels, meta, slot)
                if levels[idx].count == 0:
                    level_emptied(bits_lo, bits_hi, meta, idx)
                hash_delete(htable, shift, t_id)
                push_free_slot(orders, free_slots, meta, slot)
                emit_event(
                    events, meta, ci, ts, EV_CANCELLED, t_id, t_owner, side, price, rem, filled,
                    REASON_USER_CANCEL,
                )  # fmt: skip
                emit_l2(deltas, meta, ci, ts, side, price, levels[idx].qty)
            meta[M_DONE] = ci + 1
            continue

        elif op == OP_AMEND:
            slot = -1
            if meta[M_HALTED] != 0:
                reason = REASON_HALTED
            elif t_price <= 0:
                reason = REASON_BAD_PRICE
            elif t_rem <= 0:
                reason = REASON_BAD_QTY
            elif t_stp < 0 or t_stp > STP_MODE_MAX:
                reason = REASON_BAD_STP
            else:
                slot = hash_find(htable, shift, t_id) if t_id > 0 else -1
                if slot < 0:
                    reason = REASON_UNKNOWN_ORDER
                elif orders[slot].owner != t_owner:
                    reason = REASON_NOT_OWNER
                elif orders[slot].side != t_side:
                    reason = REASON_SIDE_MISMATCH
                elif t_rem - orders[slot].filled <= 0:
                    reason = REASON_AMEND_QTY_TOO_LOW
                elif t_price != orders[slot].price and (
                    t_price - lo < 0 or t_price - lo >= levels_max
                ):
                    reason = REASON_PRICE_OUT_OF_RANGE
                elif t_price != orders[slot].price and outside_band(meta, t_price):
                    reason = REASON_PRICE_BAND
            if reason != REASON_NONE:
                emit_event(
                    events, meta, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price, t_rem, 0,
                    reason,
                )  # fmt: skip
                meta[M_DONE] = ci + 1
                continue
            o = orders[slot]
            t_filled = o.filled
            new_rem = t_rem - t_filled
            if t_price == o.price and new_rem <= o.remaining:
                # Same price, not more quantity: in place, time priority kept.
                lv = levels[t_price - lo]
                delta = o.remaining - new_rem
                o.remaining = new_rem
                lv.qty -= delta
                emit_event(
                    events, meta, ci, ts, EV_AMENDED, t_id, t_owner, t_side, t_price, new_rem,
                    t_filled, REASON_NONE,
                )  # fmt: skip
                if delta != 0:
                    emit_l2(deltas, meta, ci, ts, t_side, t_price, lv.qty)
                meta[M_DONE] = ci + 1
                continue
            # Otherwise the order leaves the book and re-enters like a new GTC limit order.
            old_price = o.price
            idx = unlink(orders, levels, meta, slot)
            if levels[idx].count == 0:
                level_emptied(bits_lo, bits_hi, meta, idx)
            emit_event(
                events, meta, ci, ts, EV_AMENDED, t_id, t_owner, t_side, t_price, new_rem,
                t_filled, REASON_NONE,
            )  # fmt: skip
            emit_l2(deltas, meta, ci, ts, t_side, old_price, levels[idx].qty)
            t_rem = new_rem
            t_slot = slot
            t_rests = True
            op = OP_LIMIT_GTC

        elif op == OP_RULES:
            if c.band_bps < 0 or (c.halted != 0 and c.halted != 1):
                emit_event(
                    events, meta, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price, t_rem, 0,
                    REASON_BAD_RULES,
                )  # fmt: skip
            else:
                meta[M_BAND_BPS] = c.band_bps
                meta[M_HALTED] = c.halted
                emit_event(
                    events, meta, ci, ts, EV_RULES, 0, 0, c.halted, 0, c.band_bps, 0, REASON_NONE
                )
            meta[M_DONE] = ci + 1
            continue

        else:
            emit_event(
                events, meta, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price, t_rem, 0,
                REASON_BAD_OP,
            )  # fmt: skip
            meta[M_DONE] = ci + 1
            continue

        # --- matching: level by level, FIFO inside a level, trades at the maker's price ---
        maker_side = SIDE_SELL if t_side == SIDE_BUY else SIDE_BUY
        stp_stop = False
        stp_qty = 0
        while t_rem > 0:
            idx = meta[M_BEST_ASK] if t_side == SIDE_BUY else meta[M_BEST_BID]
            if idx < 0:
                break
            level_price = idx + meta[M_PRICE_LO]
            if t_side == SIDE_BUY and level_price > t_limit:
                break
            if t_side == SIDE_SELL and level_price < t_limit:
                break
            lv = levels[idx]
            qty_before = lv.qty
            while t_rem > 0 and lv.count > 0:
                slot = lv.head
                mk = orders[slot]
                assert mk.side == maker_side
                if t_stp != STP_NONE and mk.owner == t_owner:
                    if t_stp == STP_CANCEL_NEWEST:
                        stp_stop = True
                        stp_qty = t_rem
                        t_rem = 0
                        break
                    if t_stp in (STP_CANCEL_OLDEST, STP_CANCEL_BOTH):
                        emit_event(
                            events, meta, ci, ts, EV_CANCELLED, mk.order_id, mk.owner,
                            maker_side, level_price, mk.remaining, mk.filled, REASON_SELF_TRADE,
                        )  # fmt: skip
                        hash_delete(htable, shift, mk.order_id)
                        gone = unlink(orders, levels, meta, slot)
                        if levels[gone].count == 0:
                            level_emptied(bits_lo, bits_hi, meta, gone)
                        push_free_slot(orders, free_slots, meta, slot)
                        if t_stp == STP_CANCEL_BOTH:
                            stp_stop = True
                            stp_qty = t_rem
                            t_rem = 0
                            break
                        continue
                    # decrement-and-cancel
                    dec = t_rem if t_rem < mk.remaining else mk.remaining
                    if mk.remaining == dec:
                        emit_event(
                            events, meta, ci, ts, EV_CANCELLED, mk.order_id, mk.owner,
                            maker_side, level_price, dec, mk.filled, REASON_SELF_TRADE,
                        )  # fmt: skip
                        hash_delete(htable, shift, mk.order_id)
                        gone = unlink(orders, levels, meta, slot)
                        if levels[gone].count == 0:
                            level_emptied(bits_lo, bits_hi, meta, gone)
                        push_free_slot(orders, free_slots, meta, slot)
                    else:
                        mk.remaining -= dec
                        lv.qty -= dec
                        emit_event(
                            events, meta, ci, ts, EV_DECREMENTED, mk.order_id, mk.owner,
                            maker_side, level_price, mk.remaining, mk.filled, REASON_SELF_TRADE,
                        )  # fmt: skip
                    if t_rem == dec:
                        stp_stop = True
                        stp_qty = dec
                        t_rem = 0
                        break
                    t_rem -= dec
                    emit_event(
                        events, meta, ci, ts, EV_DECREMENTED, t_id, t_owner, t_side, t_price,
                        t_rem, t_filled, REASON_SELF_TRADE,
                    )  # fmt: skip
                    continue
                fill = t_rem if t_rem < mk.remaining else mk.remaining
                emit_trade(
                    trades, meta, ci, ts, mk.order_id, t_id, mk.owner, t_owner, t_side,
                    level_price, fill,
                )  # fmt: skip
                t_rem -= fill
                t_filled += fill
                meta[M_LAST_TRADE] = level_price
                mk.filled += fill
                if fill == mk.remaining:
                    maker_id = mk.order_id
                    maker_owner = mk.owner
                    maker_filled = mk.filled
                    hash_delete(htable, shift, maker_id)
                    gone = unlink(orders, levels, meta, slot)
                    if levels[gone].count == 0:
                        level_emptied(bits_lo, bits_hi, meta, gone)
                    push_free_slot(orders, free_slots, meta, slot)
                    emit_event(
                        events, meta, ci, ts, EV_FILLED, maker_id, maker_owner, maker_side,
                        level_price, 0, maker_filled, REASON_NONE,
                    )  # fmt: skip
                else:
                    mk.remaining -= fill
                    lv.qty -= fill
            if lv.qty != qty_before:
                emit_l2(deltas, meta, ci, ts, maker_side, level_price, lv.qty)

        # --- the taker's outcome ----------------------------------------------------------
        if stp_stop:
            if t_slot >= 0:
                hash_delete(htable, shift, t_id)
                push_free_slot(orders, free_slots, meta, t_slot)
            emit_event(
                events, meta, ci, ts, EV_CANCELLED, t_id, t_owner, t_side, t_price, stp_qty,
                t_filled, REASON_SELF_TRADE,
            )  # fmt: skip
        elif t_rem == 0:
            if t_slot >= 0:
                hash_delete(htable, shift, t_id)
                push_free_slot(orders, free_slots, meta, t_slot)
            emit_event(
                events, meta, ci, ts, EV_FILLED, t_id, t_owner, t_side, t_price, 0, t_filled,
                REASON_NONE,
            )  # fmt: skip
        elif t_rests:
            if meta[M_LIVE] == 0:  # empty book: centre the price window on this order
                new_lo = t_price - levels_max // 2
                meta[M_PRICE_LO] = new_lo if new_lo > 1 else 1
            slot = t_slot
            if slot < 0:
                slot = pop_free_slot(free_slots, meta)
                hash_insert(htable, shift, t_id, slot)
            assert t_price - meta[M_PRICE_LO] >= 0
            assert t_price - meta[M_PRICE_LO] < levels_max
            o = orders[slot]
            o.order_id = t_id
            o.owner = t_owner
            o.side = t_side
            o.price = t_price
            o.remaining = t_rem
            o.filled = t_filled
            idx = link_tail(orders, levels, bits_lo, bits_hi, meta, slot)
            emit_event(
                events, meta, ci, ts, EV_RESTED, t_id, t_owner, t_side, t_price, t_rem, t_filled,
                REASON_NONE,
            )  # fmt: skip
            emit_l2(deltas, meta, ci, ts, t_side, t_price, levels[idx].qty)
        else:
            why = REASON_MARKET_REMAINDER if op == OP_MARKET else REASON_IOC_REMAINDER
            emit_event(
                events, meta, ci, ts, EV_EXPIRED, t_id, t_owner, t_side, t_price, t_rem, t_filled,
                why,
            )  # fmt: skip
        meta[M_DONE] = ci + 1
    return status
