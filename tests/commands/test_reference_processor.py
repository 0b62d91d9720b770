"""Reference processor: events chained, rules in band, duplicates ignored, and a running
account processor decides with every reference event committed before the command."""

from __future__ import annotations

import threading

import pytest

from tests.commands.support import (
    BTC_USD,
    CODEC,
    IDLE_S,
    T0,
    load_reference,
    read_log,
    reference_commands,
)
from tradex.commands import service
from tradex.commands.client import CommandClient, encode_command
from tradex.commands.reference_service import build as build_reference
from tradex.domain import (
    Deposit,
    HaltInstrument,
    InstrumentHalted,
    InstrumentRules,
    OrderAccepted,
    OrderKind,
    OrderRejected,
    PlaceOrder,
    Reason,
    Side,
)
from tradex.infra.kafka import produce_sync
from tradex.infra.settings import Settings
from tradex.log.keys import reference_key
from tradex.log.topics import ORDER_REQUESTS, REFERENCE_COMMANDS, REFERENCE_EVENTS
from tradex.schemas.chain import verify_chain

pytestmark = pytest.mark.integration

PARTITIONS = 2


def _run_reference(settings: Settings, commands: list[object]) -> int:
    """Send reference commands and run the reference processor until idle; duplicates seen."""
    produce_sync(
        settings,
        settings.topic(REFERENCE_COMMANDS),
        [(reference_key(c), encode_command(CODEC, c)) for c in commands],  # type: ignore[arg-type]
    )
    stage, processor = build_reference(settings, "t")
    stage.run(idle_s_max=IDLE_S)
    return processor.duplicates


def test_halt_reaches_a_running_account_processor_and_duplicates_change_nothing(
    settings: Settings,
) -> None:
    load_reference(settings, [1], PARTITIONS)
    stage, processor = service.build(settings, instance="r", partitions=PARTITIONS)
    stop = threading.Event()
    runner = threading.Thread(target=stage.run, args=(stop,), daemon=True)
    runner.start()
    client = CommandClient(settings)
    try:
        client.execute(Deposit("dep", 1, T0, "USD", 1_000_000), timeout_s=60)
        order = PlaceOrder("buy-1", 1, T0, BTC_USD, Side.BUY, OrderKind.GTC, 100, 5)
        assert [type(e) for e in client.execute(order, timeout_s=30).events] == [OrderAccepted]

        assert _run_reference(settings, [HaltInstrument("halt", T0 + 1, BTC_USD)]) == 0
        # The halt is committed: the next command must be decided with it applied.
        order = PlaceOrder("buy-2", 1, T0 + 2, BTC_USD, Side.BUY, OrderKind.GTC, 100, 5)
        rejected = client.execute(order, timeout_s=30).events
        assert [type(e) for e in rejected] == [OrderRejected]
        assert rejected[0].reason == Reason.INSTRUMENT_HALTED
    finally:
        client.close()
        stop.set()
        runner.join(timeout=60)
        processor.follower.close()

    before = read_log(settings, REFERENCE_EVENTS, 0)
    resent = [*reference_commands([1]), HaltInstrument("halt", T0 + 1, BTC_USD)]
    assert _run_reference(settings, resent) == len(resent)  # after a rebuild from the log
    events = read_log(settings, REFERENCE_EVENTS, 0)
    assert len(events) == len(before) == len(resent)
    assert verify_chain((x.envelope.prev_hash, x.data) for x in events) == []
    seqs: dict[bytes, int] = {}
    for x in events:
        seqs[x.key] = seqs.get(x.key, 0) + 1
        assert x.envelope.seq == seqs[x.key]
    assert isinstance(events[-1].event, InstrumentHalted)
    rules = [
        x.event
        for partition in range(settings.topic_partitions)
        for x in read_log(settings, ORDER_REQUESTS, partition)
        if isinstance(x.event, InstrumentRules)
    ]
    assert [r.status for r in rules] == ["TRADING", "HALTED"]  # once each, in band
