"""``tradex bench backtest``'s kernel side runs the stream the matcher's fold runs: the
same trades from the same order requests (no Kafka: the fold is fed directly)."""

from __future__ import annotations

from tradex.audit.rerun import LOGICAL_TOPICS
from tradex.bench.backtest import kernel_rows, time_kernel
from tradex.bench.order_feed import bench_feed
from tradex.domain.engine import Trade
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, InputRecord, PartitionEngine
from tradex.schemas.codec import Codec

CONFIG = BookConfig(orders_max=1 << 12, price_levels_max=1 << 16)


def test_the_kernel_side_trades_as_the_matchers_fold_does() -> None:
    codec = Codec.offline()
    records = list(bench_feed(7, 2_000, 3))
    found = kernel_rows(codec, records)
    assert sorted(found) == [1, 2, 3]
    _wall, _cpu, commands, trades = time_kernel(found, CONFIG)
    assert commands == len(records)  # every request is valid and after its rules
    engine = PartitionEngine(0, codec, LOGICAL_TOPICS, 1, OutputBuffers(CONFIG.orders_max), CONFIG)
    inputs = [InputRecord(0, i, k, v, 0) for i, (k, v) in enumerate(records)]
    logged = [codec.decode_domain(o.value)[1] for o in engine.apply(inputs)]
    assert trades == sum(isinstance(e, Trade) for e in logged) > 100
