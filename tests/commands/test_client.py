"""The reply path: a client submits commands and gets their outcomes from account-events."""

from __future__ import annotations

import threading

import pytest

from tests.commands.support import BTC_USD, T0, load_reference
from tradex.commands import service
from tradex.commands.client import CommandClient
from tradex.domain import (
    Deposit,
    Deposited,
    OrderKind,
    OrderRejected,
    PlaceOrder,
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
