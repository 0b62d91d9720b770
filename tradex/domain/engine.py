"""Engine events (``engine-events``, key instrument_id): what the matcher did to a book.

Written by the matcher (``tradex.matching``), read by projectors and
``tradex matching verify``. Fields follow the Avro schemas (``tradex.engine.*``) in order;
``event_time_ns`` is the *engine time*: per instrument, the largest request time seen so far
(never going backwards along an instrument's records, see docs/matching_service.md).

Every record of an order carries its ``order_id`` (a trade carries both sides');
``L2Delta.book_seq`` numbers an instrument's book updates 1, 2, 3, … without gaps.
Records written before ``event_time_ns`` / ``book_seq`` existed decode with 0.

Quantities are lots, prices ticks (int64). ``validate()`` checks what the matcher always
guarantees, so a record failing it is corrupt or forged.
"""

from __future__ import annotations

from typing import NamedTuple

from tradex.domain.errors import InvalidRecord
from tradex.domain.types import ORDER_KINDS, REASONS, SIDES, OrderKind, Reason, Side


def _positive(value: int, what: str) -> None:
    if value <= 0:
        raise InvalidRecord(f"{what} must be > 0, got {value}")


def _not_negative(value: int, what: str) -> None:
    if value < 0:
        raise InvalidRecord(f"{what} must be >= 0, got {value}")


def _side(side: str) -> None:
    if side not in SIDES:
        raise InvalidRecord(f"unknown side {side!r}")


def _reason(reason: str) -> None:
    if reason not in REASONS:
        raise InvalidRecord(f"unknown reason {reason!r}")


class Accepted(NamedTuple):
    """The order passed the engine's checks; ``price`` as requested (MARKET: its
    protection price), ``qty`` its total quantity."""

    instrument_id: int
    order_id: int
    account_id: int
    side: Side
    kind: OrderKind
    price: int
    qty: int
    event_time_ns: int

    def validate(self) -> None:
        _positive(self.order_id, "order_id")
        _side(self.side)
        if self.kind not in ORDER_KINDS:
            raise InvalidRecord(f"unknown order kind {self.kind!r}")
        _positive(self.price, "price")
        _positive(self.qty, "qty")


class Rested(NamedTuple):
    """The order's remainder ``qty`` now rests in the book at ``price``."""

    instrument_id: int
    order_id: int
    account_id: int
    side: Side
    price: int
    qty: int
    event_time_ns: int

    def validate(self) -> None:
        _positive(self.order_id, "order_id")
        _side(self.side)
        _positive(self.price, "price")
        _positive(self.qty, "qty")


class Trade(NamedTuple):
    """One fill between a resting maker and the incoming taker, at the maker's price."""

    instrument_id: int
    trade_id: int
    price: int
    qty: int
    taker_side: Side
    maker_order_id: int
    maker_account_id: int
    taker_order_id: int
    taker_account_id: int
    event_time_ns: int

    def validate(self) -> None:
        _positive(self.trade_id, "trade_id")
        _positive(self.price, "price")
        _positive(self.qty, "qty")
        _side(self.taker_side)
        _positive(self.maker_order_id, "maker_order_id")
        _positive(self.taker_order_id, "taker_order_id")


class Filled(NamedTuple):
    """The order is fully filled (``filled_qty`` over its life) and gone from the book."""

    instrument_id: int
    order_id: int
    account_id: int
    side: Side
    filled_qty: int
    event_time_ns: int

    def validate(self) -> None:
        _positive(self.order_id, "order_id")
        _side(self.side)
        _positive(self.filled_qty, "filled_qty")


class Cancelled(NamedTuple):
    """The order left the book unfilled for ``remaining_qty``: on request (reason UNKNOWN)
    or by self-trade prevention; ``detail`` is the engine's own reason code name."""

    instrument_id: int
    order_id: int
    account_id: int
    remaining_qty: int
    reason: Reason
    detail: str
    event_time_ns: int

    def validate(self) -> None:
        _positive(self.order_id, "order_id")
        _not_negative(self.remaining_qty, "remaining_qty")
        _reason(self.reason)


class Expired(NamedTuple):
    """An IOC/FOK/market order's unfilled ``remaining_qty`` ended without resting."""

    instrument_id: int
    order_id: int
    account_id: int
    remaining_qty: int
    reason: Reason
    detail: str
    event_time_ns: int

    def validate(self) -> None:
        _positive(self.order_id, "order_id")
        _not_negative(self.remaining_qty, "remaining_qty")
        _reason(self.reason)


class Rejected(NamedTuple):
    """A request the engine refused (``request``: NewOrder, CancelOrderRequest, AmendOrder,
    InstrumentRules); ``order_id`` as requested, so it may be 0 or bad."""

    instrument_id: int
    order_id: int
    account_id: int
    reason: Reason
    request: str
    detail: str
    event_time_ns: int

    def validate(self) -> None:
        _reason(self.reason)


class AmendApplied(NamedTuple):
    """The order now has ``new_price`` and ``new_qty`` (total over its life);
    ``lost_priority``: it was re-queued at the back of its level."""

    instrument_id: int
    order_id: int
    account_id: int
    new_price: int
    new_qty: int
    lost_priority: bool
    event_time_ns: int

    def validate(self) -> None:
        _positive(self.order_id, "order_id")
        _positive(self.new_price, "new_price")
        _positive(self.new_qty, "new_qty")


class L2Delta(NamedTuple):
    """The level ``price`` of ``side`` now holds ``qty`` lots in total (0: the level is
    gone). ``book_seq``: 1 for the instrument's first L2Delta, +1 for each next one."""

    instrument_id: int
    side: Side
    price: int
    qty: int
    book_seq: int
    event_time_ns: int

    def validate(self) -> None:
        _side(self.side)
        _positive(self.price, "price")
        _not_negative(self.qty, "qty")
        _not_negative(self.book_seq, "book_seq")


class RulesApplied(NamedTuple):
    """An ``InstrumentRules`` took effect: price band and halt."""

    instrument_id: int
    price_band_bps: int
    halted: bool
    event_time_ns: int

    def validate(self) -> None:
        _not_negative(self.price_band_bps, "price_band_bps")


EngineEvent = (
    Accepted
    | Rested
    | Trade
    | Filled
    | Cancelled
    | Expired
    | Rejected
    | AmendApplied
    | L2Delta
    | RulesApplied
)
ENGINE_EVENT_TYPES: tuple[type, ...] = (
    Accepted,
    Rested,
    Trade,
    Filled,
    Cancelled,
    Expired,
    Rejected,
    AmendApplied,
    L2Delta,
    RulesApplied,
)
