"""The asyncio reply path: account and reference commands, their outcomes, duplicates."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from tests.commands.support import BTC_USD, T0, decide_late, load_reference
from tradex.commands import client as client_module
from tradex.commands import reference_service, service
from tradex.commands.async_client import (
    ACCOUNTS,
    REFERENCE,
    AsyncCommandClient,
    CommandTimeout,
)
from tradex.commands.client import NoOutcome
from tradex.commands.reference_client import ReferenceClient
from tradex.domain import (
    CancelOrder,
    CancelRequested,
    CreateAsset,
    Deposit,
    Deposited,
    OrderAccepted,
    OrderKind,
    OrderRejected,
    PlaceOrder,
    Posting,
    Reason,
    ReferenceCommandRejected,
    RegisterUser,
    Side,
    UserRegistered,
)
from tradex.infra.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 2


@pytest.fixture
def stages(settings: Settings) -> Iterator[Settings]:
    """Reference data on the log; the reference and account processors on threads."""
    load_reference(settings, [1, 2], PARTITIONS)
    accounts, processor = service.build(settings, instance="a", partitions=PARTITIONS)
    reference, _ = reference_service.build(settings, "r")
    stop = threading.Event()
    runners = [
        threading.Thread(target=stage.run, args=(stop,), daemon=True)
        for stage in (accounts, reference)
    ]
    for runner in runners:
        runner.start()
    yield settings
    stop.set()
    for runner in runners:
        runner.join(timeout=60)
    processor.follower.close()


def test_account_commands_their_outcomes_and_duplicates(stages: Settings) -> None:
    async def scenario() -> None:
        client = await AsyncCommandClient.open(stages, ACCOUNTS, name="t-accounts")
        try:
            deposit = Deposit("adep-1", 1, T0, "USD", 5_000_000)
            first, joined = await asyncio.gather(
                client.execute(deposit, timeout_s=60), client.execute(deposit, timeout_s=60)
            )
            assert [type(e) for e in first.events] == [Deposited]
            assert not first.duplicate
            assert joined == first  # two requests in flight with one id share one waiter

            again = await client.execute(deposit._replace(amount=1), timeout_s=30)
            assert again.duplicate
            assert again.events == first.events  # the original outcome, from the cache

            # the same command id on another account is another command (dedupe per account)
            other = await client.execute(deposit._replace(account_id=2), timeout_s=30)
            assert not other.duplicate
            assert other.events[0].account_id == 2

            buy = PlaceOrder("abuy-1", 1, T0, BTC_USD, Side.BUY, OrderKind.GTC, 100, 10)
            accepted = await client.execute(buy, timeout_s=30)
            assert [type(e) for e in accepted.events] == [OrderAccepted]
            order_id = accepted.events[0].order_id
            assert client.recent_order(order_id) == ((1, "abuy-1"), accepted.events)
            # a cancel names the order too: recent_order still answers the placing command
            # (DELETE /api/v3/openOrders read a CancelRequested as the order: a 500)
            cancel = await client.execute(CancelOrder("acancel-1", 1, T0, order_id), timeout_s=30)
            assert [type(e) for e in cancel.events] == [CancelRequested]
            assert client.recent_order(order_id) == ((1, "abuy-1"), accepted.events)
            too_big = buy._replace(command_id="abuy-2", qty=10**9)
            rejected = await client.execute(too_big, timeout_s=30)
            assert [type(e) for e in rejected.events] == [OrderRejected]
            assert rejected.events[0].reason == Reason.INSUFFICIENT_FUNDS
        finally:
            await client.aclose()
        # A new client has none of these in its cache: a duplicate is read from the log.
        fresh = await AsyncCommandClient.open(stages, ACCOUNTS, name="t-fresh")
        try:
            assert fresh.recent_outcome(1, "adep-1") is None
            replay = await fresh.execute(deposit._replace(amount=7), timeout_s=60)
            assert replay.duplicate
            assert replay.events == first.events
        finally:
            await fresh.aclose()

    asyncio.run(scenario())


def test_reference_commands_wait_for_their_outcome(stages: Settings) -> None:
    async def scenario() -> None:
        client = await AsyncCommandClient.open(stages, REFERENCE, name="t-reference")
        try:
            registered = await client.execute(RegisterUser("ru-50", T0, 50, "carol"), 30)
            assert [type(e) for e in registered.events] == [UserRegistered]
            assert registered.events[0].user.user_id == 50
            taken = await client.execute(RegisterUser("ru-50b", T0, 50, "dave"), 30)
            (refused,) = taken.events
            assert isinstance(refused, ReferenceCommandRejected)
            assert refused.reason == Reason.ALREADY_EXISTS
            # load_reference's own commands were decided before this client started
            old = await client.execute(CreateAsset("a-btc", T0, "XXX", 2), 60)
            assert old.duplicate
            assert old.events[0].asset.code == "BTC"
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_no_processor_no_outcome_in_time(settings: Settings) -> None:
    load_reference(settings, [1], PARTITIONS)

    async def scenario() -> None:
        client = await AsyncCommandClient.open(settings, ACCOUNTS, name="t-idle")
        try:
            with pytest.raises(CommandTimeout):
                await client.execute(Deposit("idle-1", 1, T0, "USD", 1), timeout_s=1.0)
            assert await client.wait_for(1, "end/1", timeout_s=0.2) is None
            assert not client.waiting  # nothing left behind
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_events_visible_after_the_offsets_committed_with_them_are_the_outcome(
    settings: Settings,
) -> None:
    """Kafka writes a transaction's markers partition by partition: the group's offsets can
    be past a command before its events are readable. Its events are still its outcome
    (a sim command once got NoOutcome here), and silence is a dead letter only later."""
    load_reference(settings, [1], PARTITIONS)
    deposit = Deposit("late-1", 1, T0, "USD", 5)
    deposited = Deposited("late-1", 1, T0, "USD", 5, (Posting(0, "USD", -5), Posting(1, "USD", 5)))

    async def scenario() -> None:
        client = await AsyncCommandClient.open(settings, ACCOUNTS, name="t-late")
        try:
            decider = decide_late(settings, 1, PARTITIONS, deposited, delay_s=0.5)
            outcome = await client.execute(deposit, timeout_s=30)
            assert outcome.events == (deposited,)
            decider.join()

            silent = Deposit("late-2", 1, T0, "USD", 5)
            decider = decide_late(settings, 1, PARTITIONS, None, delay_s=0, before=1)
            started = time.monotonic()
            with pytest.raises(NoOutcome, match="late-2 produced no event"):
                await client.execute(silent, timeout_s=30)
            decider.join()
            assert time.monotonic() - started >= client_module.no_outcome_confirm_s
            assert not client.waiting
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_the_blocking_reference_client_waits_for_outcomes(stages: Settings) -> None:
    with ReferenceClient(stages, name="t-reference-sync") as client:
        registered = client.execute(RegisterUser("ru-60", T0, 60, "erin", "admin"), 30)
        (event,) = registered.events
        assert isinstance(event, UserRegistered)
        assert (event.user.user_id, event.user.roles) == (60, "admin")
        again = client.execute(RegisterUser("ru-60", T0, 60, "other"), 30)  # the same id
        assert again.duplicate and again.events == registered.events
        bad = client.execute(RegisterUser("ru-61", T0, 61, "fay", "root"), 30)
        (refused,) = bad.events
        assert isinstance(refused, ReferenceCommandRejected)
        assert refused.reason == Reason.INVALID_COMMAND and "unknown roles" in refused.detail
