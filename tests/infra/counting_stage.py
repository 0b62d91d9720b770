"""A minimal stateful stage for the exactly-once crash tests (run as a subprocess).

Input ``count-in`` (2 partitions) → output ``count-out`` (same partition). Each output is
``<input offset>:<running count of outputs in this partition>``; the running count is
state rebuilt from ``count-out`` on assignment, so a lost, duplicated or reordered effect
after a crash shows as a gap, a repeat or a jump.

Usage: python -m tests.infra.counting_stage INSTANCE BATCHES_MAX [BATCH_WAIT_MS]
(without BATCH_WAIT_MS: adaptive batches; with it: the fixed mode).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from confluent_kafka import Consumer, Message, TopicPartition

from tradex.infra.settings import Settings, load
from tradex.infra.stage import Output, TransactionalStage
from tradex.log.source import KafkaLog


class CountingProcessor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.out_topic = settings.topic("count-out")
        self.counts: dict[int, int] = {}

    def assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with KafkaLog(self.settings) as log:
            for tp in partitions:
                last = 0
                for record in log.read("count-out", tp.partition):
                    last = int((record.value or b"").split(b":")[1])
                self.counts[tp.partition] = last

    def revoke(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.counts.pop(tp.partition, None)

    def process(self, messages: Sequence[Message]) -> list[Output]:
        outputs = []
        for message in messages:
            partition = message.partition()
            self.counts[partition] += 1
            value = f"{message.offset()}:{self.counts[partition]}".encode()
            outputs.append(Output(self.out_topic, value, message.key(), partition))
        return outputs

    def committed(self, produced: dict[tuple[str, int], int]) -> list[Output]:
        return []


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    instance, batches_max = sys.argv[1], int(sys.argv[2])
    batch_wait_ms = int(sys.argv[3]) if len(sys.argv) > 3 else None
    settings = load()
    stage = TransactionalStage(
        settings,
        group_id=settings.topic("counting"),
        input_topics=[settings.topic("count-in")],
        processor=CountingProcessor(settings),
        transactional_id=settings.topic(f"counting-{instance}"),
        batch_records=50,
        batch_wait_ms=batch_wait_ms,
    )
    stats = stage.run(batches_max=batches_max, idle_s_max=3.0)
    print(f"batches={stats.batches} in={stats.records_in} out={stats.records_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
