"""A small built-in market for the demo until :mod:`tradex.sim` lands (same interface).

Reference data, funded accounts and a seeded order flow from the benchmarks'
:mod:`tradex.bench.exchange_log` (three instruments; GTC and IOC orders around each mid,
about half crossing; cancels), produced at ``rate`` orders/s for ``duration_s``. Trades
per second are counted from ``engine-events`` record headers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from tradex.bench.exchange_log import (
    OrderFlow,
    funding,
    reference_commands,
    wait_reference_applied,
)
from tradex.commands.client import encode_command
from tradex.infra.kafka import produce_sync, producer_config
from tradex.infra.settings import Settings
from tradex.log.keys import account_key, account_partition, reference_key
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_COMMANDS, ENGINE_EVENTS, REFERENCE_COMMANDS
from tradex.schemas.codec import Codec

setup_timeout_s = 120.0
tick_s = 1.0


@dataclasses.dataclass(frozen=True)
class SimConfig:
    seed: int = 1
    instruments: int = 3
    accounts: int = 100
    rate: float = 100.0
    duration_s: float = 30.0


@dataclasses.dataclass(frozen=True)
class Market:
    accounts: int
    first_offsets: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class SimStats:
    elapsed_s: float
    sent: int
    orders_per_s: float
    trades_per_s: float
    ack_p99_ms: float | None
    trades: int


@dataclasses.dataclass(frozen=True)
class SimResult:
    commands: int
    orders: int
    trades: int
    send_s: float
    elapsed_s: float
    commands_per_s: float
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    trades_hash: str


def setup_market(settings: Settings, config: SimConfig) -> Market:
    codec = Codec.offline()
    reference = reference_commands(config.accounts)
    produce_sync(settings, settings.topic(REFERENCE_COMMANDS),
                 [(reference_key(c), encode_command(codec, c)) for c in reference])  # fmt: skip
    wait_reference_applied(settings, len(reference), setup_timeout_s)
    fund = funding(config.accounts)
    produce_sync(settings, settings.topic(ACCOUNT_COMMANDS),
                 [(account_key(c.account_id), encode_command(codec, c)) for c in fund])  # fmt: skip
    offsets = [0] * settings.topic_partitions
    for command in fund:
        offsets[account_partition(command.account_id, settings.topic_partitions)] += 1
    return Market(config.accounts, tuple(offsets))


def run(
    settings: Settings,
    config: SimConfig,
    market: Market,
    on_tick: Callable[[SimStats], None] | None = None,
) -> SimResult:
    from confluent_kafka import Producer

    codec = Codec.offline()
    flow = OrderFlow(market.accounts, config.seed, market.first_offsets)
    producer = Producer(producer_config(settings))
    topic = settings.topic(ACCOUNT_COMMANDS)
    log = KafkaLog(settings)
    tail = log.follow_batches({(ENGINE_EVENTS, p): 0 for p in range(log.partitions(ENGINE_EVENTS))})
    trade_ids = {int.from_bytes(h[1:5], "big") for h in codec.headers_of("Trade")}
    started = time.monotonic()
    sent = trades = 0
    last = (started, 0, 0)
    try:
        while (now := time.monotonic()) - started < config.duration_s:
            due = int((now - started) * config.rate) - sent
            for command in flow.commands(max(0, due)):
                producer.produce(topic, encode_command(codec, command),
                                 account_key(command.account_id))  # fmt: skip
            sent += max(0, due)
            producer.poll(0)
            batch = tail.poll_batch(0.01, 50_000)
            for i in range(len(batch)):
                value = batch.value(i) or b""
                trades += len(value) >= 5 and int.from_bytes(value[1:5], "big") in trade_ids
            if on_tick is not None and now - last[0] >= tick_s:
                span = now - last[0]
                on_tick(SimStats(now - started, sent, (sent - last[1]) / span,
                                 (trades - last[2]) / span, None, trades))  # fmt: skip
                last = (now, sent, trades)
        producer.flush(30)
    finally:
        tail.close()
        log.close()
    seconds = time.monotonic() - started
    return SimResult(sent, sent, trades, seconds, seconds, sent / seconds, None, None, "")
