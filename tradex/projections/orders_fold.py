"""Orders joined across the account side and the engine (pure, no I/O).

An order's facts arrive on two topics: ``account-events`` (OrderAccepted / OrderRejected,
CancelRequested, FillSettled, AmendSettled, HoldReleased; key account) and
``engine-events`` (Accepted, Trade, Filled, Cancelled, Expired, Rejected, AmendApplied; key
instrument). Their relative order is arbitrary — a projector may see an order's fill
before its acceptance — so the fold is a **merge of facts**: each event becomes a
one-event :class:`OrderRow` and rows merge with :func:`merge`, which is commutative and
associative:

- fields an order has once (its account, side, prices, the account's outcome, each
  side's end) are *set once*: the first value seen stays; two different values are a
  contradiction in the log (AssertionError);
- quantities, notionals and fees *add up* (every event is folded exactly once: the
  projector's positions guarantee it);
- created time is the *minimum*, updated time the *maximum* of the events' times;
- the newest amend and the newest refused cancel/amend are picked *by engine position*
  (an instrument's engine events are one partition, so offsets order them). The amended
  terms are the engine's ``AmendApplied``; an ``AmendSettled`` (the account side settling
  the engine's confirmation of the same amend, its hold released) states the order's
  account and instrument and its time only: its offsets are the account partition's,
  which do not order against the engine's, so it cannot take part in that pick.

So the row of an order is the same whatever the interleaving of the two topics and
wherever batches are cut. The status is derived from the merged facts (:func:`status`).

Hot path: :func:`facts` yields each event's facts *sparsely* — the columns it sets, the
columns it adds to, an offset-picked group — and :func:`apply` folds one into the batch's
row of its order in a few steps; :func:`merge` (every column) only joins a batch's row to
the stored one. Both follow the same per-column rules.
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
    ("stp_mode", SET_ONCE),  # self-trade prevention (account side: OrderAccepted)
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
_TEMPLATE: list[Any] = [{SUM: 0, MAX: -1}.get(how) for _, how in COLUMNS]
_SET_ONCE = tuple(i for i, (_, how) in enumerate(COLUMNS) if how == SET_ONCE)
_SUMS = tuple(i for i, (_, how) in enumerate(COLUMNS) if how == SUM)
_PICKS = (  # (offset column, the columns it picks)
    (INDEX["amend_offset"], (INDEX["amended_price"], INDEX["amended_qty"])),
    (INDEX["refused_offset"], (INDEX["refused_request"], INDEX["refused_reason"])),
)
_CREATED, _UPDATED = INDEX["created_time_ns"], INDEX["updated_time_ns"]
_NOT_ENDING = frozenset((Reason.DUPLICATE_COMMAND,))  # a duplicate id ends no live order

# A fact: (order id, event time, ((column, value) set once ...), ((column, amount) added
# ...), (offset column, offset, ((column, value) picked ...)) or None)
Fact = tuple[int, int, tuple[tuple[int, Any], ...], tuple[tuple[int, int], ...], Any]


def empty(order_id: int) -> list[Any]:
    """The row of an order nothing is known about yet."""
    row = _TEMPLATE.copy()
    row[0] = order_id
    return row


def _contradiction(row: list[Any], column: int, value: Any) -> AssertionError:
    return AssertionError(f"order {row[0]}: {NAMES[column]} is {row[column]!r} and {value!r}")


def apply(rows: dict[int, list[Any]], fact: Fact) -> None:
    """Fold one fact into ``rows`` (order id -> row; a missing order gets a row)."""
    order_id, time_ns, sets, sums, pick = fact
    row = rows.get(order_id)
    if row is None:
        row = rows[order_id] = _TEMPLATE.copy()
        row[0] = order_id
        row[_CREATED] = row[_UPDATED] = time_ns
    else:
        if time_ns < row[_CREATED]:
            row[_CREATED] = time_ns
        if time_ns > row[_UPDATED]:
            row[_UPDATED] = time_ns
    for column, value in sets:
        known = row[column]
        if known is None:
            row[column] = value
        elif known != value:
            raise _contradiction(row, column, value)
    for column, amount in sums:
        row[column] += amount
    if pick is not None:
        column, offset, picked = pick
        if offset > row[column]:
            row[column] = offset
            for target, value in picked:
                row[target] = value


def merge(a: list[Any], b: list[Any]) -> list[Any]:
    """The row with the facts of both (commutative, associative; ``a`` is reused)."""
    assert a[0] == b[0], "rows of two orders"
    for column in _SET_ONCE:
        value = b[column]
        if value is not None:
            known = a[column]
            if known is None:
                a[column] = value
            elif known != value:
                raise _contradiction(a, column, value)
    for column in _SUMS:
        a[column] += b[column]
    for column, picked in _PICKS:
        if b[column] > a[column]:
            a[column] = b[column]
            for target in picked:
                a[target] = b[target]
    for column, better in ((_CREATED, min), (_UPDATED, max)):
        x, y = a[column], b[column]
        a[column] = y if x is None else x if y is None else better(x, y)
    return a


_ENGINE_END, _ACCOUNT_END = INDEX["engine_end"], INDEX["account_end"]
_OUTCOME, _FILLED, _SETTLED = INDEX["account_outcome"], INDEX["filled_qty"], INDEX["settled_qty"]


def status(row: list[Any]) -> str:
    """NEW, PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED or REJECTED."""
    engine_end, account_end = row[_ENGINE_END], row[_ACCOUNT_END]
    if row[_OUTCOME] == ACCOUNT_REJECTED or REJECTED in (engine_end, account_end):
        return REJECTED
    for end in (FILLED, CANCELLED, EXPIRED):
        if end in (engine_end, account_end):
            return end
    if row[_FILLED] > 0 or row[_SETTLED] > 0:
        return PARTIALLY_FILLED
    return NEW


def row_of(fact: Fact) -> list[Any]:
    """The one-fact row (what :func:`merge` of rows and :func:`apply` agree on)."""
    rows: dict[int, list[Any]] = {}
    apply(rows, fact)
    return rows[fact[0]]


_I = INDEX
_ACCOUNT_ID, _INSTRUMENT_ID, _SIDE, _KIND = (
    _I["account_id"], _I["instrument_id"], _I["side"], _I["kind"],
)  # fmt: skip
_PRICE, _QTY, _COMMAND_ID = _I["price"], _I["qty"], _I["command_id"]


def facts(topic_is_engine: bool, offset: int, body: Any) -> Iterable[Fact]:
    """The facts an event states about orders (none: it concerns no order)."""
    t = body.event_time_ns
    kind = type(body)
    if not topic_is_engine:
        if kind is domain.OrderAccepted:
            b = body
            yield (b.order_id, t, (
                (_ACCOUNT_ID, b.account_id), (_INSTRUMENT_ID, b.instrument_id),
                (_SIDE, str(b.side)), (_KIND, str(b.kind)), (_PRICE, b.price), (_QTY, b.qty),
                (_COMMAND_ID, b.command_id), (_OUTCOME, ACCOUNT_ACCEPTED),
                (_I["hold_asset"], b.hold_asset), (_I["hold_amount"], b.hold_amount),
                (_I["maker_fee_ppm"], b.maker_fee_ppm), (_I["taker_fee_ppm"], b.taker_fee_ppm),
                (_I["stp_mode"], str(b.stp_mode)),
            ), (), None)  # fmt: skip
        elif kind is domain.FillSettled:
            b = body
            yield (b.order_id, t, ((_ACCOUNT_ID, b.account_id), (_INSTRUMENT_ID, b.instrument_id)),
                   ((_SETTLED, b.qty), (_I["settled_notional"], b.notional), (_I["fees"], b.fee)),
                   None)  # fmt: skip
        elif kind is domain.HoldReleased:
            yield (body.order_id, t, (
                (_ACCOUNT_ID, body.account_id), (_ACCOUNT_END, str(body.end_reason)),
                (_I["released_amount"], body.amount),
            ), (), None)  # fmt: skip
        elif kind is domain.OrderRejected:
            b = body
            if b.order_id > 0:  # records before order ids were carried have 0
                yield (b.order_id, t, (
                    (_ACCOUNT_ID, b.account_id), (_INSTRUMENT_ID, b.instrument_id),
                    (_SIDE, str(b.side)), (_KIND, str(b.kind)), (_PRICE, b.price),
                    (_QTY, b.qty), (_COMMAND_ID, b.command_id), (_OUTCOME, ACCOUNT_REJECTED),
                    (_I["reject_reason"], str(b.reason)), (_I["reject_detail"], b.detail),
                ), (), None)  # fmt: skip
        elif kind is domain.AmendSettled:
            yield (body.order_id, t, ((_ACCOUNT_ID, body.account_id),
                                      (_INSTRUMENT_ID, body.instrument_id)), (), None)  # fmt: skip
        elif kind is domain.CancelRequested:
            yield (body.order_id, t, ((_ACCOUNT_ID, body.account_id),
                                      (_I["cancel_requested_time_ns"], t)), (), None)  # fmt: skip
        return
    if kind is engine.Trade:
        b = body
        sums = ((_FILLED, b.qty), (_I["filled_notional"], b.price * b.qty), (_I["trades"], 1))
        yield (b.maker_order_id, t, ((_ACCOUNT_ID, b.maker_account_id),
                                     (_INSTRUMENT_ID, b.instrument_id)), sums, None)  # fmt: skip
        yield (b.taker_order_id, t, ((_ACCOUNT_ID, b.taker_account_id),
                                     (_INSTRUMENT_ID, b.instrument_id)), sums, None)  # fmt: skip
    elif kind is engine.Accepted:
        b = body
        yield (b.order_id, t, (
            (_ACCOUNT_ID, b.account_id), (_INSTRUMENT_ID, b.instrument_id), (_SIDE, str(b.side)),
            (_KIND, str(b.kind)), (_PRICE, b.price), (_QTY, b.qty),
        ), (), None)  # fmt: skip
    elif kind is engine.Filled:
        yield (body.order_id, t, ((_ACCOUNT_ID, body.account_id),
                                  (_INSTRUMENT_ID, body.instrument_id),
                                  (_ENGINE_END, FILLED)), (), None)  # fmt: skip
    elif kind is engine.Cancelled or kind is engine.Expired:
        yield (body.order_id, t, (
            (_ACCOUNT_ID, body.account_id), (_INSTRUMENT_ID, body.instrument_id),
            (_ENGINE_END, CANCELLED if kind is engine.Cancelled else EXPIRED),
            (_I["engine_end_reason"], str(body.reason)), (_I["engine_end_detail"], body.detail),
        ), (), None)  # fmt: skip
    elif kind is engine.Rejected:
        b = body
        if b.order_id <= 0:
            return
        if b.request == "NewOrder":
            if b.reason not in _NOT_ENDING:
                reason = str(b.reason)
                yield (b.order_id, t, (
                    (_ENGINE_END, REJECTED), (_I["engine_end_reason"], reason),
                    (_I["engine_end_detail"], b.detail), (_I["reject_reason"], reason),
                    (_I["reject_detail"], b.detail),
                ), (), None)  # fmt: skip
        else:
            yield (b.order_id, t, (), (), (
                _I["refused_offset"], offset,
                ((_I["refused_request"], b.request), (_I["refused_reason"], str(b.reason))),
            ))  # fmt: skip
    elif kind is engine.AmendApplied:
        b = body
        yield (b.order_id, t, ((_ACCOUNT_ID, b.account_id), (_INSTRUMENT_ID, b.instrument_id)), (), (
            _I["amend_offset"], offset,
            ((_I["amended_price"], b.new_price), (_I["amended_qty"], b.new_qty)),
        ))  # fmt: skip
