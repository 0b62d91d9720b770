"""Inputs of the account aggregate.

Account commands (``account-commands``, key account_id) carry a client-chosen
``command_id``; settlement records (``settlements``, key account_id) come from the matcher
and are identified by ``(trade_id, order_id)`` / ``order_id`` (see :func:`input_key`).
``event_time_ns`` is set by whoever creates the record and becomes the time of every
event decided from it.

``actor`` (account commands): the user id of who sends the command (the API's
authenticated user); 0 is the system (tools, tests, benchmarks, records written before the
field existed). The account processor checks it against the reference table's roles and
ownership (docs/ledger.md, "Identity on the log") and the events record it.
"""

from __future__ import annotations

from typing import NamedTuple

from tradex.domain.errors import InvalidRecord
from tradex.domain.types import (
    END_REASONS,
    ID_TEXT_LENGTH_MAX,
    LIQUIDITIES,
    ORDER_KINDS,
    SIDES,
    STP_MODES,
    EndReason,
    Liquidity,
    OrderKind,
    Side,
    StpMode,
)


def _command_id(command_id: str) -> None:
    if not 0 < len(command_id) <= ID_TEXT_LENGTH_MAX:
        raise InvalidRecord(f"command_id must be 1..{ID_TEXT_LENGTH_MAX} characters")


class Deposit(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    asset: str
    amount: int  # minor units
    actor: int = 0  # an admin (0: the system)

    def validate(self) -> None:
        _command_id(self.command_id)


class RequestWithdrawal(NamedTuple):
    """Holds ``amount`` until approved or rejected; the withdrawal id is this command_id."""

    command_id: str
    account_id: int
    event_time_ns: int
    asset: str
    amount: int
    actor: int = 0  # the account's owner (0: the system)

    def validate(self) -> None:
        _command_id(self.command_id)


class ApproveWithdrawal(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    withdrawal_id: str
    actor: int = 0  # an admin other than the requester (0: the system)

    def validate(self) -> None:
        _command_id(self.command_id)


class RejectWithdrawal(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    withdrawal_id: str
    actor: int = 0  # an admin other than the requester (0: the system)

    def validate(self) -> None:
        _command_id(self.command_id)


class PlaceOrder(NamedTuple):
    """price in ticks (MARKET: the protection price, required), qty in lots."""

    command_id: str
    account_id: int
    event_time_ns: int
    instrument_id: int
    side: Side
    kind: OrderKind
    price: int
    qty: int
    protection_ticks: int = 0
    stp_mode: StpMode = StpMode.NONE
    actor: int = 0  # the account's owner (0: the system)

    def validate(self) -> None:
        _command_id(self.command_id)
        if self.side not in SIDES:
            raise InvalidRecord(f"unknown side {self.side!r}")
        if self.kind not in ORDER_KINDS:
            raise InvalidRecord(f"unknown order kind {self.kind!r}")
        if self.stp_mode not in STP_MODES:
            raise InvalidRecord(f"unknown stp mode {self.stp_mode!r}")
        if self.protection_ticks < 0:
            raise InvalidRecord("protection_ticks must be >= 0")


class CancelOrder(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    actor: int = 0

    def validate(self) -> None:
        _command_id(self.command_id)


class ModifyOrder(NamedTuple):
    """Amend an open order: ``new_price`` (ticks, 0 keeps it) and/or ``new_qty`` (lots, the
    new total over the order's life, 0 keeps it). The account adjusts the hold first, then
    forwards the engine's ``AmendOrder`` (docs/ledger.md, "Amend")."""

    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    new_price: int
    new_qty: int
    actor: int = 0

    def validate(self) -> None:
        _command_id(self.command_id)
        if self.new_price < 0:
            raise InvalidRecord(f"new_price must be >= 0, got {self.new_price}")
        if self.new_qty < 0:
            raise InvalidRecord(f"new_qty must be >= 0, got {self.new_qty}")


class CancelAllOrders(NamedTuple):
    """Cancel every open order of the account (``instrument_id`` 0) or of one instrument.

    Decided in chunks of at most ``CANCEL_ALL_CHUNK`` orders (ascending order id): a chunk
    that leaves orders to cancel also writes its continuation, this command with
    ``after_order_id`` = the last id it cancelled and ``up_to_order_id`` = the highest
    order id open when the first chunk ran (orders placed later are not cancelled), to
    ``account-commands`` in the same transaction (docs/ledger.md, "Cancel-all")."""

    command_id: str
    account_id: int
    event_time_ns: int
    instrument_id: int = 0  # 0: every instrument
    actor: int = 0
    after_order_id: int = 0  # a continuation: cancel the ids above this one
    up_to_order_id: int = 0  # a continuation: ... up to this one (0: the first chunk)

    def validate(self) -> None:
        _command_id(self.command_id)
        if self.instrument_id < 0:
            raise InvalidRecord(f"instrument_id must be >= 0, got {self.instrument_id}")
        if self.after_order_id < 0 or self.up_to_order_id < 0:
            raise InvalidRecord("after_order_id and up_to_order_id must be >= 0")

    @property
    def continuation(self) -> bool:
        return self.up_to_order_id > 0


class FillLeg(NamedTuple):
    """One side of one trade, from the matcher (one FillLeg per side per trade)."""

    account_id: int
    order_id: int
    trade_id: int
    instrument_id: int
    side: Side
    price: int  # ticks, the trade price
    qty: int  # lots
    liquidity: Liquidity
    event_time_ns: int

    @property
    def command_id(self) -> str:
        """Its id in the account's settlement window (not the client commands' window:
        a client may use any text as a command id, this one included)."""
        return f"fill/{self.trade_id}/{self.order_id}"

    def validate(self) -> None:
        if self.side not in SIDES:
            raise InvalidRecord(f"unknown side {self.side!r}")
        if self.liquidity not in LIQUIDITIES:
            raise InvalidRecord(f"unknown liquidity {self.liquidity!r}")
        if self.price <= 0:
            raise InvalidRecord(f"fill price must be > 0, got {self.price}")
        if self.qty <= 0:
            raise InvalidRecord(f"fill qty must be > 0, got {self.qty}")


class OrderEnded(NamedTuple):
    """The order left the book for good: release the rest of its hold."""

    account_id: int
    order_id: int
    instrument_id: int
    reason: EndReason
    event_time_ns: int

    @property
    def command_id(self) -> str:
        return f"end/{self.order_id}"

    def validate(self) -> None:
        if self.reason not in END_REASONS:
            raise InvalidRecord(f"unknown end reason {self.reason!r}")


def decrement_amend_time(engine_seq: int) -> int:
    """``AmendConfirmed.amend_time_ns`` of a self-trade prevention decrement: minus the
    engine event's sequence number (per instrument, so it names one decrement of an order
    and its settlement's command id; an amend's time is an event time, > 0)."""
    assert engine_seq > 0, engine_seq
    return -engine_seq


class AmendConfirmed(NamedTuple):
    """The engine applied an amend of the order (the ``AmendOrder`` the account forwarded
    at ``amend_time_ns``) — or decremented it to prevent a self-trade (``amend_time_ns`` < 0:
    :func:`decrement_amend_time`) —: its terms after it. Every fill the engine decided
    before it is ahead of it on ``settlements``, so the account may narrow the order's
    bounds to these terms and the amends it has not seen answered, and release the rest of
    the hold (docs/ledger.md, "Amend")."""

    account_id: int
    order_id: int
    instrument_id: int
    price: int  # ticks, the order's limit after the amend
    qty: int  # lots, the order's total after the amend (filled included)
    amend_time_ns: int  # the AmendOrder's event_time_ns: which amend this answers (< 0: none)
    event_time_ns: int

    @property
    def command_id(self) -> str:
        return f"amend/{self.order_id}/{self.amend_time_ns}"

    def validate(self) -> None:
        if self.price <= 0 or self.qty <= 0:
            raise InvalidRecord(f"price and qty must be > 0, got {self.price}, {self.qty}")


AccountCommand = (
    Deposit
    | RequestWithdrawal
    | ApproveWithdrawal
    | RejectWithdrawal
    | PlaceOrder
    | CancelOrder
    | ModifyOrder
    | CancelAllOrders
)
SettlementInput = FillLeg | OrderEnded | AmendConfirmed
# the settlement records, as types: what the matcher writes to ``settlements``
SETTLEMENT_TYPES: tuple[type, ...] = (FillLeg, OrderEnded, AmendConfirmed)
AccountInput = AccountCommand | SettlementInput
