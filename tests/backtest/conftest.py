"""A recorded stream for the backtest tests: order requests on Kafka, run by the real
matcher stage (as tests/matching/test_verify.py does), so engine-events hold history."""

from __future__ import annotations

from tradex.infra.kafka import TopicSpec, ensure_topics, produce_sync
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.matching.partition import BookConfig
from tradex.matching.service import build

CONFIG = BookConfig(orders_max=1 << 12, price_levels_max=1 << 16)
BOOK_ARGS = ["--orders-max", str(CONFIG.orders_max),
             "--price-levels-max", str(CONFIG.price_levels_max)]  # fmt: skip


def record_history(settings: Settings, records: list[tuple[bytes | None, bytes]]) -> None:
    """``records`` to ``order-requests`` (one partition), then the matcher over them."""
    ensure_topics(
        settings,
        {
            "order-requests": TopicSpec(1),
            "engine-events": TopicSpec(1),
            "settlements": TopicSpec(2),
        },
    )
    produce_sync(settings, settings.topic("order-requests"), records)
    stage, _processor = build(settings, instance="bt", config=CONFIG, batch_records=100)
    assert stage.run(idle_s_max=1.5).records_in == len(records)


def engine_events(settings: Settings) -> list[bytes]:
    with KafkaLog(settings) as source:
        return [r.value or b"" for r in source.read("engine-events", 0)]
