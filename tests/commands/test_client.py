"""The reply path: a client submits commands and gets their outcomes from account-events."""

from __future__ import annotations

import threading
import time

import pytest

from tests.commands.support import BTC_USD, T0, decide_late, load_reference
from tradex.commands import service
from tradex.commands.client import CommandClient, NoOutcome, no_outcome_confirm_s
from tradex.domain import (
    Deposit,
    Deposited,
    OrderKind,
    OrderRejected,
    PlaceOrder,
    Posting,
    Reason,
    Side,
)
from tradex.infra.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 2


def test_execute_returns_the_outcome_and_a_duplicate_returns_the_original(
    settings: Settings,
) -> None:
    load_reference(settings, [1, 2], PARTITIONS)
    stage, processor = service.build(settings, instance="c", partitions=PARTITIONS)
    stop = threading.Event()
    runner = threading.Thread(target=stage.run, args=(stop,), daemon=True)
    runner.start()
    client = CommandClient(settings)
    try:
        deposit = Deposit("client-dep", 1, T0, "USD", 5_000)
        outcome = client.execute(deposit, timeout_s=60)
        assert not outcome.duplicate
        assert outcome.latency_s > 0
        assert [type(e) for e in outcome.events] == [Deposited]
        assert outcome.events[0].amount == 5_000

        order = PlaceOrder("client-buy", 2, T0, BTC_USD, Side.BUY, OrderKind.GTC, 100, 10)
        rejected = client.execute(order, timeout_s=30)
        assert [type(e) for e in rejected.events] == [OrderRejected]
        assert rejected.events[0].reason == Reason.INSUFFICIENT_FUNDS

        again = client.execute(Deposit("client-dep", 1, T0, "USD", 999), timeout_s=30)
        assert again.duplicate
        assert again.events == outcome.events  # the original outcome, nothing new
    finally:
        client.close()
        stop.set()
        runner.join(timeout=60)
        processor.follower.close()
    assert processor.stats.duplicates == 1
    assert processor.stats.events == 2


def test_events_visible_after_the_offsets_committed_with_them_are_the_outcome(
    settings: Settings,
) -> None:
    """As the asyncio client's test: offsets seen before the events are no dead letter."""
    load_reference(settings, [1], PARTITIONS)
    deposited = Deposited("late-1", 1, T0, "USD", 5, (Posting(0, "USD", -5), Posting(1, "USD", 5)))
    client = CommandClient(settings)
    try:
        decider = decide_late(settings, 1, PARTITIONS, deposited, delay_s=0.5)
        outcome = client.execute(Deposit("late-1", 1, T0, "USD", 5), timeout_s=30)
        assert outcome.events == (deposited,)
        decider.join()

        decider = decide_late(settings, 1, PARTITIONS, None, delay_s=0, before=1)
        started = time.monotonic()
        with pytest.raises(NoOutcome, match="late-2 produced no event"):
            client.execute(Deposit("late-2", 1, T0, "USD", 5), timeout_s=30)
        assert time.monotonic() - started >= no_outcome_confirm_s
        decider.join()
    finally:
        client.close()
