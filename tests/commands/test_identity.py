"""Issue 11's command side on the real Kafka: actors and roles, maker/checker, amend,
cancel-all, and the settlement ids' own idempotency window.

Commands are written straight to ``account-commands`` (no API in between): the account
processor is the authority, and its events say why it refused."""

from __future__ import annotations

import pytest

from tests.commands.support import (
    BTC_USD,
    IDLE_S,
    T0,
    load_reference,
    read_events,
    read_log,
    run_accounts,
    send,
    send_settlements,
)
from tests.market import LOT, USER_ID
from tradex.domain import (
    AmendApplied,
    AmendOrder,
    AmendSettled,
    ApproveWithdrawal,
    CancelAllOrders,
    CancelOrderRequest,
    CancelRequested,
    ChangeUserRoles,
    CommandRejected,
    Deposit,
    Deposited,
    EndReason,
    FillLeg,
    FillSettled,
    HoldReleased,
    Ledger,
    Liquidity,
    ModifyOrder,
    OpenAccount,
    OrderAccepted,
    OrderAmended,
    OrderEnded,
    OrderKind,
    OrderRejected,
    PlaceOrder,
    Reason,
    RegisterUser,
    RejectWithdrawal,
    RequestWithdrawal,
    Side,
    WithdrawalPaid,
    WithdrawalRequested,
)
from tradex.domain.account import CANCEL_ALL_CHUNK
from tradex.domain.ids import OUTPUT_INDEX_MAX
from tradex.infra.settings import Settings
from tradex.log.keys import account_partition
from tradex.log.topics import ACCOUNT_COMMANDS, ENGINE_EVENTS, ORDER_REQUESTS, ensure_matcher_topics
from tradex.matching import verify
from tradex.matching.partition import BookConfig
from tradex.matching.service import build as build_matcher

pytestmark = pytest.mark.integration

PARTITIONS = 2
ALICE = 1  # owned by USER_ID (a user without roles)
MAKER, CHECKER = 20, 21  # admins
MAKERS_ACCOUNT = 30  # owned by MAKER
MATCHER_CONFIG = BookConfig(orders_max=1 << 12, price_levels_max=1 << 16)
USERS = (
    RegisterUser("u-maker", T0, MAKER, "mia", "admin,trader"),
    RegisterUser("u-checker", T0, CHECKER, "carl", "admin"),
    OpenAccount("open-30", T0, MAKERS_ACCOUNT, MAKER),
)


def _events(settings: Settings) -> dict[str, list[object]]:
    by_command: dict[str, list[object]] = {}
    for partition in range(PARTITIONS):
        for logged in read_events(settings, partition):
            by_command.setdefault(logged.event.command_id, []).append(logged.event)
    return by_command


def _requests(settings: Settings) -> list[object]:
    return [
        logged.event
        for partition in range(settings.topic_partitions)
        for logged in read_log(settings, ORDER_REQUESTS, partition)
    ]


def test_actors_roles_and_maker_checker_are_decided_by_the_processor(settings: Settings) -> None:
    load_reference(settings, [ALICE], PARTITIONS, USERS)
    t = T0 + 1_000
    acct = MAKERS_ACCOUNT
    send(settings, [
        Deposit("dep", acct, t, "USD", 1_000_000, CHECKER),  # an admin's deposit
        Deposit("dep-trader", acct, t, "USD", 5, USER_ID),  # not an admin
        Deposit("dep-stranger", acct, t, "USD", 5, 404),  # not a user
        RequestWithdrawal("wd", acct, t, "USD", 1_000, MAKER),  # the owner asks
        RequestWithdrawal("wd-other", acct, t, "USD", 1_000, CHECKER),  # not the owner
        ApproveWithdrawal("self-approve", acct, t, "wd", MAKER),  # the maker checks: no
        RejectWithdrawal("self-reject", acct, t, "wd", MAKER),
        ApproveWithdrawal("approve", acct, t, "wd", CHECKER),  # another admin: paid
        PlaceOrder("own", acct, t, BTC_USD, Side.BUY, OrderKind.GTC, 100, 10, actor=MAKER),
        PlaceOrder("not-own", acct, t, BTC_USD, Side.BUY, OrderKind.GTC, 100, 10, actor=CHECKER),
    ])  # fmt: skip
    _, processor = run_accounts(settings, PARTITIONS)
    assert processor.stats.dead_letters == 0
    events = _events(settings)

    (deposited,) = events["dep"]
    assert isinstance(deposited, Deposited) and deposited.actor == CHECKER
    for cid in ("dep-trader", "dep-stranger", "wd-other"):
        (refused,) = events[cid]
        assert isinstance(refused, CommandRejected), refused
        assert refused.reason == Reason.FORBIDDEN, refused
    (requested,) = events["wd"]
    assert isinstance(requested, WithdrawalRequested) and requested.actor == MAKER
    for cid, kind in (("self-approve", "ApproveWithdrawal"), ("self-reject", "RejectWithdrawal")):
        (refused,) = events[cid]
        assert isinstance(refused, CommandRejected), refused
        assert (refused.reason, refused.command_type, refused.actor) == (
            Reason.MAKER_CHECKER, kind, MAKER,
        )  # fmt: skip
        assert "requested withdrawal wd" in refused.detail
    (paid,) = events["approve"]
    assert isinstance(paid, WithdrawalPaid) and paid.actor == CHECKER
    (own,) = events["own"]  # decided by the compiled path (an owner's order)
    assert isinstance(own, OrderAccepted) and own.actor == MAKER
    (not_own,) = events["not-own"]
    assert isinstance(not_own, OrderRejected) and not_own.reason == Reason.FORBIDDEN
    assert not_own.actor == CHECKER
    assert processor.stats.compiled == 1  # the owner's order; an admin's deposit: Python


def test_roles_changed_on_the_log_are_the_roles_the_processor_decides_by(
    settings: Settings,
) -> None:
    """A user given admin after registration may deposit; an admin whose role was dropped
    may not; a self-grant is refused by the reference processor and changes nothing."""
    changes = (
        ChangeUserRoles("grant", T0, USER_ID, "admin", CHECKER),  # no roles -> admin
        ChangeUserRoles("drop", T0, CHECKER, "", MAKER),  # the checker is an admin no more
        ChangeUserRoles("self", T0, MAKER, "admin,auditor,trader", MAKER),  # refused
    )
    load_reference(settings, [ALICE], PARTITIONS, (*USERS, *changes))
    t = T0 + 1_000
    send(settings, [
        Deposit("by-granted", MAKERS_ACCOUNT, t, "USD", 1_000, USER_ID),
        Deposit("by-dropped", MAKERS_ACCOUNT, t, "USD", 1_000, CHECKER),
        Deposit("by-maker", MAKERS_ACCOUNT, t, "USD", 1_000, MAKER),  # still an admin
    ])  # fmt: skip
    _, processor = run_accounts(settings, PARTITIONS)
    assert processor.follower.reference.users[MAKER].roles == "admin,trader"  # self: refused
    events = _events(settings)
    (granted,) = events["by-granted"]
    assert isinstance(granted, Deposited) and granted.actor == USER_ID
    (dropped,) = events["by-dropped"]
    assert isinstance(dropped, CommandRejected) and dropped.reason == Reason.FORBIDDEN
    (maker,) = events["by-maker"]
    assert isinstance(maker, Deposited)


def test_amend_adjusts_the_hold_first_then_forwards_the_engines_amend(settings: Settings) -> None:
    load_reference(settings, [ALICE], PARTITIONS)
    t = T0 + 1_000
    send(settings, [
        Deposit("dep", ALICE, t, "USD", 30_000),
        PlaceOrder("buy", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 100, 100),
    ])  # fmt: skip
    run_accounts(settings, PARTITIONS)
    (accepted,) = _events(settings)["buy"]
    assert isinstance(accepted, OrderAccepted)
    oid = accepted.order_id
    send(settings, [
        ModifyOrder("up", ALICE, t, oid, 120, 0),  # price up: 100 lots at 120 + fee bound
        ModifyOrder("too-much", ALICE, t, oid, 0, 1_000),  # the balance cannot cover it
        ModifyOrder("down", ALICE, t, oid, 0, 50),  # quantity down: bounds stay (in flight)
        ModifyOrder("nothing", ALICE, t, oid, 0, 0),
    ])  # fmt: skip
    run_accounts(settings, PARTITIONS)
    events = _events(settings)
    (up,) = events["up"]
    assert isinstance(up, OrderAmended)
    assert (up.price_bound, up.qty_bound) == (120, 100)
    assert up.hold_added == (12_000 + 24) - (10_000 + 20)  # notional + taker fee bound
    (too_much,) = events["too-much"]
    assert isinstance(too_much, CommandRejected)
    assert too_much.reason == Reason.INSUFFICIENT_FUNDS
    (down,) = events["down"]
    assert isinstance(down, OrderAmended) and down.hold_added == 0
    (nothing,) = events["nothing"]
    assert isinstance(nothing, CommandRejected) and nothing.reason == Reason.INVALID_COMMAND
    amends = [r for r in _requests(settings) if isinstance(r, AmendOrder)]
    assert [(a.order_id, a.new_price, a.new_qty) for a in amends] == [
        (oid, 120, 0), (oid, 0, 50),
    ]  # fmt: skip

    # a fill at the amended price, then the end: the hold closes at exactly 0
    send_settlements(settings, [
        FillLeg(ALICE, oid, 1, BTC_USD, Side.BUY, 120, 50, Liquidity.TAKER, t),
        OrderEnded(ALICE, oid, BTC_USD, EndReason.FILLED, t),
    ])  # fmt: skip
    run_accounts(settings, PARTITIONS)
    ledger = Ledger()
    for partition in range(PARTITIONS):
        for logged in read_events(settings, partition):
            ledger.apply(logged.event)
    assert ledger.violations() == []
    assert ledger.held.get((ALICE, "USD"), 0) == 0
    assert ledger.open_holds == {}


def test_cancel_all_of_1200_orders_runs_in_bounded_chunks(settings: Settings) -> None:
    load_reference(settings, [ALICE], PARTITIONS)
    t = T0 + 1_000
    orders = 1_200
    send(settings, [
        Deposit("dep", ALICE, t, "USD", 10**9),
        *(PlaceOrder(f"o{i}", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 100, 1)
          for i in range(orders)),
    ])  # fmt: skip
    run_accounts(settings, PARTITIONS)
    send(settings, [
        CancelAllOrders("kill", ALICE, t + 1, BTC_USD),
        PlaceOrder("late", ALICE, t + 1, BTC_USD, Side.BUY, OrderKind.GTC, 100, 1),
    ])  # fmt: skip
    _, processor = run_accounts(settings, PARTITIONS)
    assert processor.stats.dead_letters == 0
    events = _events(settings)
    cancels = events["kill"]
    assert all(isinstance(e, CancelRequested) for e in cancels)
    placed = [events[f"o{i}"][0] for i in range(orders)]
    assert sorted(e.order_id for e in cancels) == sorted(e.order_id for e in placed)  # type: ignore[attr-defined]
    assert len(cancels) == orders  # each once
    (late,) = events["late"]  # placed after the first chunk ran: not cancelled
    assert isinstance(late, OrderAccepted)
    assert late.order_id not in {e.order_id for e in cancels}  # type: ignore[attr-defined]
    requests = _requests(settings)
    cancelled = [r for r in requests if isinstance(r, CancelOrderRequest)]
    assert sorted(r.order_id for r in cancelled) == sorted(e.order_id for e in cancels)  # type: ignore[attr-defined]
    # the continuations: back on the account's commands partition, one per full chunk
    home = account_partition(ALICE, PARTITIONS)
    continuations = [
        logged.event for logged in read_log(settings, ACCOUNT_COMMANDS, home)
        if isinstance(logged.event, CancelAllOrders) and logged.event.continuation
    ]  # fmt: skip
    chunks = -(-orders // CANCEL_ALL_CHUNK)
    assert len(continuations) == chunks - 1
    assert 2 * CANCEL_ALL_CHUNK + 1 <= OUTPUT_INDEX_MAX  # one input's outputs fit their index


def test_a_client_command_id_never_shadows_a_settlement(settings: Settings) -> None:
    load_reference(settings, [ALICE], PARTITIONS)
    t = T0 + 1_000
    send(settings, [
        Deposit("dep", ALICE, t, "USD", 100_000),
        PlaceOrder("buy", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 100, 10),
    ])  # fmt: skip
    run_accounts(settings, PARTITIONS)
    (accepted,) = _events(settings)["buy"]
    oid = accepted.order_id  # type: ignore[attr-defined]
    # a client picks the ids the settlements of this order will have
    send(settings, [
        Deposit(f"fill/1/{oid}", ALICE, t, "USD", 1),
        Deposit(f"end/{oid}", ALICE, t, "USD", 1),
    ])  # fmt: skip
    send_settlements(settings, [
        FillLeg(ALICE, oid, 1, BTC_USD, Side.BUY, 100, 4, Liquidity.MAKER, t),
        OrderEnded(ALICE, oid, BTC_USD, EndReason.CANCELLED, t),
        OrderEnded(ALICE, oid, BTC_USD, EndReason.CANCELLED, t),  # a real duplicate
    ])  # fmt: skip
    _, processor = run_accounts(settings, PARTITIONS)
    assert processor.stats.duplicates == 1  # the second OrderEnded only
    events = _events(settings)
    assert [type(e) for e in events[f"fill/1/{oid}"]] == [Deposited, FillSettled]
    assert [type(e) for e in events[f"end/{oid}"]] == [Deposited, HoldReleased]


def test_amends_and_a_cancel_all_go_through_the_matcher_and_settle_exactly(
    settings: Settings,
) -> None:
    """The whole loop: account processor → matcher → settlements → account processor, with
    an amend raising a buy's price until it crosses, one lowering a sell's quantity, and a
    cancel-all; the matcher's run is byte-identical on re-run (``verify``), and every hold
    closes at exactly 0."""
    load_reference(settings, [ALICE, 2], PARTITIONS)
    ensure_matcher_topics(settings)
    t = T0 + 1_000
    send(settings, [
        Deposit("dep-a", ALICE, t, "USD", 1_000_000),
        Deposit("dep-b", 2, t, "BTC", 10_000_000),
        PlaceOrder("sell", 2, t, BTC_USD, Side.SELL, OrderKind.GTC, 110, 100),
        PlaceOrder("buy", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 100, 40),
        PlaceOrder("rest", ALICE, t, BTC_USD, Side.BUY, OrderKind.GTC, 90, 10),
    ])  # fmt: skip
    run_accounts(settings, PARTITIONS)
    events = _events(settings)
    buy, sell = events["buy"][0], events["sell"][0]
    send(settings, [
        ModifyOrder("cross", ALICE, t + 1, buy.order_id, 110, 0),  # type: ignore[attr-defined]
        ModifyOrder("smaller", 2, t + 1, sell.order_id, 0, 70),  # type: ignore[attr-defined]
        CancelAllOrders("kill", ALICE, t + 2),
    ])  # fmt: skip
    run_accounts(settings, PARTITIONS)
    stage, _ = build_matcher(settings, instance="t", config=MATCHER_CONFIG)
    stage.run(idle_s_max=IDLE_S)
    run_accounts(settings, PARTITIONS)  # the settlements
    for partition in range(settings.topic_partitions):
        assert verify.verify_partition(settings, partition, config=MATCHER_CONFIG).ok
    applied = [logged.event for partition in range(settings.topic_partitions)
               for logged in read_log(settings, ENGINE_EVENTS, partition)
               if isinstance(logged.event, AmendApplied)]  # fmt: skip
    assert {(a.order_id, a.new_price, a.new_qty) for a in applied} == {
        (buy.order_id, 110, 40), (sell.order_id, 110, 70),  # type: ignore[attr-defined]
    }  # fmt: skip
    events = _events(settings)
    fills = [e for cid, found in events.items() if cid.startswith("fill/") for e in found
             if e.order_id == buy.order_id]  # type: ignore[attr-defined]  # fmt: skip
    assert [(f.price, f.qty) for f in fills] == [(110, 40)]  # type: ignore[attr-defined]
    ledger = Ledger()
    for partition in range(PARTITIONS):
        for logged in read_events(settings, partition):
            ledger.apply(logged.event)
    assert ledger.violations() == []
    # the buy filled, "rest" was cancelled; only the sell's 30 lots left rest (and hold):
    # the engine confirmed the smaller total, so the account released the 30 lots it
    # cancelled at once (not at the order's end)
    assert ledger.open_holds == {(2, f"o/{sell.order_id}"): ("BTC", 30 * LOT)}  # type: ignore[attr-defined]
    assert ledger.held[(ALICE, "USD")] == 0
    settled = {e.order_id: e for found in events.values() for e in found
               if isinstance(e, AmendSettled)}  # fmt: skip
    assert settled[sell.order_id].hold_released == 30 * LOT  # type: ignore[attr-defined]
    assert (settled[sell.order_id].price, settled[sell.order_id].qty) == (110, 70)  # type: ignore[attr-defined]
    assert settled[buy.order_id].hold_released == 0  # type: ignore[attr-defined]
