"""The account aggregate: balances per asset, open orders, pending withdrawals.

Modelling idiom of ``eventsourcing`` (command methods decide and record events; state
changes only in :meth:`Account.apply`; state is a fold of events) on plain ``__slots__``
classes, because the library's ``Aggregate`` costs ~10x our per-command budget
(figures in docs/ledger.md).

    decision = account.handle(command, reference, order_id)   # decide + apply + remember

``handle`` never raises for a bad command: the rejection is an event with a reason code.
A command id seen before returns the original events with ``duplicate=True`` and changes
nothing. Two idempotency windows, two namespaces: ``outcomes`` remembers the client
commands' ids (any text a client chooses), ``settled`` the settlement inputs' ids
(``fill/<trade>/<order>``, ``end/<order>``, ``amend/<order>/<time>``, chosen by the matcher), so neither can shadow
the other.

Identity: a command's ``actor`` (a user id; 0: the system) is checked against the
reference table (:func:`check_actor`): deposits and withdrawal decisions need the admin
role, the others the account's owner (cancels: or an admin); and the requester of a
withdrawal may not approve or reject it (maker/checker, ``Reason.MAKER_CHECKER``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tradex.domain.commands import (
    SETTLEMENT_TYPES,
    AccountInput,
    AmendConfirmed,
    ApproveWithdrawal,
    CancelAllOrders,
    CancelOrder,
    Deposit,
    FillLeg,
    ModifyOrder,
    OrderEnded,
    PlaceOrder,
    RejectWithdrawal,
    RequestWithdrawal,
)
from tradex.domain.errors import DomainError, InvalidRecord
from tradex.domain.events import (
    AccountEvent,
    AmendSettled,
    CancelRequested,
    CommandRejected,
    Deposited,
    FillSettled,
    HoldReleased,
    OrderAccepted,
    OrderAmended,
    OrderRejected,
    WithdrawalPaid,
    WithdrawalReleased,
    WithdrawalRequested,
)
from tradex.domain.journal import CLEARING_ACCOUNT, EXTERNAL_ACCOUNT, FEES_ACCOUNT, Posting
from tradex.domain.orders import AmendOrder, CancelOrderRequest, NewOrder
from tradex.domain.reference import ReferenceData
from tradex.domain.types import (
    INT64_MAX,
    PPM,
    InstrumentKind,
    InstrumentStatus,
    Liquidity,
    Reason,
    Side,
    StpMode,
)
from tradex.domain.units import base_amount, buy_hold_of, ceil_div, fee_step, notional, sell_hold
from tradex.domain.window import forget_oldest

OPEN_ORDERS_MAX = 10_000  # per account; more is refused with OPEN_ORDERS_MAX
PENDING_WITHDRAWALS_MAX = 1_000  # per account; more is refused with OPEN_ORDERS_MAX
# per order: amends forwarded and not confirmed by the engine yet (one it refused stays until
# a later one is confirmed or the order ends); more is refused with OPEN_ORDERS_MAX
PENDING_AMENDS_MAX = 100
COMMAND_IDS_MAX = 10_000  # per account and window: the idempotency windows (oldest first out)
# Orders one CancelAllOrders record cancels (2 outputs each, + 1 continuation: an input's
# outputs are numbered in 8 bits, and index 255 is the dead letter's).
CANCEL_ALL_CHUNK = 100
# The inputs whose decision is exactly one event, accepted or rejected (a duplicate: none):
# a reader waiting for such a command's outcome has it all at its first event. The others
# (CancelAllOrders: one CancelRequested per order) end where the next command's events
# begin, or at the end of the log.
ONE_EVENT_INPUTS = frozenset((
    PlaceOrder, CancelOrder, ModifyOrder, Deposit, RequestWithdrawal, ApproveWithdrawal,
    RejectWithdrawal, FillLeg, OrderEnded, AmendConfirmed,
))  # fmt: skip
ADMIN = "admin"
# What a settlement input's rejection names as its command type (its id is in ``settled``).
SETTLEMENT_TYPE_NAMES = frozenset(cls.__name__ for cls in SETTLEMENT_TYPES)

# Hot path: a module global is ~5x cheaper to read than an enum member through its class.
_BUY = Side.BUY
_SPOT = InstrumentKind.SPOT
_TRADING = InstrumentStatus.TRADING
_new = tuple.__new__  # builds a NamedTuple from a tuple of all its fields, in order


class Decision(NamedTuple):
    """What one input produced. ``duplicate``: the original events, nothing to write."""

    events: tuple[AccountEvent, ...]
    # to order-requests; a CancelAllOrders here is a continuation, to account-commands
    order_requests: tuple[NewOrder | CancelOrderRequest | AmendOrder | CancelAllOrders, ...]
    duplicate: bool


class OpenOrder:
    """An accepted order that has not ended; its hold is ``hold_remaining`` of ``hold_asset``."""

    __slots__ = (
        "amended_ns",
        "amends",
        "base_asset",
        "cancel_requested",
        "fee_micro",
        "filled_qty",
        "hold_asset",
        "hold_remaining",
        "instrument_id",
        "lot_size",
        "maker_fee_ppm",
        "order_id",
        "price",
        "qty",
        "quote_asset",
        "side",
        "stp_mode",
        "taker_fee_ppm",
        "tick_size",
    )

    def __init__(self, accepted: OrderAccepted) -> None:
        # One unpack instead of 14 field reads (OrderAccepted's field order; hot path). ``price``
        # and ``qty`` are the order's bounds: an amend may widen them (OrderAmended).
        (_, _, _, self.order_id, self.instrument_id, self.side, _, self.price, self.qty, _,
         self.stp_mode, self.base_asset, self.quote_asset, self.tick_size, self.lot_size,
         self.maker_fee_ppm, self.taker_fee_ppm, self.hold_asset, self.hold_remaining,
         _) = accepted  # fmt: skip
        self.filled_qty = 0
        self.fee_micro = 0
        self.cancel_requested = False
        # the time of its last amend (0: never): its settlements are stamped no earlier, so
        # a fold of the events up to any time sees the amend before the hold it closes
        self.amended_ns = 0
        # the amends forwarded and not yet confirmed by the engine, oldest first:
        # (time, new_price, new_qty) as forwarded (0 keeps a field)
        self.amends: tuple[tuple[int, int, int], ...] = ()

    def to_snapshot(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields["amends"] = [list(amend) for amend in self.amends]
        return fields

    @classmethod
    def from_snapshot(cls, fields: dict[str, Any]) -> OpenOrder:
        order = cls.__new__(cls)
        order.stp_mode = StpMode.NONE  # snapshots before the mode was kept
        for name, value in fields.items():
            setattr(order, name, value)
        pending: list[list[int]] = fields.get("amends", [])  # none before amends were confirmed
        order.amends = tuple((time, price, qty) for time, price, qty in pending)
        return order

    def bounds(
        self, price: int, qty: int, amends: tuple[tuple[int, int, int], ...]
    ) -> tuple[int, int]:
        """The order's bounds when the engine's terms are ``price``/``qty`` and ``amends``
        may still apply: a buy's highest price (a sell's lowest), the largest total (a
        pending amend's kept field resolves to one of these terms)."""
        buy = self.side == _BUY
        for _, new_price, new_qty in amends:
            if new_price and ((new_price > price) if buy else (new_price < price)):
                price = new_price
            if new_qty > qty:
                qty = new_qty
        return price, qty

    def hold_needed(self, price_bound: int, qty_bound: int) -> int:
        """The most the order can still consume of its hold when fills stay within the
        bounds: a sell, the base of its unfilled lots; a buy, their notional at the price
        bound plus the fee its cumulative ``fee_micro`` can still add at the higher rate
        (tradex.domain.units: every fill path within the bounds consumes at most this)."""
        left = qty_bound - self.filled_qty
        if self.side != _BUY:
            return sell_hold(left, self.lot_size)
        n = notional(price_bound, left, self.tick_size)
        rate = self.maker_fee_ppm if self.maker_fee_ppm > self.taker_fee_ppm else self.taker_fee_ppm
        before = self.fee_micro
        return n + ceil_div(before + n * rate, PPM) - ceil_div(before, PPM)


class Account:
    """One account's state. Single writer: the processor owning the account's partition."""

    __slots__ = (
        "account_id", "available", "held", "orders", "outcomes", "settled", "version",
        "withdrawals",
    )  # fmt: skip

    def __init__(self, account_id: int) -> None:
        assert account_id > 0, "user accounts have positive ids"
        self.account_id = account_id
        self.available: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.orders: dict[int, OpenOrder] = {}
        self.withdrawals: dict[str, WithdrawalRequested] = {}
        self.outcomes: dict[str, tuple[AccountEvent, ...]] = {}  # client command ids
        self.settled: dict[str, tuple[AccountEvent, ...]] = {}  # settlement input ids
        self.version = 0  # events applied

    # -- handle = decide + apply ------------------------------------------------------------

    def handle(
        self,
        command: AccountInput,
        reference: ReferenceData,
        order_id: int,
        validated: bool = False,
    ) -> Decision:
        """Decide ``command`` (``order_id``: the id a PlaceOrder gets), apply the events.

        ``validated``: the caller has already run ``command.validate()`` (the codec does
        when it decodes a record), so it is not run a second time. (Positional too: the
        processor's hot call passes it so, which Python calls faster than a keyword.)"""
        assert command.account_id == self.account_id, "command routed to the wrong account"
        kind = type(command)
        if kind is FillLeg or kind is OrderEnded or kind is AmendConfirmed:
            original = self.settled.get(command.command_id)
        elif kind is CancelAllOrders and command.continuation:  # type: ignore[union-attr]
            original = None  # written once by its first chunk, in the same transaction
        else:
            original = self.outcomes.get(command.command_id)
        if original is not None:
            return _new(Decision, (original, (), True))
        try:
            if not validated:
                command.validate()
            events, requests = self.decide(command, reference, order_id)
        except InvalidRecord as exc:
            rejected = self._rejected(command, order_id, Reason.INVALID_COMMAND, str(exc))
            events, requests = (rejected,), ()
        except DomainError as exc:
            events, requests = (self._rejected(command, order_id, exc.reason, exc.detail),), ()
        for event in events:
            self.apply(event)
        return _new(Decision, (events, requests, False))

    def _rejected(
        self, command: AccountInput, order_id: int, reason: Reason, detail: str
    ) -> AccountEvent:
        """The rejection of ``command``; a PlaceOrder's names the ``order_id`` it would have
        had, so its client can follow it like an accepted order's."""
        actor = getattr(command, "actor", 0)
        if isinstance(command, PlaceOrder):
            c = command
            assert order_id >= 0, "order ids are (partition << 40) | offset"
            return OrderRejected(
                c.command_id, c.account_id, c.event_time_ns, c.instrument_id, c.side, c.kind,
                c.price, c.qty, reason, detail, order_id, actor,
            )  # fmt: skip
        return CommandRejected(
            command.command_id, self.account_id, command.event_time_ns,
            type(command).__name__, reason, detail, actor,
        )  # fmt: skip

    def decide(
        self, command: AccountInput, reference: ReferenceData, order_id: int
    ) -> tuple[
        tuple[AccountEvent, ...],
        tuple[NewOrder | CancelOrderRequest | AmendOrder | CancelAllOrders, ...],
    ]:
        """Pure decision: the events and order requests, or a DomainError. Changes nothing."""
        kind = type(command)
        if kind is FillLeg:
            return (self._settle_fill(command),), ()  # type: ignore[arg-type]
        if kind is OrderEnded:
            return (self._end_order(command),), ()  # type: ignore[arg-type]
        if kind is AmendConfirmed:
            return (self._confirm_amend(command),), ()  # type: ignore[arg-type]
        if self.account_id not in reference.accounts:
            raise DomainError(Reason.UNKNOWN_ACCOUNT, f"account {self.account_id} is not open")
        if command.actor:  # type: ignore[union-attr]
            check_actor(command, reference)
        if kind is PlaceOrder:
            return self._place_order(command, reference, order_id)  # type: ignore[arg-type]
        if kind is CancelOrder:
            return self._cancel_order(command)  # type: ignore[arg-type]
        if kind is Deposit:
            return (self._deposit(command, reference),), ()  # type: ignore[arg-type]
        if kind is RequestWithdrawal:
            return (self._request_withdrawal(command, reference),), ()  # type: ignore[arg-type]
        if kind is ApproveWithdrawal or kind is RejectWithdrawal:
            return (self._finish_withdrawal(command),), ()  # type: ignore[arg-type]
        if kind is ModifyOrder:
            return self._modify_order(command, reference)  # type: ignore[arg-type]
        if kind is CancelAllOrders:
            return self._cancel_all(command)  # type: ignore[arg-type]
        raise InvalidRecord(f"not an account command: {kind.__name__}")

    # -- command methods --------------------------------------------------------------------

    def _deposit(self, c: Deposit, reference: ReferenceData) -> Deposited:
        if c.amount <= 0:
            raise DomainError(Reason.AMOUNT_NOT_POSITIVE, f"deposit of {c.amount}")
        if c.asset not in reference.assets:
            raise DomainError(Reason.UNKNOWN_ASSET, c.asset)
        total = self.available.get(c.asset, 0) + self.held.get(c.asset, 0)
        if total + c.amount > INT64_MAX:
            raise DomainError(Reason.AMOUNT_OVERFLOW, "balance would exceed int64")
        # tuple.__new__: a NamedTuple built without its Python-level __new__ (hot path)
        postings = (
            _new(Posting, (self.account_id, c.asset, c.amount)),
            _new(Posting, (EXTERNAL_ACCOUNT, c.asset, -c.amount)),
        )
        return _new(Deposited, (
            c.command_id, self.account_id, c.event_time_ns, c.asset, c.amount, postings, c.actor,
        ))  # fmt: skip

    def _request_withdrawal(
        self, c: RequestWithdrawal, reference: ReferenceData
    ) -> WithdrawalRequested:
        if c.command_id in self.withdrawals:
            # its id left the idempotency window while it is still pending (a re-sent
            # request): a second hold under the same id would lose the first one
            raise DomainError(Reason.ALREADY_EXISTS, f"withdrawal {c.command_id} is pending")
        if c.amount <= 0:
            raise DomainError(Reason.AMOUNT_NOT_POSITIVE, f"withdrawal of {c.amount}")
        if c.asset not in reference.assets:
            raise DomainError(Reason.UNKNOWN_ASSET, c.asset)
        available = self.available.get(c.asset, 0)
        if available < c.amount:
            raise DomainError(Reason.INSUFFICIENT_FUNDS, f"{available} {c.asset} available")
        if len(self.withdrawals) >= PENDING_WITHDRAWALS_MAX:
            raise DomainError(Reason.OPEN_ORDERS_MAX, "too many pending withdrawals")
        return WithdrawalRequested(
            c.command_id, self.account_id, c.event_time_ns, c.command_id, c.asset, c.amount,
            c.actor,
        )  # fmt: skip

    def _finish_withdrawal(
        self, c: ApproveWithdrawal | RejectWithdrawal
    ) -> WithdrawalPaid | WithdrawalReleased:
        pending = self.withdrawals.get(c.withdrawal_id)
        if pending is None:
            raise DomainError(Reason.UNKNOWN_WITHDRAWAL, c.withdrawal_id)
        if c.actor and c.actor == pending.actor:
            raise DomainError(
                Reason.MAKER_CHECKER,
                f"user {c.actor} requested withdrawal {c.withdrawal_id}: another admin decides it",
            )
        asset, amount = pending.asset, pending.amount
        if isinstance(c, RejectWithdrawal):
            return WithdrawalReleased(
                c.command_id, self.account_id, c.event_time_ns, c.withdrawal_id, asset, amount,
                c.actor,
            )  # fmt: skip
        postings = (
            Posting(self.account_id, asset, -amount),
            Posting(EXTERNAL_ACCOUNT, asset, amount),
        )
        return WithdrawalPaid(
            c.command_id, self.account_id, c.event_time_ns, c.withdrawal_id, asset, amount,
            postings, c.actor,
        )  # fmt: skip

    def _place_order(
        self, c: PlaceOrder, reference: ReferenceData, order_id: int
    ) -> tuple[tuple[AccountEvent, ...], tuple[NewOrder, ...]]:
        # Field order as declared by PlaceOrder and Instrument: one unpack each instead of a
        # dozen field reads (hot path).
        (command_id, account_id, t, instrument_id, side, kind, price, qty, protection, stp,
         actor) = c  # fmt: skip
        instrument = reference.instruments.get(instrument_id)
        if instrument is None:
            raise DomainError(Reason.UNKNOWN_INSTRUMENT, f"instrument {instrument_id}")
        (_, symbol, instrument_kind, base, quote, tick_size, lot_size, min_notional, _,
         maker_ppm, taker_ppm, status) = instrument  # fmt: skip
        if instrument_kind != _SPOT:
            raise DomainError(Reason.INSTRUMENT_KIND_UNSUPPORTED, instrument_kind)
        if status != _TRADING:
            raise DomainError(Reason.INSTRUMENT_HALTED, symbol)
        if price <= 0:
            raise DomainError(Reason.PRICE_NOT_POSITIVE, f"price {price} ticks")
        if qty <= 0:
            raise DomainError(Reason.QTY_NOT_POSITIVE, f"qty {qty} lots")
        if price > INT64_MAX or qty > INT64_MAX:
            raise DomainError(Reason.AMOUNT_OVERFLOW, "price or qty exceeds int64")
        order_notional = notional(price, qty, tick_size)
        if order_notional < min_notional:
            raise DomainError(Reason.BELOW_MIN_NOTIONAL, f"{order_notional} < {min_notional}")
        if side == _BUY:
            hold_asset = quote
            hold = buy_hold_of(order_notional, maker_ppm, taker_ppm)
        else:
            hold_asset = base
            hold = sell_hold(qty, lot_size)
        if hold > INT64_MAX or order_notional > INT64_MAX:
            raise DomainError(Reason.AMOUNT_OVERFLOW, "order amount exceeds int64")
        orders = self.orders
        if len(orders) >= OPEN_ORDERS_MAX:
            raise DomainError(Reason.OPEN_ORDERS_MAX, f"{OPEN_ORDERS_MAX} open orders")
        if order_id in orders:
            raise DomainError(Reason.ALREADY_EXISTS, f"order {order_id}")
        available = self.available.get(hold_asset, 0)
        if available < hold:
            raise DomainError(
                Reason.INSUFFICIENT_FUNDS, f"{available} {hold_asset} available, {hold} needed"
            )
        # Field order as declared by OrderAccepted / NewOrder (tuple.__new__: no __new__ frame).
        accepted: OrderAccepted = _new(OrderAccepted, (
            command_id, account_id, t, order_id, instrument_id, side, kind, price, qty,
            protection, stp, base, quote, tick_size, lot_size, maker_ppm, taker_ppm, hold_asset,
            hold, actor,
        ))  # fmt: skip
        request: NewOrder = _new(NewOrder, (
            order_id, account_id, instrument_id, side, kind, price, qty, protection, stp,
            maker_ppm, taker_ppm, t,
        ))  # fmt: skip
        return (accepted,), (request,)

    def _cancel_order(
        self, c: CancelOrder
    ) -> tuple[tuple[AccountEvent, ...], tuple[CancelOrderRequest, ...]]:
        order = self.orders.get(c.order_id)
        if order is None:
            raise DomainError(Reason.UNKNOWN_ORDER, f"order {c.order_id} is not open here")
        if order.cancel_requested:
            raise DomainError(Reason.CANCEL_ALREADY_REQUESTED, f"order {c.order_id}")
        t = c.event_time_ns
        event = CancelRequested(
            c.command_id, self.account_id, t, c.order_id, order.instrument_id, c.actor
        )
        return (event,), (CancelOrderRequest(c.order_id, self.account_id, order.instrument_id, t),)

    def _modify_order(
        self, c: ModifyOrder, reference: ReferenceData
    ) -> tuple[tuple[AccountEvent, ...], tuple[AmendOrder, ...]]:
        """Top the hold up to the order's new bounds (docs/ledger.md, "Amend"), forward the
        engine's AmendOrder (0 keeps a field: the engine resolves it on its live order)."""
        if c.new_price == 0 and c.new_qty == 0:
            raise InvalidRecord("an amend changes new_price or new_qty (both are 0)")
        order = self.orders.get(c.order_id)
        if order is None:
            raise DomainError(Reason.UNKNOWN_ORDER, f"order {c.order_id} is not open here")
        if order.cancel_requested:
            raise DomainError(Reason.CANCEL_ALREADY_REQUESTED, f"order {c.order_id}")
        if len(order.amends) >= PENDING_AMENDS_MAX:
            raise DomainError(
                Reason.OPEN_ORDERS_MAX, f"{len(order.amends)} amends of the order await the engine"
            )
        instrument = reference.instruments.get(order.instrument_id)
        if instrument is None:
            raise DomainError(Reason.UNKNOWN_INSTRUMENT, f"instrument {order.instrument_id}")
        if instrument.status != _TRADING:
            raise DomainError(Reason.INSTRUMENT_HALTED, instrument.symbol)
        if c.new_price > INT64_MAX or c.new_qty > INT64_MAX:
            raise DomainError(Reason.AMOUNT_OVERFLOW, "price or qty exceeds int64")
        price = c.new_price or order.price
        qty = c.new_qty or order.qty
        if qty <= order.filled_qty:
            raise DomainError(
                Reason.AMEND_QTY_TOO_LOW, f"new total {qty} lots <= {order.filled_qty} filled"
            )
        tick, lot = order.tick_size, order.lot_size
        if notional(price, qty, tick) < instrument.min_notional:
            raise DomainError(
                Reason.BELOW_MIN_NOTIONAL,
                f"{notional(price, qty, tick)} < {instrument.min_notional}",
            )
        buy = order.side == _BUY
        price_bound = max(order.price, price) if buy else min(order.price, price)
        qty_bound = max(order.qty, qty)
        needed = order.hold_needed(price_bound, qty_bound)
        if (
            needed > INT64_MAX
            or (buy and notional(price_bound, qty_bound, tick) > INT64_MAX)
            or sell_hold(qty_bound, lot) > INT64_MAX
        ):
            raise DomainError(Reason.AMOUNT_OVERFLOW, "order amount exceeds int64")
        added = needed - order.hold_remaining if needed > order.hold_remaining else 0
        available = self.available.get(order.hold_asset, 0)
        if available < added:
            raise DomainError(
                Reason.INSUFFICIENT_FUNDS,
                f"{available} {order.hold_asset} available, {added} more needed",
            )
        # strictly later than the order's previous amend: the engine's AmendConfirmed names
        # the amend it answers by this time (the amends of an order reach it in this order)
        t = c.event_time_ns if c.event_time_ns > order.amended_ns else order.amended_ns + 1
        event = OrderAmended(
            c.command_id, self.account_id, t, c.order_id, order.instrument_id, c.new_price,
            c.new_qty, price_bound, qty_bound, order.hold_asset, added, c.actor,
        )  # fmt: skip
        # the order's self-trade prevention goes along: an amend across the book matches it
        request = AmendOrder(c.order_id, self.account_id, order.instrument_id, c.new_price,
                             c.new_qty, t, order.stp_mode)  # fmt: skip
        return (event,), (request,)

    def _cancel_all(
        self, c: CancelAllOrders
    ) -> tuple[tuple[AccountEvent, ...], tuple[CancelOrderRequest | CancelAllOrders, ...]]:
        """A cancel per open order (of the instrument, if one is named) not already being
        cancelled, ascending order id, at most CANCEL_ALL_CHUNK; the rest by a continuation
        (orders placed after the first chunk are not cancelled: ids above its cutoff)."""
        up_to = c.up_to_order_id
        wanted = c.instrument_id
        targets = sorted(
            order_id
            for order_id, order in self.orders.items()
            if not order.cancel_requested
            and (wanted == 0 or order.instrument_id == wanted)
            and order_id > c.after_order_id
            and (up_to == 0 or order_id <= up_to)
        )
        if not targets:
            if c.continuation:
                return (), ()  # the rest ended meanwhile
            where = f" on instrument {wanted}" if wanted else ""
            raise DomainError(Reason.UNKNOWN_ORDER, f"no open orders to cancel{where}")
        if up_to == 0:
            up_to = targets[-1]
        chunk = targets[:CANCEL_ALL_CHUNK]
        t, me, actor = c.event_time_ns, self.account_id, c.actor
        events: list[AccountEvent] = []
        requests: list[CancelOrderRequest | CancelAllOrders] = []
        for order_id in chunk:
            instrument_id = self.orders[order_id].instrument_id
            events.append(CancelRequested(c.command_id, me, t, order_id, instrument_id, actor))
            requests.append(CancelOrderRequest(order_id, me, instrument_id, t))
        if len(targets) > len(chunk):
            requests.append(CancelAllOrders(c.command_id, me, t, wanted, actor, chunk[-1], up_to))
        return tuple(events), tuple(requests)

    def _settle_fill(self, f: FillLeg) -> FillSettled:
        order = self.orders.get(f.order_id)
        if order is None:
            raise DomainError(Reason.UNKNOWN_ORDER, f"fill for order {f.order_id}")
        if f.side != order.side or f.instrument_id != order.instrument_id:
            raise DomainError(Reason.INVALID_FILL, "side or instrument differ from the order")
        if f.qty > order.qty - order.filled_qty:
            raise DomainError(Reason.INVALID_FILL, f"fill of {f.qty} lots overfills the order")
        buy = f.side == Side.BUY
        if (f.price > order.price) if buy else (f.price < order.price):
            raise DomainError(
                Reason.INVALID_FILL, f"price {f.price} beyond the limit {order.price}"
            )
        n = notional(f.price, f.qty, order.tick_size)
        q = base_amount(f.qty, order.lot_size)
        rate = order.maker_fee_ppm if f.liquidity == Liquidity.MAKER else order.taker_fee_ppm
        fee, fee_micro = fee_step(order.fee_micro, n, rate)
        me, base, quote = self.account_id, order.base_asset, order.quote_asset
        if buy:
            consumed = n + fee
            postings = [
                Posting(me, quote, -consumed),
                Posting(CLEARING_ACCOUNT, quote, n),
                Posting(me, base, q),
                Posting(CLEARING_ACCOUNT, base, -q),
            ]
        else:
            consumed = q
            postings = [
                Posting(me, base, -q),
                Posting(CLEARING_ACCOUNT, base, q),
                Posting(me, quote, n - fee),
                Posting(CLEARING_ACCOUNT, quote, -n),
            ]
        if fee:
            postings.append(Posting(FEES_ACCOUNT, quote, fee))
        assert consumed <= order.hold_remaining, (
            "fill consumes more than the hold (fee bound broken)"
        )
        t = f.event_time_ns if f.event_time_ns >= order.amended_ns else order.amended_ns
        return FillSettled(
            f.command_id, me, t, f.order_id, f.trade_id, f.instrument_id, f.side,
            f.liquidity, f.price, f.qty, n, fee, fee_micro, order.hold_asset, consumed,
            tuple(postings),
        )  # fmt: skip

    def _confirm_amend(self, a: AmendConfirmed) -> AmendSettled:
        """Narrow the order's bounds to the engine's terms after the amend (or, amend time
        < 0, after a self-trade prevention decrement) and the amends it has not answered yet;
        release the hold above what the order can still consume (docs/ledger.md, "Amend")."""
        order = self.orders.get(a.order_id)
        if order is None:
            raise DomainError(Reason.UNKNOWN_ORDER, f"amend of order {a.order_id}")
        if a.instrument_id != order.instrument_id:
            raise DomainError(Reason.INVALID_FILL, "amend: instrument differs from the order")
        # A decrement answers no amend: every amend still pending may yet apply. (An amend
        # the engine applied before it was confirmed before it, on the same partition.)
        if a.amend_time_ns >= 0 and all(time != a.amend_time_ns for time, _, _ in order.amends):
            raise DomainError(
                Reason.INVALID_FILL, f"no amend of order {a.order_id} at {a.amend_time_ns} pending"
            )
        buy = order.side == _BUY
        if (a.price > order.price) if buy else (a.price < order.price):
            raise DomainError(Reason.INVALID_FILL, f"amend: price {a.price} beyond {order.price}")
        if not order.filled_qty < a.qty <= order.qty:
            raise DomainError(
                Reason.INVALID_FILL,
                f"amend: total {a.qty} outside ({order.filled_qty} filled, {order.qty}]",
            )
        later = tuple(amend for amend in order.amends if amend[0] > a.amend_time_ns)
        price_bound, qty_bound = order.bounds(a.price, a.qty, later)
        released = order.hold_remaining - order.hold_needed(price_bound, qty_bound)
        assert released >= 0, "the hold covers the order's bounds"
        t = a.event_time_ns if a.event_time_ns >= order.amended_ns else order.amended_ns
        return AmendSettled(
            a.command_id, self.account_id, t, a.order_id, a.instrument_id, a.price, a.qty,
            price_bound, qty_bound, order.hold_asset, released, a.amend_time_ns,
        )  # fmt: skip

    def _end_order(self, e: OrderEnded) -> HoldReleased:
        order = self.orders.get(e.order_id)
        if order is None:
            raise DomainError(Reason.UNKNOWN_ORDER, f"end of order {e.order_id}")
        t = e.event_time_ns if e.event_time_ns >= order.amended_ns else order.amended_ns
        return HoldReleased(
            e.command_id, self.account_id, t, e.order_id, order.hold_asset,
            order.hold_remaining, e.reason,
        )  # fmt: skip

    # -- apply: the only place state changes -------------------------------------------------

    def apply(self, event: AccountEvent) -> None:
        """Fold one event (own decision or replay from ``account-events``)."""
        assert event.account_id == self.account_id, "event of another account"
        kind = type(event)
        available, held = self.available, self.held
        if kind is OrderAccepted:  # the most common event first
            order = OpenOrder(event)  # type: ignore[arg-type]
            asset, amount = order.hold_asset, order.hold_remaining  # slots: cheaper reads
            left = available.get(asset, 0) - amount  # _hold, inlined
            assert left >= 0, "hold exceeds available"
            available[asset] = left
            held[asset] = held.get(asset, 0) + amount
            self.orders[order.order_id] = order
        elif kind is Deposited:
            available[event.asset] = available.get(event.asset, 0) + event.amount  # type: ignore[union-attr]
        elif kind is WithdrawalRequested:
            self._hold(event.asset, event.amount)  # type: ignore[union-attr]
            self.withdrawals[event.withdrawal_id] = event  # type: ignore[union-attr,assignment]
        elif kind is WithdrawalPaid or kind is WithdrawalReleased:
            pending = self.withdrawals.pop(event.withdrawal_id)  # type: ignore[union-attr]
            assert pending.amount == event.amount, "withdrawal amount differs from its request"  # type: ignore[union-attr]
            held[pending.asset] -= pending.amount
            assert held[pending.asset] >= 0, "held went negative"
            if kind is WithdrawalReleased:
                available[pending.asset] += pending.amount
        elif kind is FillSettled:
            self._apply_fill(event)  # type: ignore[arg-type]
        elif kind is HoldReleased:
            order = self.orders.pop(event.order_id)  # type: ignore[union-attr]
            assert order.hold_remaining == event.amount, "release differs from the hold left"  # type: ignore[union-attr]
            held[order.hold_asset] -= order.hold_remaining
            available[order.hold_asset] += order.hold_remaining
            assert held[order.hold_asset] >= 0, "held went negative"
        elif kind is CancelRequested:
            self.orders[event.order_id].cancel_requested = True  # type: ignore[union-attr]
        elif kind is OrderAmended:
            self._apply_amend(event)  # type: ignore[arg-type]
        elif kind is AmendSettled:
            self._apply_amend_settled(event)  # type: ignore[arg-type]
        else:
            assert kind is OrderRejected or kind is CommandRejected, f"not an account event: {kind}"
        self.version += 1
        command_id = event.command_id
        if (
            kind is FillSettled
            or kind is HoldReleased
            or kind is AmendSettled
            or (kind is CommandRejected and event.command_type in SETTLEMENT_TYPE_NAMES)  # type: ignore[union-attr]
        ):
            settled = self.settled
            previous = settled.get(command_id)
            if previous is not None:
                settled[command_id] = (*previous, event)
            else:
                settled[command_id] = (event,)
                if len(settled) > COMMAND_IDS_MAX:
                    self.settled = forget_oldest(settled)
            return
        outcomes = self.outcomes
        previous = outcomes.get(command_id)
        if previous is not None:  # a command with several events
            outcomes[command_id] = (*previous, event)
        else:
            outcomes[command_id] = (event,)
            if len(outcomes) > COMMAND_IDS_MAX:
                self.outcomes = forget_oldest(outcomes)

    def _apply_amend(self, event: OrderAmended) -> None:
        order = self.orders[event.order_id]
        assert order.hold_asset == event.hold_asset, "an amend of another hold asset"
        order.price = event.price_bound
        order.qty = event.qty_bound
        order.amended_ns = max(order.amended_ns, event.event_time_ns)
        order.amends = (*order.amends, (event.event_time_ns, event.new_price, event.new_qty))
        order.hold_remaining += event.hold_added
        self._hold(event.hold_asset, event.hold_added)

    def _apply_amend_settled(self, event: AmendSettled) -> None:
        order = self.orders[event.order_id]
        assert order.hold_asset == event.hold_asset, "an amend of another hold asset"
        order.price = event.price_bound
        order.qty = event.qty_bound
        order.amends = tuple(amend for amend in order.amends if amend[0] > event.amend_time_ns)
        order.hold_remaining -= event.hold_released
        assert order.hold_remaining >= 0, "hold of the order went negative"
        self.held[event.hold_asset] -= event.hold_released
        self.available[event.hold_asset] += event.hold_released
        assert self.held[event.hold_asset] >= 0, "held went negative"

    def _hold(self, asset: str, amount: int) -> None:
        available = self.available.get(asset, 0) - amount
        assert available >= 0, "hold exceeds available"
        self.available[asset] = available
        self.held[asset] = self.held.get(asset, 0) + amount

    def _apply_fill(self, event: FillSettled) -> None:
        order = self.orders[event.order_id]
        order.filled_qty += event.qty
        order.fee_micro = event.fee_micro
        order.hold_remaining -= event.hold_consumed
        assert order.filled_qty <= order.qty, "order overfilled"
        assert order.hold_remaining >= 0, "hold of the order went negative"
        held, available, me = self.held, self.available, self.account_id
        held[event.hold_asset] -= event.hold_consumed
        for posting in event.postings:
            if posting.account_id == me:
                delta = posting.delta
                if posting.asset == event.hold_asset:
                    delta += event.hold_consumed  # the held part was already taken
                available[posting.asset] = available.get(posting.asset, 0) + delta
        assert held[event.hold_asset] >= 0, "held went negative"

    # -- checks and snapshots ----------------------------------------------------------------

    def validate_internal_state(self) -> None:
        """Assert the invariants: balances >= 0, held == Σ open holds per asset."""
        holds: dict[str, int] = {}
        for order in self.orders.values():
            assert order.hold_remaining >= 0, f"order {order.order_id} hold < 0"
            holds[order.hold_asset] = holds.get(order.hold_asset, 0) + order.hold_remaining
        for withdrawal in self.withdrawals.values():
            holds[withdrawal.asset] = holds.get(withdrawal.asset, 0) + withdrawal.amount
        for asset, amount in self.available.items():
            assert amount >= 0, f"available {asset} < 0"
        for asset, amount in self.held.items():
            assert amount >= 0, f"held {asset} < 0"
            assert amount == holds.get(asset, 0), f"held {asset} != sum of open holds"
        for asset, amount in holds.items():
            assert self.held.get(asset, 0) == amount, f"open holds of {asset} not in held"

    def balances(self) -> dict[str, tuple[int, int]]:
        """asset -> (available, held)."""
        assets = sorted(self.available.keys() | self.held.keys())
        return {a: (self.available.get(a, 0), self.held.get(a, 0)) for a in assets}


def check_actor(command: AccountInput, reference: ReferenceData) -> None:
    """Raise DomainError(FORBIDDEN) unless the command's (non-zero) actor may send it:
    deposits and withdrawal decisions need the admin role; the other commands, the
    account's owner (cancels: or an admin)."""
    actor = command.actor  # type: ignore[union-attr]
    kind = type(command)
    user = reference.users.get(actor)
    if user is None:
        raise DomainError(Reason.FORBIDDEN, f"actor {actor} is not a registered user")
    admin = user.has_role(ADMIN)
    if kind is Deposit or kind is ApproveWithdrawal or kind is RejectWithdrawal:
        if not admin:
            raise DomainError(Reason.FORBIDDEN, f"{kind.__name__} needs the admin role")
        return
    account = reference.accounts.get(command.account_id)
    if account is not None and account.user_id == actor:
        return
    if admin and (kind is CancelOrder or kind is CancelAllOrders):
        return
    raise DomainError(Reason.FORBIDDEN, f"user {actor} does not own account {command.account_id}")
