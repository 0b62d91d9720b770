"""``tradex run matcher``: the matching engine as a member of the ``matcher`` consumer group.

    tradex run matcher --instance a            # runs until SIGINT/SIGTERM
    tradex run matcher --instance b            # a second member: partitions are shared
    tradex run matcher --exit-when-idle 5      # catch up, exit after 5 s without input

Consumes ``order-requests`` (key: instrument); per partition a
:class:`~tradex.matching.partition.PartitionEngine` (one book per instrument) turns each
batch into ``engine-events`` (same partition number as the input), ``settlements`` (key:
account) and ``dead-letters``; the :class:`~tradex.infra.stage.TransactionalStage` writes
them with the consumed offsets in one Kafka transaction. Every ``--snapshot-records`` inputs
of a partition, a snapshot of its state goes into the same transaction
(:mod:`tradex.matching.recovery`); on assignment a partition is rebuilt from its newest
snapshot plus the order requests after it, up to the committed offset, without emitting.

``--instance`` must be stable across restarts and unique among running members: it names
the transactional.id (a restart fences its predecessor and aborts its open transaction).
The book dimensions (``--orders-max``, ``--price-levels-max``) are part of what the output
is a function of: ``tradex matching verify`` must be given the same.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, TopicPartition

from tradex.infra import settings as settings_module
from tradex.infra.cli_args import non_negative_int, positive_int
from tradex.infra.kafka import admin_timeout_s
from tradex.infra.settings import Settings
from tradex.infra.stage import (
    Output,
    TransactionalStage,
    batch_records_max,
    configure_service_logging,
    run_until_signalled,
)
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    DEAD_LETTERS,
    ENGINE_EVENTS,
    MATCHER_GROUP,
    MATCHER_SNAPSHOTS,
    ORDER_REQUESTS,
    SETTLEMENTS,
    ensure_matcher_topics,
)
from tradex.matching.book import Book, OutputBuffers, load_kernels
from tradex.matching.constants import ORDERS_MAX_DEFAULT, PRICE_LEVELS_MAX_DEFAULT
from tradex.matching.partition import BookConfig, PartitionEngine, Topics
from tradex.matching.recovery import RebuildReport, rebuild, snapshot_outputs
from tradex.schemas.codec import Codec
from tradex.schemas.remote import codec_from_settings

log = logging.getLogger("tradex.matcher")

SNAPSHOT_RECORDS_DEFAULT = 50_000  # input records of a partition between two snapshots


def topics_of(settings: Settings) -> Topics:
    return Topics(
        order_requests=settings.topic(ORDER_REQUESTS),
        engine_events=settings.topic(ENGINE_EVENTS),
        settlements=settings.topic(SETTLEMENTS),
        dead_letters=settings.topic(DEAD_LETTERS),
    )


@dataclass
class MatcherStats:
    snapshots: int = 0
    rebuilds: list[RebuildReport] = field(default_factory=list)


class MatcherProcessor:
    """The :class:`tradex.infra.stage.Processor` of the matching stage."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        *,
        settlement_partitions: int,
        config: BookConfig,
        snapshot_records: int = SNAPSHOT_RECORDS_DEFAULT,
        use_snapshots: bool = True,
    ) -> None:
        assert settlement_partitions > 0
        assert snapshot_records >= 0
        self.settings = settings
        self.codec = codec
        self.topics = topics_of(settings)
        self.snapshots_topic = settings.topic(MATCHER_SNAPSHOTS)
        self.settlement_partitions = settlement_partitions
        self.config = config
        self.out = OutputBuffers(config.orders_max)  # shared by every book of the process
        load_kernels(self.out)  # at start, not in the first batch
        self.snapshot_records = snapshot_records
        self.use_snapshots = use_snapshots
        self.live: dict[int, PartitionEngine] = {}
        self.since_snapshot: dict[int, int] = {}
        self.stats = MatcherStats()

    def new_engine(self, partition: int) -> PartitionEngine:
        return PartitionEngine(
            partition, self.codec, self.topics, self.settlement_partitions, self.out, self.config
        )

    # -- assignment ------------------------------------------------------------------------

    def assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        wanted = sorted({tp.partition for tp in partitions} - set(self.live))
        if not wanted:
            return
        topic = self.topics.order_requests
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in wanted], timeout=admin_timeout_s
        )
        with KafkaLog(self.settings) as source:
            for tp in committed:
                start = tp.offset if tp.offset >= 0 else 0  # no commit yet: from the start
                engine = self.new_engine(tp.partition)
                report = rebuild(source, engine, committed=start, use_snapshot=self.use_snapshots)
                self.live[tp.partition] = engine
                self.since_snapshot[tp.partition] = report.replayed
                self.stats.rebuilds.append(report)
                log.info(
                    "partition %d rebuilt: snapshot at %d, %d records replayed, continuing at %d",
                    report.partition, report.snapshot_offset, report.replayed, report.committed,
                )  # fmt: skip

    def revoke(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.live.pop(tp.partition, None)
            self.since_snapshot.pop(tp.partition, None)

    # -- one batch -------------------------------------------------------------------------

    def process(self, messages: Sequence[Message]) -> list[Output]:
        return self.process_segments([messages])[0]

    def process_segments(self, segments: list[Sequence[Message]]) -> list[list[Output]]:
        """The outputs of each consecutive piece of one batch, as one ``process`` of the
        whole decides them (a traced batch is cut around its sampled records: each one's
        outputs are then known; tradex.observability.tracing). Snapshots come after the
        last piece: they name the offset this transaction commits."""
        touched: set[int] = set()
        decided = [self._apply(messages, touched) for messages in segments]
        decided[-1] += self._snapshots_due(touched)
        return decided

    def _apply(self, messages: Sequence[Message], touched: set[int]) -> list[Output]:
        by_partition: dict[int, list[Message]] = {}
        for message in messages:
            partition = message.partition()
            found = by_partition.get(partition)  # type: ignore[arg-type]
            if found is None:
                found = by_partition[partition] = []  # type: ignore[index]
            found.append(message)
        outputs: list[Output] = []
        for partition, batch in by_partition.items():
            engine = self.live.get(partition)
            offsets: list[int] = [m.offset() for m in batch]  # type: ignore[misc]
            if engine is None or offsets[0] < engine.next_offset:
                # A rebalance inside the stage's batch assembly can leave records of a revoked
                # (or revoked and re-assigned) partition in the batch. Skipping them would
                # commit their offsets unprocessed: stop instead (the restart is exact).
                raise RuntimeError(
                    f"order-requests[{partition}]@{offsets[0]}: a record of a partition "
                    "not assigned, or before its rebuilt position (rebalance during a batch)"
                )
            outputs += engine.apply_columns(
                offsets,
                [m.key() for m in batch],
                [m.value() for m in batch],
                lambda i, batch=batch: batch[i].timestamp()[1],  # type: ignore[misc]
            )
            self.since_snapshot[partition] += len(batch)
            touched.add(partition)
        return outputs

    def _snapshots_due(self, touched: set[int]) -> list[Output]:
        """Snapshots of the partitions of this transaction past ``snapshot_records``."""
        outputs: list[Output] = []
        if not self.snapshot_records:
            return outputs
        for partition in sorted(touched):
            if self.since_snapshot[partition] >= self.snapshot_records:
                # Names offset engine.next_offset: exactly what this transaction commits.
                outputs += snapshot_outputs(self.live[partition], self.snapshots_topic)
                self.since_snapshot[partition] = 0
                self.stats.snapshots += 1
        return outputs

    def committed(self, produced: dict[tuple[str, int], int]) -> list[Output]:
        return []


def build(
    settings: Settings,
    *,
    instance: str,
    config: BookConfig,
    batch_records: int = batch_records_max,
    batch_wait_ms: int | None = None,
    snapshot_records: int = SNAPSHOT_RECORDS_DEFAULT,
    use_snapshots: bool = True,
) -> tuple[TransactionalStage, MatcherProcessor]:
    """Topics created if missing, then the stage and its processor (not running yet)."""
    _partitions, settlement_partitions = ensure_matcher_topics(settings)
    processor = MatcherProcessor(
        settings,
        codec_from_settings(settings),
        settlement_partitions=settlement_partitions,
        config=config,
        snapshot_records=snapshot_records,
        use_snapshots=use_snapshots,
    )
    stage = TransactionalStage(
        settings,
        group_id=settings.topic(MATCHER_GROUP),
        input_topics=[settings.topic(ORDER_REQUESTS)],
        processor=processor,
        transactional_id=settings.topic(f"matcher-{instance}"),
        batch_records=batch_records,
        batch_wait_ms=batch_wait_ms,
    )
    return stage, processor


def add_book_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--orders-max", type=positive_int, default=ORDERS_MAX_DEFAULT,
        help=f"live orders per book (default {ORDERS_MAX_DEFAULT})",
    )  # fmt: skip
    parser.add_argument(
        "--price-levels-max", type=positive_int, default=PRICE_LEVELS_MAX_DEFAULT,
        help=f"price window of a book in ticks, a power of two (default {PRICE_LEVELS_MAX_DEFAULT})",
    )  # fmt: skip


def book_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> BookConfig:
    try:
        Book(args.orders_max, args.price_levels_max)  # the engine's own limits
    except ValueError as exc:
        parser.error(f"book dimensions: {exc}")
    return BookConfig(args.orders_max, args.price_levels_max)


def parse(argv: list[str]) -> tuple[argparse.Namespace, BookConfig]:
    parser = argparse.ArgumentParser(prog="tradex run matcher", description=__doc__.split("\n")[0])
    parser.add_argument("--instance", default="0", help="stable, unique member name (default 0)")
    parser.add_argument(
        "--exit-when-idle", type=float, default=None, metavar="S",
        help="exit after S seconds without input (catch-up runs, tests)",
    )  # fmt: skip
    parser.add_argument("--batch-records", type=positive_int, default=batch_records_max)
    parser.add_argument(
        "--batch-wait-ms", type=non_negative_int, default=None, metavar="MS",
        help="fixed batches: wait up to MS for a batch to fill (default: adaptive batches)",
    )  # fmt: skip
    parser.add_argument(
        "--snapshot-records", type=non_negative_int, default=SNAPSHOT_RECORDS_DEFAULT,
        help="input records of a partition between snapshots; 0: never write snapshots",
    )  # fmt: skip
    parser.add_argument(
        "--no-snapshots", action="store_true", help="rebuild by replaying the whole input"
    )
    add_book_arguments(parser)
    args = parser.parse_args(argv)
    if args.batch_records > batch_records_max:
        parser.error(f"--batch-records must be <= {batch_records_max}")
    if args.exit_when_idle is not None and args.exit_when_idle <= 0:
        parser.error("--exit-when-idle must be > 0")
    return args, book_config(parser, args)


def main(argv: list[str]) -> int:
    args, config = parse(argv)
    configure_service_logging(f"matcher-{args.instance}")
    settings = settings_module.load()
    stage, processor = build(
        settings,
        instance=args.instance,
        config=config,
        batch_records=args.batch_records,
        batch_wait_ms=args.batch_wait_ms,
        snapshot_records=args.snapshot_records,
        use_snapshots=not args.no_snapshots,
    )
    stats = run_until_signalled(stage, args.exit_when_idle)
    rebuilt = " ".join(
        f"p{r.partition}:snapshot={r.snapshot_offset},replayed={r.replayed},at={r.committed}"
        for r in processor.stats.rebuilds
    )
    print(
        f"matcher/{args.instance}: batches={stats.batches} in={stats.records_in} "
        f"out={stats.records_out} aborts={stats.aborts} {stats.summary()} snapshots={processor.stats.snapshots} "
        f"rebuilt=[{rebuilt}]",
        flush=True,
    )
    return 0
