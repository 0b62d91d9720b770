"""The same seed through the full pipeline twice gives the same trades; another seed other
trades. Each run is a fresh exchange: the reference processor, the account processor and
the matcher as processes on their own topic prefix (the three run at the same time)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tradex.domain.engine import Trade
from tradex.exchange_services import pipeline_services
from tradex.infra.exchange import Exchange
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.log.topics import ENGINE_EVENTS, ensure_account_topics, ensure_reference_topics
from tradex.log.typed import read_typed
from tradex.schemas.codec import Codec
from tradex.sim import SimConfig, SimResult, run, setup_market
from tradex.sim.services import service_down
from tradex.sim.watch import TradesDigest

pytestmark = pytest.mark.integration

START_S_MAX = 240.0
PARTITIONS = 4
# ~400 commands: makers, takers of every kind, amends, cancels, a withdrawal
CONFIG = SimConfig(seed=11, instruments=3, accounts=60, rate=400.0, duration_s=1.0,
                   start_ns=1_700_000_000_000_000_000)  # fmt: skip


@contextmanager
def exchange(base: Settings, log_dir: Path) -> Iterator[Settings]:
    """The three stages as processes on a fresh prefix (topics deleted after)."""
    settings = dataclasses.replace(base, topic_prefix=f"t{uuid.uuid4().hex[:12]}-",
                                   topic_partitions=PARTITIONS)  # fmt: skip
    ensure_reference_topics(settings)
    ensure_account_topics(settings, PARTITIONS)
    stages = Exchange(settings, log_dir / settings.topic_prefix)
    try:
        stages.start(pipeline_services("t"))
        stages.wait_ready(START_S_MAX)
        assert service_down(settings) is None
        yield settings
    finally:
        codes = stages.stop()
        delete_prefixed_topics(settings)
        assert set(codes.values()) == {0}, codes


def simulate(base: Settings, log_dir: Path, config: SimConfig) -> tuple[SimResult, list[Trade]]:
    with exchange(base, log_dir) as settings:
        market = setup_market(settings, config)
        assert setup_market(settings, config) == market  # idempotent
        result = run(settings, config, market)
        codec = Codec.offline()
        trades = []
        with KafkaLog(settings) as log:
            for partition in range(log.partitions(ENGINE_EVENTS)):
                for record in read_typed(log, codec, ENGINE_EVENTS, partition):
                    event = record.checked()[1]
                    if isinstance(event, Trade):
                        trades.append(event)
    return result, sorted(trades, key=lambda t: (t.instrument_id, t.trade_id))


def trades_hash(trades: list[Trade]) -> str:
    digest = TradesDigest(CONFIG.start_ns or 0)
    for trade in trades:
        digest.add(trade)
    return digest.hexdigest()


def test_same_seed_same_trades_other_seed_other_trades(stack: Settings, tmp_path: Path) -> None:
    configs = (CONFIG, CONFIG, dataclasses.replace(CONFIG, seed=12))
    # three exchanges at once: shorter, and each run's timing differs from the others'
    with ThreadPoolExecutor(len(configs)) as pool:
        runs = list(pool.map(lambda config: simulate(stack, tmp_path, config), configs))
    (first, first_trades), (second, second_trades), (other, other_trades) = runs

    assert first.commands == CONFIG.commands
    assert (first.timeouts, first.misplaced, first.skipped) == (0, 0, 0)
    assert first.trades == len(first_trades) > 10, "the flow should trade"
    assert {t.instrument_id for t in first_trades} == {t.instrument_id for t in other_trades}
    assert len({t.instrument_id for t in first_trades}) == CONFIG.instruments
    # identical bodies, ids and times included (a fixed start time)
    assert second_trades == first_trades
    assert second.trades_hash == first.trades_hash == trades_hash(first_trades)
    assert (second.rejects, second.skipped) == (first.rejects, first.skipped)
    assert other_trades != first_trades
    assert other.trades_hash != first.trades_hash
