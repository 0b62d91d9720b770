"""The matcher's wire mapping: ``order-requests`` records → command rows, engine outputs →
``engine-events`` / ``settlements`` record dicts.

Pure functions of their inputs (no clock, no randomness): the service, its recovery and
``tradex matching verify`` all go through here, so they produce the same bytes.

Mapping (docs/matching_service.md has the full table):

- NewOrder → ops GTC/IOC/FOK/POST_ONLY/MARKET, owner = account_id, STP modes
  CANCEL_TAKER/CANCEL_MAKER/CANCEL_BOTH → cancel-newest/oldest/both. MARKET carries its
  protection *price* in ``price``; the kernel takes a protection in ticks from the best
  opposite price, so it is resolved against the book just before the order runs
  (:mod:`tradex.matching.segments`).
- CancelOrderRequest → OP_CANCEL; AmendOrder → OP_AMEND (side and kept fields looked up in
  the book just before it runs); InstrumentRules → OP_RULES (band, halt).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tradex.domain.types import EndReason, Reason
from tradex.log.keys import instrument_key
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
    OP_LIMIT_IOC,
    OP_MARKET,
    OP_POST_ONLY,
    OP_RULES,
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
}
PROTECTION_UNSET = 0  # domain: protection_ticks 0 means none


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
        row = (op, side, order_id, account_id, price, r["qty"], stp, r["protection_ticks"],
               0, 0, time_ns)  # fmt: skip
        return Request(kind, instrument_id, order_id, account_id, r["kind"], price, time_ns,
                       causation, correlation, trace, row)  # fmt: skip
    if kind == REQ_CANCEL:
        order_id, account_id = r["order_id"], r["account_id"]
        row = (OP_CANCEL, 0, order_id, account_id, 0, 0, STP_NONE, 0, 0, 0, time_ns)
        return Request(kind, instrument_id, order_id, account_id, "", 0, time_ns,
                       causation, correlation, trace, row)  # fmt: skip
    if kind == REQ_AMEND:
        order_id, account_id = r["order_id"], r["account_id"]
        row = (OP_AMEND, 0, order_id, account_id, r["new_price"], r["new_qty"], STP_NONE, 0,
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


def reason_of(code: int) -> str:
    return str(REASONS.get(code, Reason.UNKNOWN))


def detail_of(code: int) -> str:
    return REASON_NAMES.get(code, str(code))


# --- record bodies (without envelope and hash) ------------------------------------------
# Engine output rows as tuples (``ndarray.tolist()``), fields in dtype order:
#   trade: seq, cmd_index, maker_id, taker_id, maker_owner, taker_owner, taker_side, price,
#          qty, timestamp_ns
#   event: seq, cmd_index, kind, order_id, owner, side, price, qty, filled, reason,
#          timestamp_ns
#   l2:    seq, cmd_index, side, price, qty, timestamp_ns
TAG_TRADE = 0
TAG_EVENT = 1
TAG_L2 = 2


def trade_body(instrument_id: int, trade_id: int, t: tuple[int, ...]) -> dict[str, Any]:
    return {
        "instrument_id": instrument_id,
        "trade_id": trade_id,
        "price": t[7],
        "qty": t[8],
        "taker_side": SIDE_NAMES[t[6]],
        "maker_order_id": t[2],
        "maker_account_id": t[4],
        "taker_order_id": t[3],
        "taker_account_id": t[5],
    }


def l2_body(instrument_id: int, d: tuple[int, ...]) -> dict[str, Any]:
    return {"instrument_id": instrument_id, "side": SIDE_NAMES[d[2]], "price": d[3], "qty": d[4]}


def event_body(
    instrument_id: int, e: tuple[int, ...], req: Request, lost_priority: bool
) -> tuple[str, dict[str, Any]]:
    """(record name, body) of one engine event row."""
    kind, order_id, owner, side, price, qty, filled, reason = e[2:10]
    if kind == EV_ACCEPTED:
        return "Accepted", {
            "instrument_id": instrument_id, "order_id": order_id, "account_id": owner,
            "side": SIDE_NAMES[side], "kind": req.order_kind, "price": req.price, "qty": qty,
        }  # fmt: skip
    if kind == EV_RESTED:
        return "Rested", {
            "instrument_id": instrument_id, "order_id": order_id, "account_id": owner,
            "side": SIDE_NAMES[side], "price": price, "qty": qty,
        }  # fmt: skip
    if kind == EV_FILLED:
        return "Filled", {
            "instrument_id": instrument_id, "order_id": order_id, "account_id": owner,
            "side": SIDE_NAMES[side], "filled_qty": filled,
        }  # fmt: skip
    if kind == EV_CANCELLED:
        return "Cancelled", {
            "instrument_id": instrument_id, "order_id": order_id, "account_id": owner,
            "remaining_qty": qty, "reason": reason_of(reason), "detail": detail_of(reason),
        }  # fmt: skip
    if kind == EV_EXPIRED:
        return "Expired", {
            "instrument_id": instrument_id, "order_id": order_id, "account_id": owner,
            "remaining_qty": qty, "reason": reason_of(reason), "detail": detail_of(reason),
        }  # fmt: skip
    if kind == EV_REJECTED:
        return "Rejected", {
            "instrument_id": instrument_id, "order_id": order_id, "account_id": owner,
            "reason": reason_of(reason), "request": REQUEST_NAMES[req.kind],
            "detail": detail_of(reason),
        }  # fmt: skip
    if kind in (EV_AMENDED, EV_DECREMENTED):
        # new_qty: the new total over the order's life (remaining + filled), as requested.
        return "AmendApplied", {
            "instrument_id": instrument_id, "order_id": order_id, "account_id": owner,
            "new_price": price, "new_qty": qty + filled,
            "lost_priority": lost_priority and kind == EV_AMENDED,
        }  # fmt: skip
    assert kind == EV_RULES, f"unknown engine event kind {kind}"
    return "RulesApplied", {
        "instrument_id": instrument_id, "price_band_bps": qty, "halted": side == 1,
    }  # fmt: skip


def unknown_instrument_body(req: Request) -> dict[str, Any]:
    return {
        "instrument_id": req.instrument_id, "order_id": req.order_id,
        "account_id": req.account_id, "reason": str(Reason.UNKNOWN_INSTRUMENT),
        "request": REQUEST_NAMES[req.kind], "detail": "unknown_instrument",
    }  # fmt: skip


# Engine events after which an order is gone for good (its hold can be released).
END_REASONS = {
    EV_FILLED: EndReason.FILLED,
    EV_CANCELLED: EndReason.CANCELLED,
    EV_EXPIRED: EndReason.EXPIRED,
}


def end_reason(e: tuple[int, ...], req: Request) -> EndReason | None:
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
