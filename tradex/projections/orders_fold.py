"""Orders joined across the account side and the engine (pure, no I/O).

An order's facts arrive on two topics: ``account-events`` (OrderAccepted / OrderRejected,
CancelRequested, FillSettled, HoldReleased; key account) and ``engine-events`` (Accepted,
Trade, Filled, Cancelled, Expired, Rejected, AmendApplied; key instrument). Their relative
order is arbitrary — a projector may see an order's fill before its acceptance — so the
fold is a **merge of facts**: each event becomes a one-event :class:`OrderRow` and rows
merge with :func:`merge`, which is commutative and associative:

- fields an order has once (its account, side, prices, the account's outcome, each
  side's end) are *set once*: the first value seen stays; two different values are a
  contradiction in the log (AssertionError);
- quantities, notionals and fees *add up* (every event is folded exactly once: the
  projector's positions guarantee it);
- created time is the *minimum*, updated time the *maximum* of the events' times;
- the newest amend and the newest refused cancel/amend are picked *by engine position*
  (an instrument's engine events are one partition, so offsets order them).

So the row of an order is the same whatever the interleaving of the two topics and
wherever batches are cut. The status is derived from the merged facts (:func:`status`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tradex import domain
from tradex.domain import engine
from tradex.domain.types import Reason

NEW = "NEW"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
REJECTED = "REJECTED"
OPEN_STATUSES = (NEW, PARTIALLY_FILLED)
ACCOUNT_ACCEPTED = "ACCEPTED"
ACCOUNT_REJECTED = "REJECTED"

# (column, how it merges); the order of the orders table's columns
SET_ONCE = "set once"
SUM = "sum"
MIN = "min"
MAX = "max"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("order_id", SET_ONCE),
    ("account_id", SET_ONCE),
    ("instrument_id", SET_ONCE),
    ("side", SET_ONCE),
    ("kind", SET_ONCE),
    ("price", SET_ONCE),  # as placed (MARKET: the protection price)
    ("qty", SET_ONCE),  # as placed, lots
    ("command_id", SET_ONCE),  # the client's command id (account side)
    ("account_outcome", SET_ONCE),  # ACCEPTED | REJECTED (account side)
    ("hold_asset", SET_ONCE),
    ("hold_amount", SET_ONCE),
    ("maker_fee_ppm", SET_ONCE),
    ("taker_fee_ppm", SET_ONCE),
    ("reject_reason", SET_ONCE),  # account side or engine (a NewOrder refused)
    ("reject_detail", SET_ONCE),
    ("cancel_requested_time_ns", SET_ONCE),
    ("engine_end", SET_ONCE),  # FILLED | CANCELLED | EXPIRED | REJECTED (engine side)
    ("engine_end_reason", SET_ONCE),  # the engine's reason (Cancelled/Expired/Rejected)
    ("engine_end_detail", SET_ONCE),
    ("account_end", SET_ONCE),  # the EndReason of HoldReleased (account side)
    ("released_amount", SET_ONCE),
    ("filled_qty", SUM),  # engine trades, lots
    ("filled_notional", SUM),  # Σ price·qty of the engine trades (ticks·lots)
    ("settled_qty", SUM),  # FillSettled, lots
    ("settled_notional", SUM),  # Σ FillSettled.notional (quote minor units)
    ("fees", SUM),  # Σ FillSettled.fee (quote minor units)
    ("trades", SUM),
    ("created_time_ns", MIN),
    ("updated_time_ns", MAX),
    ("amend_offset", MAX),  # engine offset of the newest AmendApplied (-1: none)
    ("amended_price", "amend"),
    ("amended_qty", "amend"),
    ("refused_offset", MAX),  # engine offset of the newest refused cancel/amend (-1)
    ("refused_request", "refused"),
    ("refused_reason", "refused"),
)
NAMES = tuple(name for name, _ in COLUMNS)
INDEX = {name: i for i, name in enumerate(NAMES)}
_ZERO = {SUM: 0, MAX: -1}
_NOT_ENDING = frozenset((Reason.DUPLICATE_COMMAND,))  # a duplicate id ends no live order


def empty(order_id: int) -> list[Any]:
    """The row of an order nothing is known about yet."""
    row: list[Any] = [_ZERO.get(how) for _, how in COLUMNS]
    row[0] = order_id
    return row


def merge(a: list[Any], b: list[Any]) -> list[Any]:
    """The row with the facts of both (commutative, associative; ``a`` is reused)."""
    assert a[0] == b[0], "rows of two orders"
    for i, (name, how) in enumerate(COLUMNS):
        x, y = a[i], b[i]
        if how == SET_ONCE:
            if x is None:
                a[i] = y
            else:
                assert y is None or x == y, f"order {a[0]}: {name} is {x!r} and {y!r}"
        elif how == SUM:
            a[i] = x + y
        elif how == MIN:
            a[i] = y if x is None else x if y is None else min(x, y)
        elif how == MAX:
            pass  # below, with what they pick
    for offset_name, picked in (
        ("amend_offset", ("amended_price", "amended_qty")),
        ("refused_offset", ("refused_request", "refused_reason")),
    ):
        o = INDEX[offset_name]
        if b[o] > a[o]:
            a[o] = b[o]
            for name in picked:
                a[INDEX[name]] = b[INDEX[name]]
    u = INDEX["updated_time_ns"]
    a[u] = b[u] if a[u] is None else a[u] if b[u] is None else max(a[u], b[u])
    return a


def status(row: list[Any]) -> str:
    """NEW, PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED or REJECTED."""
    ends = {row[INDEX["engine_end"]], row[INDEX["account_end"]]}
    if row[INDEX["account_outcome"]] == ACCOUNT_REJECTED or REJECTED in ends:
        return REJECTED
    for end in (FILLED, CANCELLED, EXPIRED):
        if end in ends:
            return end
    if row[INDEX["filled_qty"]] > 0 or row[INDEX["settled_qty"]] > 0:
        return PARTIALLY_FILLED
    return NEW


def _row(order_id: int, time_ns: int, **values: Any) -> list[Any]:
    row = empty(order_id)
    row[INDEX["created_time_ns"]] = time_ns
    row[INDEX["updated_time_ns"]] = time_ns
    for name, value in values.items():
        row[INDEX[name]] = value
    return row


def facts(topic_is_engine: bool, offset: int, body: Any) -> Iterable[list[Any]]:
    """The one-event rows of an event (none: it concerns no order)."""
    t = body.event_time_ns
    kind = type(body)
    if not topic_is_engine:
        if kind is domain.OrderAccepted:
            b = body
            yield _row(
                b.order_id, t, account_id=b.account_id, instrument_id=b.instrument_id,
                side=str(b.side), kind=str(b.kind), price=b.price, qty=b.qty,
                command_id=b.command_id, account_outcome=ACCOUNT_ACCEPTED,
                hold_asset=b.hold_asset, hold_amount=b.hold_amount,
                maker_fee_ppm=b.maker_fee_ppm, taker_fee_ppm=b.taker_fee_ppm,
            )  # fmt: skip
        elif kind is domain.OrderRejected:
            b = body
            if b.order_id > 0:  # records before order ids were carried have 0
                yield _row(
                    b.order_id, t, account_id=b.account_id, instrument_id=b.instrument_id,
                    side=str(b.side), kind=str(b.kind), price=b.price, qty=b.qty,
                    command_id=b.command_id, account_outcome=ACCOUNT_REJECTED,
                    reject_reason=str(b.reason), reject_detail=b.detail,
                )  # fmt: skip
        elif kind is domain.CancelRequested:
            yield _row(body.order_id, t, account_id=body.account_id,
                       cancel_requested_time_ns=t)  # fmt: skip
        elif kind is domain.FillSettled:
            b = body
            yield _row(
                b.order_id, t, account_id=b.account_id, instrument_id=b.instrument_id,
                settled_qty=b.qty, settled_notional=b.notional, fees=b.fee,
            )  # fmt: skip
        elif kind is domain.HoldReleased:
            yield _row(body.order_id, t, account_id=body.account_id,
                       account_end=str(body.end_reason), released_amount=body.amount)  # fmt: skip
        return
    if kind is engine.Trade:
        b = body
        notional = b.price * b.qty
        for order_id, account_id in (
            (b.maker_order_id, b.maker_account_id),
            (b.taker_order_id, b.taker_account_id),
        ):
            yield _row(order_id, t, account_id=account_id, instrument_id=b.instrument_id,
                       filled_qty=b.qty, filled_notional=notional, trades=1)  # fmt: skip
    elif kind is engine.Accepted:
        b = body
        yield _row(b.order_id, t, account_id=b.account_id, instrument_id=b.instrument_id,
                   side=str(b.side), kind=str(b.kind), price=b.price, qty=b.qty)  # fmt: skip
    elif kind is engine.Filled:
        yield _row(body.order_id, t, account_id=body.account_id,
                   instrument_id=body.instrument_id, engine_end=FILLED)  # fmt: skip
    elif kind is engine.Cancelled or kind is engine.Expired:
        yield _row(
            body.order_id, t, account_id=body.account_id, instrument_id=body.instrument_id,
            engine_end=CANCELLED if kind is engine.Cancelled else EXPIRED,
            engine_end_reason=str(body.reason), engine_end_detail=body.detail,
        )  # fmt: skip
    elif kind is engine.Rejected:
        b = body
        if b.order_id <= 0:
            return
        if b.request == "NewOrder":
            if b.reason not in _NOT_ENDING:
                yield _row(b.order_id, t, engine_end=REJECTED, engine_end_reason=str(b.reason),
                           engine_end_detail=b.detail, reject_reason=str(b.reason),
                           reject_detail=b.detail)  # fmt: skip
        else:
            yield _row(b.order_id, t, refused_offset=offset, refused_request=b.request,
                       refused_reason=str(b.reason))  # fmt: skip
    elif kind is engine.AmendApplied:
        b = body
        yield _row(b.order_id, t, account_id=b.account_id, instrument_id=b.instrument_id,
                   amend_offset=offset, amended_price=b.new_price, amended_qty=b.new_qty)  # fmt: skip
