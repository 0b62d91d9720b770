"""The matcher's wire mapping: ``order-requests`` records → command rows, engine outputs →
``engine-events`` records (:mod:`tradex.domain.engine`, encoded by the codec's domain path).

Pure functions of their inputs (no clock, no randomness): the service, its recovery and
``tradex matching verify`` all go through here, so they produce the same bytes.

Mapping (docs/matching_service.md has the full table):

- NewOrder → ops GTC/IOC/FOK/POST_ONLY/MARKET, owner = account_id, STP modes
  CANCEL_TAKER/CANCEL_MAKER/CANCEL_BOTH → cancel-newest/oldest/both. MARKET carries its
  protection *price* in ``price``: the kernel's hard limit of a market order
  (:func:`market_fields`).
- CancelOrderRequest → OP_CANCEL; AmendOrder → OP_AMEND (side and kept fields looked up in
  the book just before it runs); InstrumentRules → OP_RULES (band, halt).

The same mapping runs in C for the records it can read (``RequestDecoder`` in
``_native/matcher_wire.c``, used by :mod:`tradex.matching.batch`); tests hold the two to
the same command rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from tradex.domain.engine import (
    Accepted,
    AmendApplied,
    Cancelled,
    EngineEvent,
    Expired,
    Filled,
    L2Delta,
    Rejected,
    Rested,
    RulesApplied,
    Trade,
)
from tradex.domain.types import EndReason, Reason
from tradex.log.keys import instrument_key
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
    OP_CANCEL,
    OP_LIMIT_FOK,
    OP_LIMIT_GTC,
    OP_LIMIT_IOC,
    OP_MARKET,
    OP_POST_ONLY,
    OP_RULES,
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
    REASON_FOK_UNFILLABLE,
    REASON_HALTED,
    REASON_IOC_REMAINDER,
    REASON_MARKET_REMAINDER,
    REASON_NAMES,
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
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_DECREMENT_AND_CANCEL,
    STP_NONE,
)
from tradex.schemas.codec import Codec, CodecError

# --- requests ---------------------------------------------------------------------------

REQ_NEW = 1
REQ_CANCEL = 2
REQ_AMEND = 3
REQ_RULES = 4
REQUEST_NAMES = {
    REQ_NEW: "NewOrder",
    REQ_CANCEL: "CancelOrderRequest",
    REQ_AMEND: "AmendOrder",
    REQ_RULES: "InstrumentRules",
}
SUBJECTS = {
    "tradex.orders.NewOrder": REQ_NEW,
    "tradex.orders.CancelOrderRequest": REQ_CANCEL,
    "tradex.orders.AmendOrder": REQ_AMEND,
    "tradex.orders.InstrumentRules": REQ_RULES,
}
OPS = {
    "GTC": OP_LIMIT_GTC,
    "IOC": OP_LIMIT_IOC,
    "FOK": OP_LIMIT_FOK,
    "POST_ONLY": OP_POST_ONLY,
    "MARKET": OP_MARKET,
}
SIDES = {"BUY": SIDE_BUY, "SELL": SIDE_SELL}
SIDE_NAMES = {SIDE_BUY: "BUY", SIDE_SELL: "SELL"}
STP_MODES = {
    "NONE": STP_NONE,
    "CANCEL_TAKER": STP_CANCEL_NEWEST,
    "CANCEL_MAKER": STP_CANCEL_OLDEST,
    "CANCEL_BOTH": STP_CANCEL_BOTH,
    "DECREMENT": STP_DECREMENT_AND_CANCEL,
}
PROTECTION_UNSET = 0  # domain: protection_ticks 0 means none
PROTECTION_BAD = -2  # below PROTECTION_NONE: the kernel rejects it (bad protection)


def market_fields(price: int, protection_ticks: int) -> tuple[int, int]:
    """(price, protection_ticks) of the kernel row of a MARKET NewOrder. The domain's
    protection price is the kernel's hard limit (a buy never above it, a sell never below);
    0 would mean "no limit" to the kernel, so it becomes -1, which the kernel rejects as a
    bad price, like any price < 0. The domain's extra protection in ticks (0: none) maps to
    the kernel's (PROTECTION_NONE: none); a negative one is rejected (bad protection)."""
    kernel_price = price if price != 0 else -1
    if protection_ticks > 0:
        return kernel_price, protection_ticks
    if protection_ticks == PROTECTION_UNSET:
        return kernel_price, PROTECTION_NONE
    return kernel_price, PROTECTION_BAD


class Request(NamedTuple):
    """One decoded order request and the command row it becomes (COMMAND_DTYPE order)."""

    kind: int  # REQ_*
    instrument_id: int
    order_id: int
    account_id: int
    order_kind: str  # NewOrder.kind ("" otherwise), for Accepted
    price: int  # as requested (MARKET: the protection price)
    time_ns: int
    causation_id: str  # the input's event id
    correlation_id: str
    trace_parent: str
    row: tuple[int, ...]


class Malformed(NamedTuple):
    """An input record that cannot be matched: it goes to ``dead-letters``."""

    reason: str
    error: str


def parse_request(codec: Codec, key: bytes | None, value: bytes | None) -> Request | Malformed:
    """Decode one ``order-requests`` record; never raises for bad input."""
    if not value:
        return Malformed("empty", "record without a value")
    try:
        decoded = codec.decode(value)
    except CodecError as exc:
        return Malformed("undecodable", str(exc))
    kind = SUBJECTS.get(decoded.subject)
    if kind is None:
        return Malformed("unexpected type", f"{decoded.subject} does not belong on order-requests")
    r = decoded.record
    envelope = r["envelope"]
    instrument_id = r["instrument_id"]
    if key != instrument_key(instrument_id):
        return Malformed("misrouted", f"key {key!r} is not instrument {instrument_id}")
    time_ns = r["event_time_ns"]
    causation, correlation, trace = (
        envelope["event_id"],
        envelope["correlation_id"],
        envelope["trace_parent"],
    )
    if kind == REQ_NEW:
        op = OPS.get(r["kind"], 0)  # 0: the kernel rejects it (bad op)
        side = SIDES.get(r["side"], -1)
        stp = STP_MODES.get(r["stp_mode"], -1)
        order_id, account_id, price = r["order_id"], r["account_id"], r["price"]
        row_price, protection = price, r["protection_ticks"]
        if op == OP_MARKET:
            row_price, protection = market_fields(price, protection)
        row = (op, side, order_id, account_id, row_price, r["qty"], stp, protection, 0, 0,
               time_ns)  # fmt: skip
        return Request(kind, instrument_id, order_id, account_id, r["kind"], price, time_ns,
                       causation, correlation, trace, row)  # fmt: skip
    if kind == REQ_CANCEL:
        order_id, account_id = r["order_id"], r["account_id"]
        row = (OP_CANCEL, 0, order_id, account_id, 0, 0, STP_NONE, 0, 0, 0, time_ns)
        return Request(kind, instrument_id, order_id, account_id, "", 0, time_ns,
                       causation, correlation, trace, row)  # fmt: skip
    if kind == REQ_AMEND:
        order_id, account_id = r["order_id"], r["account_id"]
        # the order's self-trade prevention (records before it was carried: NONE)
        stp = STP_MODES.get(r.get("stp_mode", "NONE"), -1)
        row = (OP_AMEND, 0, order_id, account_id, r["new_price"], r["new_qty"], stp, 0,
               0, 0, time_ns)  # fmt: skip
        return Request(kind, instrument_id, order_id, account_id, "", r["new_price"], time_ns,
                       causation, correlation, trace, row)  # fmt: skip
    assert kind == REQ_RULES
    halted = 1 if r["status"] == "HALTED" else 0
    row = (OP_RULES, 0, 0, 0, 0, 0, STP_NONE, 0, r["price_band_bps"], halted, time_ns)
    return Request(kind, instrument_id, 0, 0, "", 0, time_ns, causation, correlation, trace, row)


# --- reasons ----------------------------------------------------------------------------

REASONS: dict[int, str] = {
    REASON_NONE: Reason.UNKNOWN,
    REASON_BAD_OP: Reason.INVALID_COMMAND,
    REASON_BAD_SIDE: Reason.INVALID_COMMAND,
    REASON_BAD_ID: Reason.INVALID_COMMAND,
    REASON_BAD_PRICE: Reason.PRICE_NOT_POSITIVE,
    REASON_BAD_QTY: Reason.QTY_NOT_POSITIVE,
    REASON_BAD_STP: Reason.INVALID_COMMAND,
    REASON_BAD_PROTECTION: Reason.INVALID_COMMAND,
    REASON_DUPLICATE_ID: Reason.DUPLICATE_COMMAND,
    REASON_HALTED: Reason.INSTRUMENT_HALTED,
    REASON_AMEND_HALTED: Reason.INSTRUMENT_HALTED,
    REASON_PRICE_BAND: Reason.OUTSIDE_PRICE_BAND,
    REASON_PRICE_OUT_OF_RANGE: Reason.BOOK_FULL,  # outside the book's price window
    REASON_POST_ONLY_WOULD_TRADE: Reason.POST_ONLY_WOULD_TAKE,
    REASON_UNKNOWN_ORDER: Reason.UNKNOWN_ORDER,
    REASON_NOT_OWNER: Reason.UNKNOWN_ORDER,  # another account's order: as if unknown
    REASON_SIDE_MISMATCH: Reason.INVALID_COMMAND,
    REASON_AMEND_QTY_TOO_LOW: Reason.INVALID_COMMAND,
    REASON_BAD_RULES: Reason.INVALID_RULES,
    REASON_USER_CANCEL: Reason.UNKNOWN,  # Cancelled: UNKNOWN = on request
    REASON_SELF_TRADE: Reason.SELF_TRADE_PREVENTED,
    REASON_IOC_REMAINDER: Reason.NO_LIQUIDITY,
    REASON_MARKET_REMAINDER: Reason.NO_LIQUIDITY,
    REASON_FOK_UNFILLABLE: Reason.FOK_NOT_FILLABLE,
}
assert set(REASONS) == set(REASON_NAMES), "every engine reason needs a wire reason"
# Rejections that must not end the order of that id: it may be live (a duplicate id).
NOT_ENDING_REJECTIONS = frozenset((REASON_DUPLICATE_ID,))
# The account gets an amend refused with its order kept (AMEND_LIVE_REASONS) as an
# AmendConfirmed at the order's terms, so it stops holding for the refused ones
# (docs/ledger.md, "Amend").
AMEND_LIVE_REJECTIONS = frozenset(AMEND_LIVE_REASONS)


def reason_of(code: int) -> str:
    return str(REASONS.get(code, Reason.UNKNOWN))


def detail_of(code: int) -> str:
    return REASON_NAMES.get(code, str(code))


# --- engine records (tradex.domain.engine) ----------------------------------------------
# Engine output rows as tuples (``ndarray.tolist()``), fields in dtype order:
#   trade: seq, cmd_index, maker_id, taker_id, maker_owner, taker_owner, taker_side, price,
#          qty, timestamp_ns
#   event: seq, cmd_index, kind, order_id, owner, side, price, qty, filled, reason,
#          timestamp_ns
#   l2:    seq, cmd_index, side, price, qty, timestamp_ns
# Records are built with ``tuple.__new__`` (all fields, in declaration order: no
# NamedTuple ``__new__`` frame on the hot path); ``time_ns`` is the engine time.
TAG_TRADE = 0
TAG_EVENT = 1
TAG_L2 = 2
_new = tuple.__new__


def trade_record(instrument_id: int, trade_id: int, t: Sequence[int], time_ns: int) -> Trade:
    trade: Trade = _new(Trade, (
        instrument_id, trade_id, t[7], t[8], SIDE_NAMES[t[6]], t[2], t[4], t[3], t[5], time_ns,
    ))  # fmt: skip
    return trade


def l2_record(instrument_id: int, d: Sequence[int], book_seq: int, time_ns: int) -> L2Delta:
    delta: L2Delta = _new(L2Delta, (instrument_id, SIDE_NAMES[d[2]], d[3], d[4], book_seq, time_ns))
    return delta


def event_record(
    instrument_id: int, e: Sequence[int], req: Request, lost_priority: bool, time_ns: int
) -> EngineEvent:
    """The engine record of one engine event row."""
    kind, order_id, owner, side, price, qty, filled, reason = e[2:10]
    record: EngineEvent
    if kind == EV_ACCEPTED:
        record = _new(Accepted, (
            instrument_id, order_id, owner, SIDE_NAMES[side], req.order_kind, req.price, qty,
            time_ns,
        ))  # fmt: skip
    elif kind == EV_RESTED:
        record = _new(Rested, (
            instrument_id, order_id, owner, SIDE_NAMES[side], price, qty, time_ns,
        ))  # fmt: skip
    elif kind == EV_FILLED:
        record = _new(Filled, (instrument_id, order_id, owner, SIDE_NAMES[side], filled, time_ns))
    elif kind == EV_CANCELLED:
        record = _new(Cancelled, (
            instrument_id, order_id, owner, qty, reason_of(reason), detail_of(reason), time_ns,
        ))  # fmt: skip
    elif kind == EV_EXPIRED:
        record = _new(Expired, (
            instrument_id, order_id, owner, qty, reason_of(reason), detail_of(reason), time_ns,
        ))  # fmt: skip
    elif kind == EV_REJECTED:
        record = _new(Rejected, (
            instrument_id, order_id, owner, reason_of(reason), REQUEST_NAMES[req.kind],
            detail_of(reason), time_ns,
        ))  # fmt: skip
    elif kind in (EV_AMENDED, EV_DECREMENTED):
        # new_qty: the new total over the order's life (remaining + filled), as requested.
        record = _new(AmendApplied, (
            instrument_id, order_id, owner, price, qty + filled,
            lost_priority and kind == EV_AMENDED, time_ns,
        ))  # fmt: skip
    else:
        assert kind == EV_RULES, f"unknown engine event kind {kind}"
        record = _new(RulesApplied, (instrument_id, qty, side == 1, time_ns))
    return record


def unknown_instrument_record(req: Request, time_ns: int) -> Rejected:
    rejected: Rejected = _new(Rejected, (
        req.instrument_id, req.order_id, req.account_id, str(Reason.UNKNOWN_INSTRUMENT),
        REQUEST_NAMES[req.kind], "unknown_instrument", time_ns,
    ))  # fmt: skip
    return rejected


# Engine events after which an order is gone for good (its hold can be released).
END_REASONS = {
    EV_FILLED: EndReason.FILLED,
    EV_CANCELLED: EndReason.CANCELLED,
    EV_EXPIRED: EndReason.EXPIRED,
}


def end_reason(e: Sequence[int], req: Request) -> EndReason | None:
    """OrderEnded reason for an engine event row, None if it does not end an order."""
    kind = e[2]
    found = END_REASONS.get(kind)
    if found is not None:
        return found
    if kind == EV_REJECTED and req.kind == REQ_NEW:
        if e[9] in NOT_ENDING_REJECTIONS or e[3] <= 0:
            return None
        return EndReason.REJECTED
    return None
