from __future__ import annotations

import json

from tests.market import BTC_USD, T0
from tradex.domain import (
    CLEARING_ACCOUNT,
    COMMAND_IDS_MAX,
    EXTERNAL_ACCOUNT,
    FEES_ACCOUNT,
    AccountBook,
    ApproveWithdrawal,
    CancelOrder,
    CancelOrderRequest,
    CancelRequested,
    CommandRejected,
    Deposit,
    Deposited,
    EndReason,
    FillLeg,
    FillSettled,
    HaltInstrument,
    HoldReleased,
    Ledger,
    Liquidity,
    NewOrder,
    OrderAccepted,
    OrderEnded,
    OrderKind,
    OrderRejected,
    PlaceOrder,
    Posting,
    Reason,
    ReferenceData,
    RejectWithdrawal,
    RequestWithdrawal,
    Side,
    WithdrawalPaid,
    WithdrawalReleased,
    WithdrawalRequested,
)
from tradex.domain.commands import AccountInput


def place(
    cid: str, account: int, side: Side, price: int, qty: int, kind: OrderKind = OrderKind.GTC
) -> PlaceOrder:
    return PlaceOrder(cid, account, T0 + 1, BTC_USD, side, kind, price, qty)


def test_deposit_posts_against_external(book: AccountBook) -> None:
    decision = book.handle(Deposit("d1", 1, T0, "USD", 10_000))
    (event,) = decision.events
    assert isinstance(event, Deposited)
    assert event.postings == (Posting(1, "USD", 10_000), Posting(EXTERNAL_ACCOUNT, "USD", -10_000))
    assert book.account(1).balances() == {"USD": (10_000, 0)}
    assert not decision.duplicate


def test_duplicate_command_returns_original_and_changes_nothing(book: AccountBook) -> None:
    first = book.handle(Deposit("d1", 1, T0, "USD", 10_000))
    again = book.handle(Deposit("d1", 1, T0 + 5, "USD", 99))
    assert again.duplicate
    assert again.events == first.events
    assert again.order_requests == ()
    assert book.account(1).balances() == {"USD": (10_000, 0)}


def test_bad_deposits_are_rejected_with_reasons(book: AccountBook) -> None:
    cases = [
        (Deposit("d1", 1, T0, "USD", 0), Reason.AMOUNT_NOT_POSITIVE),
        (Deposit("d2", 1, T0, "EUR", 5), Reason.UNKNOWN_ASSET),
        (Deposit("d3", 99, T0, "USD", 5), Reason.UNKNOWN_ACCOUNT),
        (Deposit("", 1, T0, "USD", 5), Reason.INVALID_COMMAND),
        (Deposit("d4", 1, T0, "USD", 1 << 63), Reason.AMOUNT_OVERFLOW),
        (Deposit("d5", -3, T0, "USD", 5), Reason.UNKNOWN_ACCOUNT),
    ]
    for command, reason in cases:
        (event,) = book.handle(command).events
        assert isinstance(event, CommandRejected)
        assert event.reason == reason, command
    assert book.account(1).balances() == {}


def test_withdrawal_held_then_paid_or_released(book: AccountBook) -> None:
    book.handle(Deposit("d1", 1, T0, "USD", 1_000))
    (requested,) = book.handle(RequestWithdrawal("w1", 1, T0, "USD", 600)).events
    assert isinstance(requested, WithdrawalRequested)
    assert book.account(1).balances() == {"USD": (400, 600)}
    (too_much,) = book.handle(RequestWithdrawal("w2", 1, T0, "USD", 401)).events
    assert isinstance(too_much, CommandRejected)
    assert too_much.reason == Reason.INSUFFICIENT_FUNDS
    (paid,) = book.handle(ApproveWithdrawal("a1", 1, T0, "w1")).events
    assert isinstance(paid, WithdrawalPaid)
    assert paid.postings == (Posting(1, "USD", -600), Posting(EXTERNAL_ACCOUNT, "USD", 600))
    assert book.account(1).balances() == {"USD": (400, 0)}
    book.handle(RequestWithdrawal("w3", 1, T0, "USD", 400))
    (released,) = book.handle(RejectWithdrawal("r1", 1, T0, "w3")).events
    assert isinstance(released, WithdrawalReleased)
    assert book.account(1).balances() == {"USD": (400, 0)}
    (unknown,) = book.handle(ApproveWithdrawal("a2", 1, T0, "w3")).events
    assert isinstance(unknown, CommandRejected)
    assert unknown.reason == Reason.UNKNOWN_WITHDRAWAL


def test_buy_holds_notional_plus_max_fee_and_forwards(book: AccountBook) -> None:
    book.handle(Deposit("d1", 1, T0, "USD", 1_000_000))
    decision = book.handle(place("o1", 1, Side.BUY, 50_000, 3), order_id=77)
    (accepted,) = decision.events
    assert isinstance(accepted, OrderAccepted)
    # notional 150_000 cents; taker 0.2 % -> fee 300
    assert accepted.hold_amount == 150_300
    assert accepted.hold_asset == "USD"
    (request,) = decision.order_requests
    assert isinstance(request, NewOrder)
    assert request.order_id == 77
    assert (request.maker_fee_ppm, request.taker_fee_ppm) == (1_000, 2_000)
    assert book.account(1).balances() == {"USD": (1_000_000 - 150_300, 150_300)}


def test_sell_holds_base(book: AccountBook) -> None:
    book.handle(Deposit("d1", 2, T0, "BTC", 5_000))
    (accepted,) = book.handle(place("o1", 2, Side.SELL, 50_000, 5), order_id=1).events
    assert isinstance(accepted, OrderAccepted)
    assert (accepted.hold_asset, accepted.hold_amount) == ("BTC", 5_000)
    (rejected,) = book.handle(place("o2", 2, Side.SELL, 50_000, 1), order_id=2).events
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == Reason.INSUFFICIENT_FUNDS
    assert rejected.order_id == 2  # the id it would have had


def test_order_rule_rejections(book: AccountBook) -> None:
    book.handle(Deposit("d1", 1, T0, "USD", 1_000_000))
    cases = [
        (PlaceOrder("x1", 1, T0, 9, Side.BUY, OrderKind.GTC, 10, 1), Reason.UNKNOWN_INSTRUMENT),
        (place("x2", 1, Side.BUY, 0, 1), Reason.PRICE_NOT_POSITIVE),
        (place("x3", 1, Side.BUY, 10, 0), Reason.QTY_NOT_POSITIVE),
        (place("x4", 1, Side.BUY, 10, 5), Reason.BELOW_MIN_NOTIONAL),  # 50 < 100
        (place("x5", 1, Side.BUY, 1 << 40, 1 << 30), Reason.AMOUNT_OVERFLOW),
        (place("x6", 1, Side.BUY, 1_000_000, 10), Reason.INSUFFICIENT_FUNDS),
        (
            PlaceOrder("x7", 1, T0, BTC_USD, "SIDEWAYS", OrderKind.GTC, 10, 10),
            Reason.INVALID_COMMAND,
        ),  # type: ignore[arg-type]
    ]
    for order_id, (command, reason) in enumerate(cases, start=5):
        decision = book.handle(command, order_id=order_id)
        (event,) = decision.events
        assert isinstance(event, OrderRejected)
        assert event.reason == reason, command
        assert event.order_id == order_id, command  # also when validate() refused it
        assert decision.order_requests == ()
    assert book.account(1).balances() == {"USD": (1_000_000, 0)}


def test_halted_instrument_rejects_orders(book: AccountBook) -> None:
    book.reference.decide(HaltInstrument("h1", T0, BTC_USD))
    book.handle(Deposit("d1", 1, T0, "USD", 1_000_000))
    (event,) = book.handle(place("o1", 1, Side.BUY, 100, 10), order_id=1).events
    assert isinstance(event, OrderRejected)
    assert event.reason == Reason.INSTRUMENT_HALTED


def test_cancel_forwards_once_and_only_for_open_orders(book: AccountBook) -> None:
    book.handle(Deposit("d1", 1, T0, "USD", 1_000_000))
    book.handle(place("o1", 1, Side.BUY, 100, 10), order_id=42)
    decision = book.handle(CancelOrder("c1", 1, T0, 42))
    assert isinstance(decision.events[0], CancelRequested)
    assert decision.order_requests == (CancelOrderRequest(42, 1, BTC_USD, T0),)
    again = book.handle(CancelOrder("c2", 1, T0, 42)).events[0]
    assert isinstance(again, CommandRejected)
    assert again.reason == Reason.CANCEL_ALREADY_REQUESTED
    unknown = book.handle(CancelOrder("c3", 1, T0, 43)).events[0]
    assert isinstance(unknown, CommandRejected)
    assert unknown.reason == Reason.UNKNOWN_ORDER
    # another account cannot cancel it
    other = book.handle(CancelOrder("c4", 2, T0, 42)).events[0]
    assert isinstance(other, CommandRejected)
    assert other.reason == Reason.UNKNOWN_ORDER


def test_trade_settles_both_legs_and_clearing_nets(book: AccountBook) -> None:
    ledger = Ledger()
    inputs = [
        (Deposit("d1", 1, T0, "USD", 1_000_000), 0),
        (Deposit("d2", 2, T0, "BTC", 10_000), 0),
        (place("buy", 1, Side.BUY, 50_000, 3), 10),
        (place("sell", 2, Side.SELL, 49_000, 3), 11),
        # sell rested (maker) at 49_000; the buy took it at the maker's price
        (FillLeg(1, 10, 900, BTC_USD, Side.BUY, 49_000, 3, Liquidity.TAKER, T0 + 2), 0),
        (FillLeg(2, 11, 900, BTC_USD, Side.SELL, 49_000, 3, Liquidity.MAKER, T0 + 2), 0),
        (OrderEnded(1, 10, BTC_USD, EndReason.FILLED, T0 + 2), 0),
        (OrderEnded(2, 11, BTC_USD, EndReason.FILLED, T0 + 2), 0),
    ]
    events = []
    for command, oid in inputs:
        events += book.handle(command, order_id=oid).events
    for event in events:
        ledger.apply(event)
    fills = [e for e in events if isinstance(e, FillSettled)]
    assert [f.fee for f in fills] == [294, 147]  # 147_000 * 0.2 %, * 0.1 %
    buyer_quote = 1_000_000 - 147_000 - 294
    assert book.account(1).balances() == {"BTC": (3_000, 0), "USD": (buyer_quote, 0)}
    assert book.account(2).balances() == {"BTC": (7_000, 0), "USD": (147_000 - 147, 0)}
    assert ledger.balances[(FEES_ACCOUNT, "USD")] == 441
    assert ledger.balances.get((CLEARING_ACCOUNT, "USD")) == 0
    assert ledger.balances.get((CLEARING_ACCOUNT, "BTC")) == 0
    released = [e for e in events if isinstance(e, HoldReleased)]
    assert [r.amount for r in released] == [150_300 - 147_294, 0]
    assert ledger.violations() == []
    book.validate_internal_state()


def test_fee_is_cumulative_so_many_fills_never_exceed_the_hold(book: AccountBook) -> None:
    book.handle(Deposit("d1", 1, T0, "USD", 10_000_000))
    # notional 1 cent per lot: per-fill ceil would charge 1 cent fee on every fill
    book.handle(place("buy", 1, Side.BUY, 100, 1_000), order_id=10)  # notional 100_000
    fees = 0
    for i in range(1_000):
        (event,) = book.handle(
            FillLeg(1, 10, i, BTC_USD, Side.BUY, 100, 1, Liquidity.TAKER, T0)
        ).events
        assert isinstance(event, FillSettled)
        fees += event.fee
    assert fees == 200  # ceil(100_000 * 0.2 %), not 1_000
    book.validate_internal_state()


def test_invalid_fills_are_rejected(book: AccountBook) -> None:
    book.handle(Deposit("d1", 1, T0, "USD", 1_000_000))
    book.handle(place("buy", 1, Side.BUY, 100, 10), order_id=10)
    cases = [
        (FillLeg(1, 10, 1, BTC_USD, Side.BUY, 101, 1, Liquidity.TAKER, T0), Reason.INVALID_FILL),
        (FillLeg(1, 10, 2, BTC_USD, Side.BUY, 100, 11, Liquidity.TAKER, T0), Reason.INVALID_FILL),
        (FillLeg(1, 10, 3, BTC_USD, Side.SELL, 100, 1, Liquidity.TAKER, T0), Reason.INVALID_FILL),
        (FillLeg(1, 11, 4, BTC_USD, Side.BUY, 100, 1, Liquidity.TAKER, T0), Reason.UNKNOWN_ORDER),
        (FillLeg(1, 10, 5, BTC_USD, Side.BUY, 100, 0, Liquidity.TAKER, T0), Reason.INVALID_COMMAND),
    ]
    before = book.account(1).balances()
    for fill, reason in cases:
        (event,) = book.handle(fill).events
        assert isinstance(event, CommandRejected)
        assert event.reason == reason, fill
    assert book.account(1).balances() == before


def test_duplicate_fill_is_idempotent(book: AccountBook) -> None:
    book.handle(Deposit("d1", 1, T0, "USD", 1_000_000))
    book.handle(place("buy", 1, Side.BUY, 100, 10), order_id=10)
    fill = FillLeg(1, 10, 1, BTC_USD, Side.BUY, 100, 4, Liquidity.TAKER, T0)
    first = book.handle(fill)
    again = book.handle(fill)
    assert again.duplicate
    assert again.events == first.events
    assert book.account(1).orders[10].filled_qty == 4


def test_rebuild_from_events_equals_live_state(book: AccountBook) -> None:
    events = []
    for command, oid in [
        (Deposit("d1", 1, T0, "USD", 1_000_000), 0),
        (place("buy", 1, Side.BUY, 100, 10), 10),
        (FillLeg(1, 10, 1, BTC_USD, Side.BUY, 90, 4, Liquidity.MAKER, T0), 0),
        (CancelOrder("c1", 1, T0, 10), 0),
        (RequestWithdrawal("w1", 1, T0, "USD", 500), 0),
    ]:
        events += book.handle(command, order_id=oid).events
    rebuilt = AccountBook(book.reference)
    for event in events:
        event.validate()
        rebuilt.apply(event)
    live, again = book.account(1), rebuilt.account(1)
    assert again.balances() == live.balances()
    assert again.orders[10].to_snapshot() == live.orders[10].to_snapshot()
    assert again.withdrawals == live.withdrawals
    assert again.outcomes == live.outcomes
    assert again.version == live.version == 5
    # the rebuilt account still knows the command ids
    assert rebuilt.handle(Deposit("d1", 1, T0, "USD", 5)).duplicate


def test_validated_skips_only_the_field_check(reference: ReferenceData) -> None:
    """``validated=True`` (the processor: the codec validated on decode) decides exactly as
    the default path for valid commands; only an invalid one slips past the field check."""
    commands: list[AccountInput] = [
        Deposit("d1", 1, T0, "USD", 1_000_000),
        Deposit("d2", 1, T0, "BTC", 1_000_000),
        place("o1", 1, Side.BUY, 100, 3),
        place("o2", 1, Side.SELL, 101, 2),
        place("o3", 1, Side.BUY, 100, 10**9),  # insufficient funds: a rejection either way
        CancelOrder("c1", 1, T0 + 2, 1),
    ]
    checked, trusted = AccountBook(reference), AccountBook(reference)
    for offset, command in enumerate(commands):
        assert trusted.handle(command, offset, validated=True) == checked.handle(command, offset)
    assert trusted.account(1).balances() == checked.account(1).balances()
    invalid = Deposit("", 1, T0, "USD", 5)
    (rejected,) = checked.handle(invalid).events
    assert isinstance(rejected, CommandRejected)
    assert rejected.reason == Reason.INVALID_COMMAND
    (deposited,) = trusted.handle(invalid, validated=True).events
    assert isinstance(deposited, Deposited)


def test_a_pending_withdrawal_requested_again_after_the_window_is_refused(
    book: AccountBook,
) -> None:
    """A request re-sent once its id has left the idempotency window is decided again; while
    the first is pending that must not hold twice under one withdrawal id."""
    book.handle(Deposit("d", 1, T0, "USD", 1_000))
    book.handle(RequestWithdrawal("w", 1, T0, "USD", 100))
    for i in range(COMMAND_IDS_MAX):
        book.handle(Deposit(f"d{i}", 1, T0, "USD", 1))
    assert "w" not in book.account(1).outcomes
    (again,) = book.handle(RequestWithdrawal("w", 1, T0, "USD", 100)).events
    assert isinstance(again, CommandRejected)
    assert again.reason == Reason.ALREADY_EXISTS
    account = book.account(1)
    assert account.balances() == {"USD": (900 + COMMAND_IDS_MAX, 100)}
    account.validate_internal_state()
    (paid,) = book.handle(ApproveWithdrawal("a", 1, T0, "w")).events
    assert isinstance(paid, WithdrawalPaid)
    assert account.balances() == {"USD": (900 + COMMAND_IDS_MAX, 0)}


def test_idempotency_window_remembers_exactly_the_last_command_ids(book: AccountBook) -> None:
    """COMMAND_IDS_MAX ids, oldest forgotten first, also once the window is full (where the
    memory becomes an OrderedDict) and after a restore from ids only (a plain dict)."""
    for i in range(COMMAND_IDS_MAX + 2):
        assert not book.handle(Deposit(f"d{i}", 1, T0, "USD", 1)).duplicate
    account = book.account(1)
    assert len(account.outcomes) == COMMAND_IDS_MAX
    assert list(account.outcomes)[:2] == ["d2", "d3"]
    assert book.handle(Deposit("d2", 1, T0, "USD", 1)).duplicate  # the oldest remembered
    assert not book.handle(Deposit("d0", 1, T0, "USD", 1)).duplicate  # forgotten: decided
    assert list(account.outcomes)[:1] == ["d3"]  # d2 made room for d0
    assert list(account.outcomes)[-1] == "d0"
    assert account.available["USD"] == COMMAND_IDS_MAX + 3
    # a snapshot restores the ids as a plain dict: the window goes on from there
    account.outcomes = dict.fromkeys(account.outcomes, ())
    assert not book.handle(Deposit("new", 1, T0, "USD", 1)).duplicate
    assert len(account.outcomes) == COMMAND_IDS_MAX
    assert list(account.outcomes)[:1] == ["d4"]
    assert book.handle(Deposit("d4", 1, T0, "USD", 1)).duplicate
    assert not book.handle(Deposit("d3", 1, T0, "USD", 1)).duplicate


def test_an_amended_orders_settlements_are_not_stamped_before_the_amend(
    book: AccountBook,
) -> None:
    """The engine may end (or fill) an order before it sees an amend the account already
    applied: the settlement's time is then earlier than the amend's, yet it closes the
    amended hold. It is stamped at the amend's time, so a fold of the events up to any
    time (balances as of a time) sees the amend before the hold it closes."""
    from tradex.domain import ModifyOrder, OrderAmended

    book.handle(Deposit("d1", 1, T0, "USD", 100_000))
    (accepted,) = book.handle(place("o1", 1, Side.BUY, 100, 10), order_id=5).events
    assert isinstance(accepted, OrderAccepted)
    (amended,) = book.handle(ModifyOrder("m1", 1, T0 + 50, 5, 120, 0)).events
    assert isinstance(amended, OrderAmended) and amended.hold_added > 0
    fill = FillLeg(1, 5, 1, BTC_USD, Side.BUY, 100, 4, Liquidity.MAKER, T0 + 10)
    (settled,) = book.handle(fill).events
    assert isinstance(settled, FillSettled) and settled.event_time_ns == T0 + 50
    (released,) = book.handle(OrderEnded(1, 5, BTC_USD, EndReason.CANCELLED, T0 + 20)).events
    assert isinstance(released, HoldReleased) and released.event_time_ns == T0 + 50
    later = OrderEnded(1, 5, BTC_USD, EndReason.CANCELLED, T0 + 99)
    assert book.handle(later).duplicate
    book.validate_internal_state()
    assert book.account(1).balances()["USD"][1] == 0


def test_the_engines_confirmation_releases_an_amends_fall_exactly(book: AccountBook) -> None:
    """A buy of 10 lots at 100 amended to 5 at 80 holds for 10 at 100 until the engine
    confirms (fills in flight may still be at the old terms); its AmendConfirmed narrows the
    bounds to 5 at 80 and releases the rest; a fill of the 2 lots left at the limit at the
    taker rate then consumes exactly the hold left. A confirmation of no pending amend, or
    beyond the bounds, is refused and changes nothing."""
    from tradex.domain import AmendConfirmed, AmendSettled, ModifyOrder, OrderAmended

    book.handle(Deposit("d1", 1, T0, "USD", 100_000))
    book.handle(place("o1", 1, Side.BUY, 100, 10), order_id=5)
    account = book.account(1)
    (fill,) = book.handle(
        FillLeg(1, 5, 1, BTC_USD, Side.BUY, 90, 3, Liquidity.MAKER, T0 + 5)
    ).events
    assert isinstance(fill, FillSettled)
    (amended,) = book.handle(ModifyOrder("m1", 1, T0 + 10, 5, 80, 5)).events
    assert isinstance(amended, OrderAmended) and amended.hold_added == 0
    assert (amended.price_bound, amended.qty_bound) == (100, 10)  # the old terms may fill
    held = account.held["USD"]
    for wrong in (
        AmendConfirmed(1, 5, BTC_USD, 80, 5, T0 + 11, T0 + 20),  # no amend at that time
        AmendConfirmed(1, 5, BTC_USD, 101, 5, T0 + 10, T0 + 20),  # above the price bound
        AmendConfirmed(1, 5, BTC_USD, 80, 3, T0 + 10, T0 + 20),  # at the filled quantity
    ):
        (refused,) = book.handle(wrong).events
        assert isinstance(refused, CommandRejected) and refused.reason == Reason.INVALID_FILL
        account.settled.pop(wrong.command_id)  # (each wrong one tried once)
    assert account.held["USD"] == held
    (settled,) = book.handle(AmendConfirmed(1, 5, BTC_USD, 80, 5, T0 + 10, T0 + 20)).events
    assert isinstance(settled, AmendSettled)
    assert (settled.price_bound, settled.qty_bound, settled.amend_time_ns) == (80, 5, T0 + 10)
    order = account.orders[5]
    # 2 lots left at 80 (160 cents) plus the taker fee the order's running fee total can
    # still add: 270 + 160 x 0.2 % = 0.59 cent -> still the 1 cent the first fill charged
    assert order.hold_remaining == order.hold_needed(80, 5) == 160
    assert settled.hold_released == held - account.held["USD"] > 0
    (last,) = book.handle(
        FillLeg(1, 5, 2, BTC_USD, Side.BUY, 80, 2, Liquidity.TAKER, T0 + 30)
    ).events
    assert isinstance(last, FillSettled) and account.orders[5].hold_remaining == 0
    (ended,) = book.handle(OrderEnded(1, 5, BTC_USD, EndReason.FILLED, T0 + 31)).events
    assert isinstance(ended, HoldReleased) and ended.amount == 0
    book.validate_internal_state()


def test_a_self_trade_prevention_decrement_releases_its_hold_at_once(book: AccountBook) -> None:
    """A DECREMENT order the engine shrinks to avoid trading with its own account is
    confirmed (amend time < 0: it answers no amend): the hold falls to what the smaller
    order can still consume, each decrement once, while an amend still pending keeps
    its terms in the bounds; the rest then fills to a hold of exactly 0."""
    from tradex.domain import AmendConfirmed, AmendSettled, ModifyOrder, OrderAmended
    from tradex.domain.commands import decrement_amend_time

    book.handle(Deposit("d1", 1, T0, "USD", 100_000))
    book.handle(place("o1", 1, Side.BUY, 100, 10), order_id=5)
    account = book.account(1)
    first = AmendConfirmed(1, 5, BTC_USD, 100, 7, decrement_amend_time(3), T0 + 5)
    (settled,) = book.handle(first).events
    assert isinstance(settled, AmendSettled) and settled.amend_time_ns == -3
    assert (settled.price_bound, settled.qty_bound) == (100, 7)
    assert account.orders[5].hold_remaining == account.orders[5].hold_needed(100, 7)
    assert settled.hold_released > 0
    assert book.handle(first).duplicate  # the same decrement again: nothing more released
    (amended,) = book.handle(ModifyOrder("m1", 1, T0 + 10, 5, 0, 9)).events
    assert isinstance(amended, OrderAmended) and (amended.qty_bound, amended.hold_added) == (9, 200)
    # a second decrement before the engine saw the amend: the amend may still apply
    (again,) = book.handle(
        AmendConfirmed(1, 5, BTC_USD, 100, 6, decrement_amend_time(8), T0 + 12)
    ).events
    assert isinstance(again, AmendSettled) and again.qty_bound == 9 and again.hold_released == 0
    assert account.orders[5].amends  # still pending
    (confirmed,) = book.handle(AmendConfirmed(1, 5, BTC_USD, 100, 9, T0 + 10, T0 + 20)).events
    assert isinstance(confirmed, AmendSettled) and not account.orders[5].amends
    (fill,) = book.handle(
        FillLeg(1, 5, 1, BTC_USD, Side.BUY, 100, 9, Liquidity.TAKER, T0 + 30)
    ).events
    assert isinstance(fill, FillSettled) and account.orders[5].hold_remaining == 0
    for wrong in (
        AmendConfirmed(1, 5, BTC_USD, 100, 10, decrement_amend_time(9), T0 + 40),  # above
        AmendConfirmed(1, 5, BTC_USD, 100, 5, 0, T0 + 40),  # 0 names no amend
    ):
        (refused,) = book.handle(wrong).events
        assert isinstance(refused, CommandRejected) and refused.reason == Reason.INVALID_FILL
    book.validate_internal_state()


def test_an_amend_carries_its_orders_self_trade_prevention(book: AccountBook) -> None:
    """The engine re-enters an amended order with the amend's mode: the account sends the
    order's own (kept in its state and its snapshot; NONE for snapshots from before)."""
    from tradex.commands.snapshots import account_state, restore_account
    from tradex.domain import ModifyOrder, StpMode

    book.handle(Deposit("d1", 1, T0, "USD", 100_000))
    order = place("o1", 1, Side.BUY, 100, 10)._replace(stp_mode=StpMode.DECREMENT)
    book.handle(order, order_id=5)
    decision = book.handle(ModifyOrder("m1", 1, T0 + 10, 5, 101, 0))
    (request,) = decision.order_requests
    assert request.stp_mode == StpMode.DECREMENT
    restored = restore_account(json.loads(json.dumps(account_state(book.account(1)))))
    assert restored.orders[5].stp_mode == StpMode.DECREMENT
    old = account_state(book.account(1))
    for fields in old[4]:
        del fields["stp_mode"]  # a snapshot written before the mode was kept
    assert restore_account(old).orders[5].stp_mode == StpMode.NONE


def test_amends_the_engine_has_not_confirmed_are_bounded(book: AccountBook) -> None:
    from tradex.domain import ModifyOrder, OrderAmended
    from tradex.domain.account import PENDING_AMENDS_MAX

    book.handle(Deposit("d1", 1, T0, "USD", 10**9))
    book.handle(place("o1", 1, Side.BUY, 100, 10), order_id=5)
    for i in range(PENDING_AMENDS_MAX):
        (event,) = book.handle(ModifyOrder(f"m{i}", 1, T0, 5, 100 + i % 3, 0)).events
        assert isinstance(event, OrderAmended)
        assert event.event_time_ns == T0 + i  # one amend per time: each names one amend
    (refused,) = book.handle(ModifyOrder("one-more", 1, T0, 5, 101, 0)).events
    assert isinstance(refused, CommandRejected) and refused.reason == Reason.OPEN_ORDERS_MAX
