"""``tradex run checkpointer``: sign the chained streams' heads every N records.

    tradex run checkpointer [--every-records N] [--every-s S] [--idle-s-max S]

Exactly once without a consumer group: the checkpointer's position *is* its output. Each
checkpoint names, per chained partition, the segment ``[start, end)`` it covers and the
heads so far (:mod:`.checkpoints`); the next one starts where the newest committed one
ended. A checkpoint is produced in a Kafka transaction under one ``transactional.id``
(``checkpointer``): ``init_transactions`` fences any older instance (and aborts its open
transaction) *before* the newest committed checkpoint is read, so a crash at any point
leaves either the whole checkpoint or nothing, and the restarted process continues from
the last one committed — no gap, no overlap. ``tradex audit checkpoint`` writes one under
the same id; a running checkpointer it fences starts over from the log, as after a crash.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from tradex.audit.checkpoints import (
    SignedCheckpoint,
    chained_places,
    latest,
    load_or_create_key,
    next_checkpoint,
)
from tradex.infra.cli_args import positive_int
from tradex.infra.faults import Fault
from tradex.infra.kafka import admin_timeout_s, producer_config
from tradex.infra.settings import Settings
from tradex.log.records import Place
from tradex.log.source import KafkaLog
from tradex.log.topics import CHECKPOINTS, checkpoint_topic_specs, ensure_stage_topics
from tradex.observability import logs, metrics, metrics_server

log = logging.getLogger(__name__)

TRANSACTIONAL_ID = "checkpointer"
every_records_default = 10_000
every_s_default = 60.0
poll_interval_s = 0.5
restarts_max = 100  # fenced or failed transactions in a row before giving up


class Checkpointer:
    """Writes the checkpoint after the newest committed one, in a transaction."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = load_or_create_key(settings)
        self.fault = Fault.from_env()
        self.written = 0
        ensure_stage_topics(settings, checkpoint_topic_specs())
        self.source = KafkaLog(settings)
        self.producer: Producer | None = None
        self.last: SignedCheckpoint | None = None

    def start(self) -> None:
        """(Re)create the producer, fence older instances, read the newest checkpoint."""
        producer = Producer(producer_config(self.settings, self.settings.topic(TRANSACTIONAL_ID)))
        producer.init_transactions(admin_timeout_s)
        self.producer = producer
        self.last = latest(self.source)

    def pending_records(self) -> int:
        """Positions (records and markers) written since the newest checkpoint."""
        total = 0
        for place in chained_places(self.source):
            before = self.last.checkpoint.stream(place) if self.last is not None else None
            total += self.source.watermarks(*place)[1] - (before.end if before else 0)
        return total

    def write(self, ends: dict[Place, int] | None = None) -> SignedCheckpoint:
        """One checkpoint up to ``ends`` (default: the log's end now); restarts from the
        log when fenced."""
        for attempt in range(restarts_max):
            if self.producer is None:
                self.start()
            assert self.producer is not None
            try:
                signed = next_checkpoint(
                    self.source, self.last, self.key, time.time_ns() // 1_000_000, ends
                )
                offsets: list[int] = []
                self.producer.begin_transaction()
                self.producer.produce(
                    self.settings.topic(CHECKPOINTS), signed.value, b"checkpoint", 0,
                    on_delivery=_offset_into(offsets),
                )  # fmt: skip
                self.producer.flush(admin_timeout_s)
                assert len(offsets) == 1, "the checkpoint record was not delivered"
                self.fault.check("before_commit", self.written)
                self.producer.commit_transaction(admin_timeout_s)
            except KafkaException as exc:
                log.warning(
                    "checkpoint not written (%s), starting over from the log (%d)", exc, attempt
                )
                self.producer = None  # fenced, timed out or aborted: recreate, re-read
                continue
            self.written += 1
            # what was committed, with its offset from the delivery report (reading the
            # topic's tail back at once may not show it yet: it failed one CI run)
            self.last = dataclasses.replace(signed, offset=offsets[0])
            return self.last
        raise RuntimeError(f"no checkpoint written after {restarts_max} attempts")

    def close(self) -> None:
        self.source.close()


def write_one(settings: Settings, ends: dict[Place, int] | None = None) -> SignedCheckpoint:
    """``tradex audit checkpoint``: one checkpoint now (up to ``ends`` if given)."""
    checkpointer = Checkpointer(settings)
    try:
        return checkpointer.write(ends)
    finally:
        checkpointer.close()


def run(
    settings: Settings,
    every_records: int,
    every_s: float,
    stop: threading.Event,
    idle_s_max: float | None = None,
) -> int:
    """Checkpoint when ``every_records`` positions arrived, or ``every_s`` passed with any;
    until ``stop`` (or ``idle_s_max`` with nothing new). Returns the checkpoints written."""
    checkpointer = Checkpointer(settings)
    try:
        checkpointer.start()
        last_at = idle_since = time.monotonic()
        while not stop.is_set():
            pending = checkpointer.pending_records()
            metrics.CHECKPOINT_PENDING.set(pending)
            now = time.monotonic()
            if pending >= every_records or (pending > 0 and now - last_at >= every_s):
                signed = checkpointer.write()
                records = sum(s.records for s in signed.checkpoint.streams)
                metrics.checkpoint_written(records, time.time())
                log.info("checkpoint #%d: %d records", signed.checkpoint.seq, records)
                last_at = idle_since = time.monotonic()
                continue
            if pending:
                idle_since = now
            if idle_s_max is not None and now - idle_since > idle_s_max:
                break
            stop.wait(poll_interval_s)
        return checkpointer.written
    finally:
        checkpointer.close()


def main(argv: list[str]) -> int:
    from tradex.infra import settings as settings_module

    parser = argparse.ArgumentParser(
        prog="tradex run checkpointer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--every-records", type=positive_int, default=every_records_default)
    parser.add_argument("--every-s", type=float, default=every_s_default, help="seconds")
    parser.add_argument(
        "--idle-s-max", type=float, default=None, help="exit after this long with nothing new"
    )
    metrics_server.add_argument(parser)
    args = parser.parse_args(argv)
    metrics_port = metrics_server.port_of(parser, args)
    logs.setup("checkpointer")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    settings = settings_module.load()
    metrics_server.serve(settings, "checkpointer", "0", metrics_port)
    written = run(settings, args.every_records, args.every_s, stop, args.idle_s_max)
    print(f"checkpointer: {written} checkpoints written")
    return 0


def _offset_into(offsets: list[int]) -> Callable[[KafkaError | None, Message], None]:
    """A delivery callback that keeps the delivered record's offset."""

    def delivered(error: KafkaError | None, message: Message) -> None:
        offset = message.offset()
        if error is None and offset is not None:
            offsets.append(offset)

    return delivered
