"""Numpy structured dtypes of the engine's inputs, outputs and book state (all int64)."""

from __future__ import annotations

import numpy as np

I8 = "<i8"

COMMAND_DTYPE = np.dtype(
    [
        ("op", I8),
        ("side", I8),
        ("order_id", I8),
        ("owner", I8),
        ("price", I8),  # ticks
        ("qty", I8),  # lots; amend: new total quantity over the order's life
        ("stp_mode", I8),
        ("protection_ticks", I8),  # market orders only
        ("band_bps", I8),  # rules only
        ("halted", I8),  # rules only
        ("timestamp_ns", I8),
    ]
)

TRADE_DTYPE = np.dtype(
    [
        ("seq", I8),
        ("cmd_index", I8),  # index of the command in the batch that caused it
        ("maker_id", I8),
        ("taker_id", I8),
        ("maker_owner", I8),
        ("taker_owner", I8),
        ("taker_side", I8),
        ("price", I8),
        ("qty", I8),
        ("timestamp_ns", I8),
    ]
)

EVENT_DTYPE = np.dtype(
    [
        ("seq", I8),
        ("cmd_index", I8),
        ("kind", I8),
        ("order_id", I8),
        ("owner", I8),
        ("side", I8),
        ("price", I8),
        ("qty", I8),
        ("filled", I8),
        ("reason", I8),
        ("timestamp_ns", I8),
    ]
)

L2_DTYPE = np.dtype(
    [
        ("seq", I8),
        ("cmd_index", I8),
        ("side", I8),
        ("price", I8),
        ("qty", I8),  # new total quantity at the level (0: level gone)
        ("timestamp_ns", I8),
    ]
)

# Book state. One order slot is one 64-byte cache line.
ORDER_DTYPE = np.dtype(
    [
        ("order_id", I8),
        ("owner", I8),
        ("side", I8),
        ("price", I8),
        ("remaining", I8),
        ("filled", I8),
        ("next", I8),  # slot of the next order in the level's FIFO, -1 at the tail
        ("prev", I8),  # slot of the previous order, -1 at the head
    ]
)

# Levels are indexed by price - price_lo. A level with count == 0 is empty and its head/tail
# are stale (the array starts zeroed, so pages of unused levels are never touched).
LEVEL_DTYPE = np.dtype([("head", I8), ("tail", I8), ("qty", I8), ("count", I8)])

# Canonical live order row (snapshot, state hash): bids best first, then asks best first,
# FIFO inside each level.
CANONICAL_FIELDS = ("order_id", "owner", "side", "price", "remaining", "filled")

# Scalars of the book, kept in one int64 array so kernels can update them in place.
M_SEQ = 0  # last sequence number emitted (per instrument, shared by all outputs)
M_LAST_TRADE = 1  # price of the last trade, 0 if none yet
M_BAND_BPS = 2  # price band in basis points, 0 disables the check
M_HALTED = 3
M_PRICE_LO = 4  # price of level 0 of the window (meaningful while live > 0)
M_LIVE = 5  # resting orders
M_FREE = 6  # free order slots
M_BEST_BID = 7  # level index of the best bid, -1 if none
M_BEST_ASK = 8  # level index of the best ask, -1 if none
M_N_TRADES = 9  # outputs written by the last kernel call
M_N_EVENTS = 10
M_N_L2 = 11
M_DONE = 12  # commands consumed by the last kernel call
M_TAKER_FILLED = 13  # scratch: filled qty of the current taker
M_STP_STOP = 14  # scratch: 1 if STP ended the current taker
M_STP_QTY = 15  # scratch: qty of the taker cancelled by STP
M_HASH_SHIFT = 16  # 64 - log2(hash table size), set once by the wrapper
META_SIZE = 17
