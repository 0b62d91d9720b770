"""The matching kernel: one jitted call processes a batch of commands against one book.

The whole command loop is one function. Its helpers are inlined by Numba
(``inline="always"``): an out-of-line call passes every array as seven machine words on the
stack, and a helper that is not a leaf adds two atomic reference-count operations per
array per call (measured here at 5-10x the matching itself). The book's scalars live in
local variables for the whole batch, and the kernel prefetches the memory that coming
cancels will touch (see :mod:`tradex.matching.prefetch`). Only the FOK scan (rare) is an
out-of-line call. Taking a resting order off the book (unlink, clear an emptied level, free
the id and the slot) is written out at each of its four sites on purpose: folded into one
composite helper, even inlined, it brought the reference counting back into the loop
(tests/matching/test_kernel_refcounts.py fails).

Inputs are numpy arrays and scalars only (see :mod:`tradex.matching.dtypes`). Outputs go
to preallocated, reused buffers; the counts are left in ``meta``. The semantics are
documented in docs/matching.md and mirrored by :mod:`tradex.matching.reference`.

Compiled code is cached on disk with a stamp of every jitted source of the package
(:mod:`tradex.matching.jit_cache`), so editing a helper it inlines recompiles it.
"""

from __future__ import annotations

import numpy as np

from tradex.matching.bitmap import level_emptied
from tradex.matching.book_ops import (
    emit_event,
    emit_l2,
    emit_trade,
    fok_outcome,
    link_tail,
    outside_band,
    unlink,
)
from tradex.matching.constants import (
    AMEND_LIVE_REASONS,
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
    OP_AMEND_KEEP,
    OP_CANCEL,
    OP_LIMIT_FOK,
    OP_LIMIT_GTC,
    OP_MARKET,
    OP_POST_ONLY,
    OP_RULES,
    PREFETCH_BUCKET_AHEAD,
    PREFETCH_LINKS_AHEAD,
    PREFETCH_SLOT_AHEAD,
    PROTECTION_NONE,
    REASON_AMEND_HALTED,
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
    M_SEQ,
)
from tradex.matching.hashtable import hash_delete, hash_find, hash_home, hash_insert
from tradex.matching.jit_cache import engine_njit
from tradex.matching.prefetch import prefetch

PRICE_INF = np.int64(1) << np.int64(62)  # "no limit" for a market buy; -PRICE_INF for a sell


@engine_njit()
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

    The book's scalars live in local variables for the whole batch (registers, not
    ``meta`` round trips: LLVM cannot prove ``meta`` does not alias the record arrays) and
    are written back once, after the loop.
    """
    seq = meta[M_SEQ]
    last_trade = meta[M_LAST_TRADE]
    band = meta[M_BAND_BPS]
    halted = meta[M_HALTED]
    lo = meta[M_PRICE_LO]
    live = meta[M_LIVE]
    n_free = meta[M_FREE]
    best_bid = meta[M_BEST_BID]
    best_ask = meta[M_BEST_ASK]
    shift = meta[M_HASH_SHIFT]
    n_tr = 0
    n_ev = 0
    n_l2 = 0
    done = 0
    levels_max = levels.shape[0]
    trades_max = trades.shape[0]
    events_max = events.shape[0]
    deltas_max = deltas.shape[0]
    status = STATUS_OK
    n_cmds = cmds.shape[0]
    for ci in range(n_cmds):
        if (
            trades_max - n_tr < live + 1
            or events_max - n_ev < 2 * live + 8
            or deltas_max - n_l2 < live + 4
        ):
            status = STATUS_OUTPUT_FULL
            break
        # Look ahead (hints only, see prefetch.py): the id bucket of a coming command, and
        # the order slot of a coming cancel/amend (its bucket was prefetched earlier).
        if ci + PREFETCH_BUCKET_AHEAD < n_cmds:
            key = cmds[np.uint64(ci + PREFETCH_BUCKET_AHEAD)].order_id
            if key > 0:
                prefetch(htable, hash_home(htable, key))
        if ci + PREFETCH_SLOT_AHEAD < n_cmds:
            c_ahead = cmds[np.uint64(ci + PREFETCH_SLOT_AHEAD)]
            if c_ahead.order_id > 0 and (
                c_ahead.op == OP_CANCEL or c_ahead.op == OP_AMEND or c_ahead.op == OP_AMEND_KEEP
            ):
                slot_ahead = hash_find(htable, shift, c_ahead.order_id)
                if slot_ahead >= 0:
                    prefetch(orders, slot_ahead)
        if ci + PREFETCH_LINKS_AHEAD < n_cmds:
            c_ahead = cmds[np.uint64(ci + PREFETCH_LINKS_AHEAD)]
            if c_ahead.order_id > 0 and c_ahead.op == OP_CANCEL:
                slot_ahead = hash_find(htable, shift, c_ahead.order_id)
                if slot_ahead >= 0:
                    o_ahead = orders[np.uint64(slot_ahead)]
                    if o_ahead.prev >= 0:
                        prefetch(orders, o_ahead.prev)
                    if o_ahead.next >= 0:
                        prefetch(orders, o_ahead.next)
        c = cmds[np.uint64(ci)]
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
        t_limit = t_price

        if op >= OP_LIMIT_GTC and op <= OP_MARKET:
            t_rests = op in (OP_LIMIT_GTC, OP_POST_ONLY)
            if t_side != SIDE_BUY and t_side != SIDE_SELL:
                reason = REASON_BAD_SIDE
            elif t_id <= 0:
                reason = REASON_BAD_ID
            elif t_rem <= 0:
                reason = REASON_BAD_QTY
            elif op == OP_MARKET and t_price < 0:
                reason = REASON_BAD_PRICE
            elif op == OP_MARKET and c.protection_ticks < PROTECTION_NONE:
                reason = REASON_BAD_PROTECTION
            elif op != OP_MARKET and t_price <= 0:
                reason = REASON_BAD_PRICE
            elif t_stp < 0 or t_stp > STP_MODE_MAX:
                reason = REASON_BAD_STP
            elif halted != 0:
                reason = REASON_HALTED
            elif hash_find(htable, shift, t_id) >= 0:
                reason = REASON_DUPLICATE_ID
            elif t_rests and live > 0 and (t_price - lo < 0 or t_price - lo >= levels_max):
                reason = REASON_PRICE_OUT_OF_RANGE
            elif op != OP_MARKET and outside_band(
                t_price, band, last_trade, best_bid, best_ask, lo
            ):
                reason = REASON_PRICE_BAND
            elif op == OP_POST_ONLY:
                if t_side == SIDE_BUY:
                    if best_ask >= 0 and best_ask + lo <= t_price:
                        reason = REASON_POST_ONLY_WOULD_TRADE
                elif best_bid >= 0 and best_bid + lo >= t_price:
                    reason = REASON_POST_ONLY_WOULD_TRADE
            if reason != REASON_NONE:
                seq += 1
                emit_event(
                    events, n_ev, seq, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price,
                    t_rem, 0, reason,
                )  # fmt: skip
                n_ev += 1
                done = ci + 1
                continue
            if t_rests and n_free == 0:
                status = STATUS_ORDERS_FULL
                break
            seq += 1
            emit_event(
                events, n_ev, seq, ci, ts, EV_ACCEPTED, t_id, t_owner, t_side, t_price, t_rem,
                0, REASON_NONE,
            )  # fmt: skip
            n_ev += 1
            if op == OP_MARKET:
                # The tighter of its hard limit (price > 0: a buy never above it, a sell
                # never below) and its protection from the best opposite price at entry.
                best_idx = best_ask if t_side == SIDE_BUY else best_bid
                if c.protection_ticks == PROTECTION_NONE or best_idx < 0:
                    t_limit = PRICE_INF if t_side == SIDE_BUY else -PRICE_INF
                elif t_side == SIDE_BUY:
                    t_limit = best_idx + lo + c.protection_ticks
                else:
                    t_limit = best_idx + lo - c.protection_ticks
                if t_price > 0:
                    t_limit = min(t_limit, t_price) if t_side == SIDE_BUY else max(t_limit, t_price)
            elif op == OP_LIMIT_FOK:
                # Fills completely or not at all; meeting an own order (STP on) kills it.
                reason = fok_outcome(
                    orders, levels, bits_lo, bits_hi, best_ask if t_side == SIDE_BUY else best_bid,
                    lo, t_side, t_limit, t_rem, t_owner, t_stp,
                )  # fmt: skip
                if reason != REASON_NONE:
                    seq += 1
                    emit_event(
                        events, n_ev, seq, ci, ts, EV_EXPIRED, t_id, t_owner, t_side, t_price,
                        t_rem, 0, reason,
                    )  # fmt: skip
                    n_ev += 1
                    done = ci + 1
                    continue

        elif op == OP_CANCEL:
            slot = hash_find(htable, shift, t_id) if t_id > 0 else -1
            if slot < 0:
                reason = REASON_UNKNOWN_ORDER
            elif orders[np.uint64(slot)].owner != t_owner:
                reason = REASON_NOT_OWNER
            if reason != REASON_NONE:
                seq += 1
                emit_event(
                    events, n_ev, seq, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price,
                    t_rem, 0, reason,
                )  # fmt: skip
                n_ev += 1
            else:
                o = orders[np.uint64(slot)]
                side = o.side
                price = o.price
                rem = o.remaining
                filled = o.filled
                idx = price - lo
                if unlink(orders, levels, slot, idx) == 0:
                    best_bid, best_ask = level_emptied(bits_lo, bits_hi, idx, best_bid, best_ask)
                live -= 1
                hash_delete(htable, shift, t_id)
                o.order_id = 0
                free_slots[np.uint64(n_free)] = slot
                n_free += 1
                seq += 1
                emit_event(
                    events, n_ev, seq, ci, ts, EV_CANCELLED, t_id, t_owner, side, price, rem,
                    filled, REASON_USER_CANCEL,
                )  # fmt: skip
                n_ev += 1
                seq += 1
                emit_l2(deltas, n_l2, seq, ci, ts, side, price, levels[np.uint64(idx)].qty)
                n_l2 += 1
            done = ci + 1
            continue

        elif op in (OP_AMEND, OP_AMEND_KEEP):
            # OP_AMEND_KEEP: price 0 keeps the order's price, qty 0 its total, and the side
            # is the order's (resolved once the order is found; its checks then run as usual).
            keep = op == OP_AMEND_KEEP
            # one lookup (a second call site would cost the array arguments' refcounts)
            slot = hash_find(htable, shift, t_id) if t_id > 0 else -1
            if halted != 0:
                reason = REASON_HALTED
                if (
                    slot >= 0
                    and orders[np.uint64(slot)].owner == t_owner
                    and (keep or orders[np.uint64(slot)].side == t_side)
                ):
                    reason = REASON_AMEND_HALTED  # the requester's live order stays as it was
                    t_side = orders[np.uint64(slot)].side
            elif t_price < 0 or (t_price == 0 and not keep):
                reason = REASON_BAD_PRICE
            elif t_rem < 0 or (t_rem == 0 and not keep):
                reason = REASON_BAD_QTY
            elif t_stp < 0 or t_stp > STP_MODE_MAX:
                reason = REASON_BAD_STP
            else:
                if slot >= 0 and keep:
                    t_side = orders[np.uint64(slot)].side
                    if t_price == 0:
                        t_price = orders[np.uint64(slot)].price
                    if t_rem == 0:
                        t_rem = orders[np.uint64(slot)].remaining + orders[np.uint64(slot)].filled
                    t_limit = t_price  # a re-queued amend matches up to its (new) price
                if slot < 0:
                    reason = REASON_UNKNOWN_ORDER
                elif orders[np.uint64(slot)].owner != t_owner:
                    reason = REASON_NOT_OWNER
                elif orders[np.uint64(slot)].side != t_side:
                    reason = REASON_SIDE_MISMATCH
                elif t_rem - orders[np.uint64(slot)].filled <= 0:
                    reason = REASON_AMEND_QTY_TOO_LOW
                elif t_price != orders[np.uint64(slot)].price and (
                    t_price - lo < 0 or t_price - lo >= levels_max
                ):
                    reason = REASON_PRICE_OUT_OF_RANGE
                elif t_price != orders[np.uint64(slot)].price and outside_band(
                    t_price, band, last_trade, best_bid, best_ask, lo
                ):
                    reason = REASON_PRICE_BAND
            if reason != REASON_NONE:
                r_price, r_rem, r_filled = t_price, t_rem, 0  # as the checks saw them
                if reason in AMEND_LIVE_REASONS:  # the order stays: the row carries its terms
                    r_price = orders[np.uint64(slot)].price
                    r_rem = orders[np.uint64(slot)].remaining
                    r_filled = orders[np.uint64(slot)].filled
                seq += 1
                emit_event(
                    events, n_ev, seq, ci, ts, EV_REJECTED, t_id, t_owner, t_side, r_price,
                    r_rem, r_filled, reason,
                )  # fmt: skip
                n_ev += 1
                done = ci + 1
                continue
            o = orders[np.uint64(slot)]
            t_filled = o.filled
            new_rem = t_rem - t_filled
            old_price = o.price
            idx = old_price - lo
            if t_price == old_price and new_rem <= o.remaining:
                # Same price, not more quantity: in place, time priority kept.
                lv = levels[np.uint64(idx)]
                delta = o.remaining - new_rem
                o.remaining = new_rem
                lv.qty -= delta
                seq += 1
                emit_event(
                    events, n_ev, seq, ci, ts, EV_AMENDED, t_id, t_owner, t_side, t_price,
                    new_rem, t_filled, REASON_NONE,
                )  # fmt: skip
                n_ev += 1
                if delta != 0:
                    seq += 1
                    emit_l2(deltas, n_l2, seq, ci, ts, t_side, t_price, lv.qty)
                    n_l2 += 1
                done = ci + 1
                continue
            # Otherwise the order leaves the book and re-enters like a new GTC limit order.
            if unlink(orders, levels, slot, idx) == 0:
                best_bid, best_ask = level_emptied(bits_lo, bits_hi, idx, best_bid, best_ask)
            live -= 1
            seq += 1
            emit_event(
                events, n_ev, seq, ci, ts, EV_AMENDED, t_id, t_owner, t_side, t_price, new_rem,
                t_filled, REASON_NONE,
            )  # fmt: skip
            n_ev += 1
            seq += 1
            emit_l2(deltas, n_l2, seq, ci, ts, t_side, old_price, levels[np.uint64(idx)].qty)
            n_l2 += 1
            t_rem = new_rem
            t_slot = slot
            t_rests = True
            op = OP_LIMIT_GTC

        elif op == OP_RULES:
            seq += 1
            if c.band_bps < 0 or (c.halted != 0 and c.halted != 1):
                emit_event(
                    events, n_ev, seq, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price,
                    t_rem, 0, REASON_BAD_RULES,
                )  # fmt: skip
            else:
                band = c.band_bps
                halted = c.halted
                emit_event(
                    events, n_ev, seq, ci, ts, EV_RULES, 0, 0, halted, 0, band, 0, REASON_NONE
                )
            n_ev += 1
            done = ci + 1
            continue

        else:
            seq += 1
            emit_event(
                events, n_ev, seq, ci, ts, EV_REJECTED, t_id, t_owner, t_side, t_price, t_rem,
                0, REASON_BAD_OP,
            )  # fmt: skip
            n_ev += 1
            done = ci + 1
            continue

        # --- matching: level by level, FIFO inside a level, trades at the maker's price ---
        maker_side = SIDE_SELL if t_side == SIDE_BUY else SIDE_BUY
        stp_stop = False
        stp_qty = 0
        while t_rem > 0:
            idx = best_ask if t_side == SIDE_BUY else best_bid
            if idx < 0:
                break
            level_price = idx + lo
            if t_side == SIDE_BUY and level_price > t_limit:
                break
            if t_side == SIDE_SELL and level_price < t_limit:
                break
            lv = levels[np.uint64(idx)]
            qty_before = lv.qty
            while t_rem > 0 and lv.count > 0:
                slot = lv.head
                mk = orders[np.uint64(slot)]
                assert mk.side == maker_side
                if mk.next >= 0:
                    prefetch(orders, mk.next)  # the next maker in the queue
                if t_stp != STP_NONE and mk.owner == t_owner:
                    if t_stp == STP_CANCEL_NEWEST:
                        stp_stop = True
                        stp_qty = t_rem
                        t_rem = 0
                        break
                    if t_stp in (STP_CANCEL_OLDEST, STP_CANCEL_BOTH):
                        seq += 1
                        emit_event(
                            events, n_ev, seq, ci, ts, EV_CANCELLED, mk.order_id, mk.owner,
                            maker_side, level_price, mk.remaining, mk.filled, REASON_SELF_TRADE,
                        )  # fmt: skip
                        n_ev += 1
                        hash_delete(htable, shift, mk.order_id)
                        if unlink(orders, levels, slot, idx) == 0:
                            best_bid, best_ask = level_emptied(
                                bits_lo, bits_hi, idx, best_bid, best_ask
                            )
                        live -= 1
                        mk.order_id = 0
                        free_slots[np.uint64(n_free)] = slot
                        n_free += 1
                        if t_stp == STP_CANCEL_BOTH:
                            stp_stop = True
                            stp_qty = t_rem
                            t_rem = 0
                            break
                        continue
                    # decrement-and-cancel
                    dec = t_rem if t_rem < mk.remaining else mk.remaining
                    if mk.remaining == dec:
                        seq += 1
                        emit_event(
                            events, n_ev, seq, ci, ts, EV_CANCELLED, mk.order_id, mk.owner,
                            maker_side, level_price, dec, mk.filled, REASON_SELF_TRADE,
                        )  # fmt: skip
                        n_ev += 1
                        hash_delete(htable, shift, mk.order_id)
                        if unlink(orders, levels, slot, idx) == 0:
                            best_bid, best_ask = level_emptied(
                                bits_lo, bits_hi, idx, best_bid, best_ask
                            )
                        live -= 1
                        mk.order_id = 0
                        free_slots[np.uint64(n_free)] = slot
                        n_free += 1
                    else:
                        mk.remaining -= dec
                        lv.qty -= dec
                        seq += 1
                        emit_event(
                            events, n_ev, seq, ci, ts, EV_DECREMENTED, mk.order_id, mk.owner,
                            maker_side, level_price, mk.remaining, mk.filled, REASON_SELF_TRADE,
                        )  # fmt: skip
                        n_ev += 1
                    if t_rem == dec:
                        stp_stop = True
                        stp_qty = dec
                        t_rem = 0
                        break
                    t_rem -= dec
                    seq += 1
                    emit_event(
                        events, n_ev, seq, ci, ts, EV_DECREMENTED, t_id, t_owner, t_side,
                        t_price, t_rem, t_filled, REASON_SELF_TRADE,
                    )  # fmt: skip
                    n_ev += 1
                    continue
                mk_rem = mk.remaining
                fill = t_rem if t_rem < mk_rem else mk_rem
                maker_id = mk.order_id
                maker_owner = mk.owner
                seq += 1
                emit_trade(
                    trades, n_tr, seq, ci, ts, maker_id, t_id, maker_owner, t_owner, t_side,
                    level_price, fill,
                )  # fmt: skip
                n_tr += 1
                t_rem -= fill
                t_filled += fill
                last_trade = level_price
                maker_filled = mk.filled + fill
                mk.filled = maker_filled
                if fill == mk_rem:
                    hash_delete(htable, shift, maker_id)
                    if unlink(orders, levels, slot, idx) == 0:
                        best_bid, best_ask = level_emptied(
                            bits_lo, bits_hi, idx, best_bid, best_ask
                        )
                    live -= 1
                    mk.order_id = 0
                    free_slots[np.uint64(n_free)] = slot
                    n_free += 1
                    seq += 1
                    emit_event(
                        events, n_ev, seq, ci, ts, EV_FILLED, maker_id, maker_owner, maker_side,
                        level_price, 0, maker_filled, REASON_NONE,
                    )  # fmt: skip
                    n_ev += 1
                else:
                    mk.remaining = mk_rem - fill
                    lv.qty -= fill
            if lv.qty != qty_before:
                seq += 1
                emit_l2(deltas, n_l2, seq, ci, ts, maker_side, level_price, lv.qty)
                n_l2 += 1

        # --- the taker's outcome ----------------------------------------------------------
        if stp_stop:
            if t_slot >= 0:
                hash_delete(htable, shift, t_id)
                orders[np.uint64(t_slot)].order_id = 0
                free_slots[np.uint64(n_free)] = t_slot
                n_free += 1
            seq += 1
            emit_event(
                events, n_ev, seq, ci, ts, EV_CANCELLED, t_id, t_owner, t_side, t_price,
                stp_qty, t_filled, REASON_SELF_TRADE,
            )  # fmt: skip
            n_ev += 1
        elif t_rem == 0:
            if t_slot >= 0:
                hash_delete(htable, shift, t_id)
                orders[np.uint64(t_slot)].order_id = 0
                free_slots[np.uint64(n_free)] = t_slot
                n_free += 1
            seq += 1
            emit_event(
                events, n_ev, seq, ci, ts, EV_FILLED, t_id, t_owner, t_side, t_price, 0,
                t_filled, REASON_NONE,
            )  # fmt: skip
            n_ev += 1
        elif t_rests:
            if live == 0:  # empty book: centre the price window on this order
                new_lo = t_price - levels_max // 2
                lo = new_lo if new_lo > 1 else 1
            slot = t_slot
            if slot < 0:
                assert n_free > 0  # checked before the command started
                n_free -= 1
                slot = free_slots[np.uint64(n_free)]
                hash_insert(htable, shift, t_id, slot)
            idx = t_price - lo
            assert idx >= 0
            assert idx < levels_max
            o = orders[np.uint64(slot)]
            o.order_id = t_id
            o.owner = t_owner
            o.side = t_side
            o.price = t_price
            o.remaining = t_rem
            o.filled = t_filled
            if link_tail(orders, levels, bits_lo, bits_hi, slot, idx):
                if t_side == SIDE_BUY:
                    assert best_ask == -1 or idx < best_ask  # never rest crossing
                    if best_bid < idx:
                        best_bid = idx
                else:
                    assert best_bid < idx
                    if best_ask == -1 or idx < best_ask:
                        best_ask = idx
            live += 1
            seq += 1
            emit_event(
                events, n_ev, seq, ci, ts, EV_RESTED, t_id, t_owner, t_side, t_price, t_rem,
                t_filled, REASON_NONE,
            )  # fmt: skip
            n_ev += 1
            seq += 1
            emit_l2(deltas, n_l2, seq, ci, ts, t_side, t_price, levels[np.uint64(idx)].qty)
            n_l2 += 1
        else:
            why = REASON_MARKET_REMAINDER if op == OP_MARKET else REASON_IOC_REMAINDER
            seq += 1
            emit_event(
                events, n_ev, seq, ci, ts, EV_EXPIRED, t_id, t_owner, t_side, t_price, t_rem,
                t_filled, why,
            )  # fmt: skip
            n_ev += 1
        done = ci + 1

    meta[M_SEQ] = seq
    meta[M_LAST_TRADE] = last_trade
    meta[M_BAND_BPS] = band
    meta[M_HALTED] = halted
    meta[M_PRICE_LO] = lo
    meta[M_LIVE] = live
    meta[M_FREE] = n_free
    meta[M_BEST_BID] = best_bid
    meta[M_BEST_ASK] = best_ask
    meta[M_N_TRADES] = n_tr
    meta[M_N_EVENTS] = n_ev
    meta[M_N_L2] = n_l2
    meta[M_DONE] = done
    return status
