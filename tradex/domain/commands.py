"""Inputs of the account aggregate.

Account commands (``account-commands``, key account_id) carry a client-chosen
``command_id``; settlement records (``settlements``, key account_id) come from the matcher
and are identified by ``(trade_id, order_id)`` / ``order_id`` (see :func:`input_key`).
``event_time_ns`` is set by whoever creates the record and becomes the time of every
event decided from it.
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

    def validate(self) -> None:
        _command_id(self.command_id)


class RequestWithdrawal(NamedTuple):
    """Holds ``amount`` until approved or rejected; the withdrawal id is this command_id."""

    command_id: str
    account_id: int
    event_time_ns: int
    asset: str
    amount: int

    def validate(self) -> None:
        _command_id(self.command_id)


class ApproveWithdrawal(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    withdrawal_id: str

    def validate(self) -> None:
        _command_id(self.command_id)


class RejectWithdrawal(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    withdrawal_id: str

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

    def validate(self) -> None:
        _command_id(self.command_id)


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


AccountCommand = (
    Deposit | RequestWithdrawal | ApproveWithdrawal | RejectWithdrawal | PlaceOrder | CancelOrder
)
SettlementInput = FillLeg | OrderEnded
AccountInput = AccountCommand | SettlementInput
