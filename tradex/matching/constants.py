"""Codes and capacities shared by the jitted engine, its Python wrapper and the reference book.

Every code is a plain int so that Numba kernels can use them as compile-time constants.
The op codes 1..7 are the ones of the order stream format (../shared/bench/ORDER_STREAM.md).
"""

from __future__ import annotations

# --- command ops -------------------------------------------------------------------------
OP_LIMIT_GTC = 1
OP_LIMIT_IOC = 2
OP_LIMIT_FOK = 3
OP_POST_ONLY = 4
OP_MARKET = 5
OP_CANCEL = 6
OP_AMEND = 7
OP_RULES = 8  # InstrumentRules: band_bps and halted, in band with the orders
# An amend whose 0 price / 0 qty keep the order's price / total and whose side is the
# order's (the service's AmendOrder, resolved in the kernel instead of before it runs).
OP_AMEND_KEEP = 9

SIDE_BUY = 0
SIDE_SELL = 1

# --- self-trade prevention modes (per incoming order) -----------------------------------
STP_NONE = 0  # same-owner orders trade with each other
STP_CANCEL_NEWEST = 1  # cancel the rest of the incoming order (taker), stop
STP_CANCEL_OLDEST = 2  # cancel the resting order (maker), continue matching
STP_CANCEL_BOTH = 3  # cancel the maker and the rest of the taker, stop
STP_DECREMENT_AND_CANCEL = 4  # decrement both by the smaller qty; cancel whichever reaches 0
STP_MODE_MAX = 4

# Market orders: protection_ticks >= 0 bounds the sweep relative to the best opposite price
# at entry; PROTECTION_NONE sweeps without a limit.
PROTECTION_NONE = -1

# --- output event kinds -----------------------------------------------------------------
EV_ACCEPTED = 1
EV_RESTED = 2
EV_FILLED = 3
EV_CANCELLED = 4
EV_EXPIRED = 5
EV_REJECTED = 6
EV_AMENDED = 7
EV_DECREMENTED = 8
EV_RULES = 9

EVENT_NAMES: dict[int, str] = {
    EV_ACCEPTED: "accepted",
    EV_RESTED: "rested",
    EV_FILLED: "filled",
    EV_CANCELLED: "cancelled",
    EV_EXPIRED: "expired",
    EV_REJECTED: "rejected",
    EV_AMENDED: "amended",
    EV_DECREMENTED: "decremented",
    EV_RULES: "rules",
}

# --- reason codes (rejections, cancellations, expiries) ----------------------------------
REASON_NONE = 0
REASON_BAD_OP = 1
REASON_BAD_SIDE = 2
REASON_BAD_ID = 3
REASON_BAD_PRICE = 4
REASON_BAD_QTY = 5
REASON_BAD_STP = 6
REASON_BAD_PROTECTION = 7
REASON_DUPLICATE_ID = 8
REASON_HALTED = 9
REASON_PRICE_BAND = 10
REASON_PRICE_OUT_OF_RANGE = 11
REASON_POST_ONLY_WOULD_TRADE = 12
REASON_UNKNOWN_ORDER = 13
REASON_NOT_OWNER = 14
REASON_SIDE_MISMATCH = 15
REASON_AMEND_QTY_TOO_LOW = 16
REASON_BAD_RULES = 17
REASON_USER_CANCEL = 18
REASON_SELF_TRADE = 19
REASON_IOC_REMAINDER = 20
REASON_FOK_UNFILLABLE = 21
REASON_MARKET_REMAINDER = 22
# an amend of a live order of the requester's refused because the instrument is halted (the
# same refusal as REASON_HALTED, "halted", but the order is known to stay as it was)
REASON_AMEND_HALTED = 23

# An amend refused for these leaves its order in the book as it was (found, the
# requester's, same side): the rejection row carries the order's price, remaining and
# filled, which the matcher confirms to the account (wire.AMEND_LIVE_REJECTIONS).
AMEND_LIVE_REASONS = (
    REASON_AMEND_QTY_TOO_LOW, REASON_PRICE_OUT_OF_RANGE, REASON_PRICE_BAND, REASON_AMEND_HALTED,
)  # fmt: skip
REASON_NAMES: dict[int, str] = {
    REASON_NONE: "none",
    REASON_BAD_OP: "bad_op",
    REASON_BAD_SIDE: "bad_side",
    REASON_BAD_ID: "bad_id",
    REASON_BAD_PRICE: "bad_price",
    REASON_BAD_QTY: "bad_qty",
    REASON_BAD_STP: "bad_stp_mode",
    REASON_BAD_PROTECTION: "bad_protection",
    REASON_DUPLICATE_ID: "duplicate_order_id",
    REASON_HALTED: "halted",
    REASON_PRICE_BAND: "price_band",
    REASON_PRICE_OUT_OF_RANGE: "price_out_of_range",
    REASON_POST_ONLY_WOULD_TRADE: "post_only_would_trade",
    REASON_UNKNOWN_ORDER: "unknown_order",
    REASON_NOT_OWNER: "not_owner",
    REASON_SIDE_MISMATCH: "side_mismatch",
    REASON_AMEND_QTY_TOO_LOW: "amend_qty_too_low",
    REASON_BAD_RULES: "bad_rules",
    REASON_USER_CANCEL: "user_cancel",
    REASON_SELF_TRADE: "self_trade",
    REASON_IOC_REMAINDER: "ioc_remainder",
    REASON_FOK_UNFILLABLE: "fok_unfillable",
    REASON_MARKET_REMAINDER: "market_remainder",
    REASON_AMEND_HALTED: "halted",
}

# --- kernel status codes ----------------------------------------------------------------
STATUS_OK = 0  # every command of the batch was processed
STATUS_OUTPUT_FULL = 1  # stopped before a command whose worst case might not fit the buffers
STATUS_ORDERS_FULL = 2  # a resting-capable order found no free slot: fail loudly

# --- capacities -------------------------------------------------------------------------
ORDERS_MAX_DEFAULT = 1 << 18  # live (resting) orders per book
PRICE_LEVELS_MAX_DEFAULT = 1 << 20  # width of the price window, in ticks
COMMANDS_PER_BATCH_MAX = 1 << 16  # commands per kernel call (the wrapper splits bigger inputs)
OUTPUT_SLACK_MAX = 1 << 17  # output records per call beyond the worst case of one command
# Look-ahead of the kernel's software prefetch, in commands: the id-table bucket of command
# ci + PREFETCH_BUCKET_AHEAD, the order slot of a cancel/amend at ci + PREFETCH_SLOT_AHEAD,
# the neighbours (prev/next slots) of a cancel's order at ci + PREFETCH_LINKS_AHEAD.
PREFETCH_BUCKET_AHEAD = 8
PREFETCH_SLOT_AHEAD = 4
PREFETCH_LINKS_AHEAD = 2
ORDERS_MAX_LIMIT = 1 << 26  # sanity bound on a configured orders_max
PRICE_LEVELS_MAX_LIMIT = 1 << 26  # sanity bound on a configured price window

# One command emits at most: trades <= live + 1, events <= 2 * live + 8, L2 deltas <= live + 4.
# The kernel checks these bounds before each command, so a command never half-fits.
