"""Account events (``account-events``, key account_id): facts decided by the account aggregate.

Every event starts with ``command_id, account_id, event_time_ns``. Balance-changing events
carry ``postings``, a balanced journal entry. Movements between ``available`` and ``held``
of the same account are explicit fields (the *hold delta*), not postings:

========================  ==================================  =============================
event                     postings                            hold delta (asset, amount)
========================  ==================================  =============================
Deposited                 acct +a, external −a                —
WithdrawalRequested       —                                   (asset, +amount)
WithdrawalPaid            acct −a, external +a                (asset, −amount)
WithdrawalReleased        —                                   (asset, −amount)
OrderAccepted             —                                   (hold_asset, +hold_amount)
OrderAmended              —                                   (hold_asset, +hold_added)
FillSettled               5 legs vs clearing and fees         (hold_asset, −hold_consumed)
HoldReleased              —                                   (asset, −amount)
OrderRejected, CancelRequested, CommandRejected: no balance change.
========================  ==================================  =============================

so for every event and asset: ``Δavailable = Σ own postings − Δheld``.

``actor`` (the events of account commands): the user id of who sent the command (0: the
system; and records written before the field existed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from tradex.domain.errors import InvalidRecord
from tradex.domain.journal import Posting, check_balanced
from tradex.domain.types import (
    END_REASONS,
    LIQUIDITIES,
    REASONS,
    SIDES,
    EndReason,
    Liquidity,
    OrderKind,
    Reason,
    Side,
    StpMode,
)


def _positive(value: int, what: str) -> None:
    if value <= 0:
        raise InvalidRecord(f"{what} must be > 0, got {value}")


class Deposited(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    asset: str
    amount: int
    postings: tuple[Posting, ...]
    actor: int = 0

    def validate(self) -> None:
        _positive(self.amount, "amount")
        check_balanced(self.postings)


class WithdrawalRequested(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    withdrawal_id: str
    asset: str
    amount: int
    actor: int = 0  # the requester (the maker)

    def validate(self) -> None:
        _positive(self.amount, "amount")


class WithdrawalPaid(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    withdrawal_id: str
    asset: str
    amount: int
    postings: tuple[Posting, ...]
    actor: int = 0  # who approved (the checker)

    def validate(self) -> None:
        _positive(self.amount, "amount")
        check_balanced(self.postings)


class WithdrawalReleased(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    withdrawal_id: str
    asset: str
    amount: int
    actor: int = 0  # who rejected (the checker)

    def validate(self) -> None:
        _positive(self.amount, "amount")


class OrderAccepted(NamedTuple):
    """Hold placed, order forwarded. Snapshots everything settlement needs (sizes, fees)."""

    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    instrument_id: int
    side: Side
    kind: OrderKind
    price: int
    qty: int
    protection_ticks: int
    stp_mode: StpMode
    base_asset: str
    quote_asset: str
    tick_size: int
    lot_size: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    hold_asset: str
    hold_amount: int
    actor: int = 0

    def validate(self) -> None:
        if self.side not in SIDES:
            raise InvalidRecord(f"unknown side {self.side!r}")
        _positive(self.price, "price")
        _positive(self.qty, "qty")
        _positive(self.hold_amount, "hold_amount")
        expected = self.quote_asset if self.side == Side.BUY else self.base_asset
        if self.hold_asset != expected:
            raise InvalidRecord(f"a {self.side} holds {expected}, not {self.hold_asset}")


class OrderRejected(NamedTuple):
    """``order_id``: the id the order would have had (what its OrderAccepted would have
    carried: ``(input partition << 40) | input offset``); 0 in records written before the
    field existed."""

    command_id: str
    account_id: int
    event_time_ns: int
    instrument_id: int
    side: Side
    kind: OrderKind
    price: int
    qty: int
    reason: Reason
    detail: str
    order_id: int
    actor: int = 0

    def validate(self) -> None:
        if self.reason not in REASONS:
            raise InvalidRecord(f"unknown reason {self.reason!r}")
        if self.order_id < 0:
            raise InvalidRecord(f"order_id must be >= 0, got {self.order_id}")


class CancelRequested(NamedTuple):
    """An open order's cancel forwarded to the engine (by a CancelOrder, or one of a
    CancelAllOrders' chunk: then several share the command id)."""

    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    instrument_id: int
    actor: int = 0

    def validate(self) -> None:
        if self.order_id < 0:
            raise InvalidRecord("order_id must be >= 0")


class OrderAmended(NamedTuple):
    """An amend forwarded to the engine (as its ``AmendOrder``: ``new_price``/``new_qty``,
    0 keeps). The engine does not tell the account whether it applied the amend, and fills
    decided before it may still arrive, so the order is held and checked against the
    *bounds*: ``price_bound`` (a buy: the highest limit it ever had, a sell: the lowest) and
    ``qty_bound`` (the largest total); ``hold_added`` (>= 0) tops the hold up to those
    bounds. The order's end releases what is left (docs/ledger.md, "Amend")."""

    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    instrument_id: int
    new_price: int
    new_qty: int
    price_bound: int
    qty_bound: int
    hold_asset: str
    hold_added: int
    actor: int = 0

    def validate(self) -> None:
        _positive(self.price_bound, "price_bound")
        _positive(self.qty_bound, "qty_bound")
        if self.new_price < 0 or self.new_qty < 0:
            raise InvalidRecord("new_price and new_qty must be >= 0")
        if self.hold_added < 0:
            raise InvalidRecord(f"hold_added must be >= 0, got {self.hold_added}")


class AmendSettled(NamedTuple):
    """The engine's ``AmendConfirmed`` settled: the order's bounds narrowed to the terms the
    engine applied (``price``, ``qty``) and those of the amends it has not answered yet, and
    ``hold_released`` (>= 0), the hold above what the order can still consume within them,
    goes back to available (docs/ledger.md, "Amend")."""

    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    instrument_id: int
    price: int
    qty: int
    price_bound: int
    qty_bound: int
    hold_asset: str
    hold_released: int
    amend_time_ns: int  # the confirmed amend's time: it and the order's earlier amends are done

    def validate(self) -> None:
        _positive(self.price, "price")
        _positive(self.qty, "qty")
        _positive(self.price_bound, "price_bound")
        _positive(self.qty_bound, "qty_bound")
        if self.hold_released < 0:
            raise InvalidRecord(f"hold_released must be >= 0, got {self.hold_released}")


class FillSettled(NamedTuple):
    """One fill leg settled against clearing; ``fee_micro`` is the order's cumulative
    Σ notional·rate after this fill (see ``tradex.domain.units``)."""

    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    trade_id: int
    instrument_id: int
    side: Side
    liquidity: Liquidity
    price: int
    qty: int
    notional: int
    fee: int
    fee_micro: int
    hold_asset: str
    hold_consumed: int
    postings: tuple[Posting, ...]

    def validate(self) -> None:
        if self.side not in SIDES:
            raise InvalidRecord(f"unknown side {self.side!r}")
        if self.liquidity not in LIQUIDITIES:
            raise InvalidRecord(f"unknown liquidity {self.liquidity!r}")
        _positive(self.qty, "qty")
        _positive(self.hold_consumed, "hold_consumed")
        if self.fee < 0:
            raise InvalidRecord(f"fee must be >= 0, got {self.fee}")
        check_balanced(self.postings)


class HoldReleased(NamedTuple):
    """The order ended: the rest of its hold (possibly 0) goes back to available."""

    command_id: str
    account_id: int
    event_time_ns: int
    order_id: int
    asset: str
    amount: int
    end_reason: EndReason

    def validate(self) -> None:
        if self.amount < 0:
            raise InvalidRecord(f"amount must be >= 0, got {self.amount}")
        if self.end_reason not in END_REASONS:
            raise InvalidRecord(f"unknown end reason {self.end_reason!r}")


class CommandRejected(NamedTuple):
    command_id: str
    account_id: int
    event_time_ns: int
    command_type: str
    reason: Reason
    detail: str
    actor: int = 0

    def validate(self) -> None:
        if self.reason not in REASONS:
            raise InvalidRecord(f"unknown reason {self.reason!r}")


AccountEvent = (
    Deposited
    | WithdrawalRequested
    | WithdrawalPaid
    | WithdrawalReleased
    | OrderAccepted
    | OrderRejected
    | CancelRequested
    | OrderAmended
    | AmendSettled
    | FillSettled
    | HoldReleased
    | CommandRejected
)
ACCOUNT_EVENT_TYPES: tuple[type, ...] = (
    Deposited,
    WithdrawalRequested,
    WithdrawalPaid,
    WithdrawalReleased,
    OrderAccepted,
    OrderRejected,
    CancelRequested,
    FillSettled,
    HoldReleased,
    CommandRejected,
    OrderAmended,
    AmendSettled,
)


HOLD_DELTA_OF: dict[type, Callable[[Any], tuple[str, int]]] = {
    WithdrawalRequested: lambda e: (e.asset, e.amount),
    WithdrawalPaid: lambda e: (e.asset, -e.amount),
    WithdrawalReleased: lambda e: (e.asset, -e.amount),
    OrderAccepted: lambda e: (e.hold_asset, e.hold_amount),
    OrderAmended: lambda e: (e.hold_asset, e.hold_added),
    AmendSettled: lambda e: (e.hold_asset, -e.hold_released),
    FillSettled: lambda e: (e.hold_asset, -e.hold_consumed),
    HoldReleased: lambda e: (e.asset, -e.amount),
}  # the table above, by event type (one dict lookup: folds call it for every event)


def hold_delta(event: AccountEvent) -> tuple[str, int] | None:
    """(asset, change of held) of an event, None when it holds nothing (table above)."""
    of = HOLD_DELTA_OF.get(type(event))
    return None if of is None else of(event)


def postings_of(event: AccountEvent) -> tuple[Posting, ...]:
    """The journal entry of an event (empty when it changes no balance)."""
    if isinstance(event, Deposited | WithdrawalPaid | FillSettled):
        return event.postings
    return ()
