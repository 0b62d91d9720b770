"""The one shape of every Kafka stage: consume → transform → produce in a transaction.

A :class:`TransactionalStage` owns a read_committed consumer (group member) and a
transactional producer. Each batch of input records is handed to a :class:`Processor`,
whose outputs are produced together with the consumed offsets in one Kafka transaction:
either all of a batch's effects and its input positions become visible, or none do.
Batches are pipelined by one: a committer thread finishes batch N's transaction while
batch N+1 is consumed and decided (see :meth:`TransactionalStage.run`).

Batches adapt to load (the default): a batch is what has arrived by the time the previous
transaction has committed. Idle, a record's transaction begins at once (no waiting to
fill a batch); busy, batches grow to whatever arrived during one commit; when commits
slow down (a loaded 3-broker cluster), batches grow and transactions get fewer instead of
queueing. ``batch_wait_ms`` chooses the older fixed mode instead: after the first record,
wait up to that long for the batch to fill.

Errors follow librdkafka's transactional API: a retriable error retries the same call;
an abortable one aborts, rewinds the consumer to the committed offsets and asks the
processor to rebuild its state; a fatal one or a timeout (KAFKA-18579) also recreates
the producer. A zombie is fenced by its transactional.id and by the group metadata sent
with the offsets (KIP-447).

Fault injection for crash tests: ``TRADEX_FAULT=<point>:<n>`` makes the process exit
abruptly (``os._exit``) at the n-th batch's point, one of ``after_produce`` (offsets
sent, records in an open transaction) or ``before_commit`` (records flushed, not
committed; on the committer thread, while the next batch is being decided).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from types import FrameType
from typing import Any, NamedTuple, Protocol

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from tradex.infra.batch_produce import produce_run
from tradex.infra.faults import Fault
from tradex.infra.kafka import PARKED_FETCH_WAIT_MS, consumer_config, producer_config
from tradex.infra.settings import Settings
from tradex.observability import logs, tracing
from tradex.observability.tracing import StageTracing

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[KafkaError | None, Message], None]

batch_records_max = 5_000  # input records per transaction
batch_wait_ms_max = 20  # fixed mode: how long a batch may wait to fill
gather_step_s = 0.001  # adaptive mode: one wait for more records while a commit runs
# ... at most this many waits per batch: a commit is bounded by transaction_call_timeout_s
# (30 s = 30,000 waits of 1 ms); past this bound something is broken, not slow.
gather_steps_max = 1_000_000
idle_poll_s = 0.05  # how long one wait for a first record lasts (then stop/idle checks)
TIMING_ENV = "TRADEX_STAGE_TIMING"  # a directory: each batch's stamps written there (BatchClock)
call_retries_max = 10  # retriable errors on one transactional call before giving up
slow_batch_s = 1.0  # a transaction (begin to commit) longer than this is logged
transaction_call_timeout_s = 30.0
# librdkafka's send_offsets_to_transaction can wait forever past its timeout when the group
# coordinator's broker dies (librdkafka #5456, #5511: seen here with a broker SIGKILLed on
# the 3-broker stack, every stage stuck). The stage runs it, and each flush + commit, on its
# committer thread and waits at most this long; past it the producer is abandoned to its
# stuck call and a new one (same transactional.id: fences the old, aborts its transaction)
# goes on from the committed offsets, as after any failed transaction.
offsets_call_timeout_s = 10.0
offsets_hung_s = offsets_call_timeout_s + 5.0
commit_hung_s = 2 * transaction_call_timeout_s + 15.0  # flush, then commit (_finish)


class Output(NamedTuple):
    """One record to produce. ``partition`` -1 means: by key (murmur2). The fields are
    ``Producer.produce``'s first four positional parameters, in order (the stage hands
    runs of them to librdkafka: :func:`tradex.infra.batch_produce.produce_run`). A
    NamedTuple, not a frozen dataclass: built ~2 times per input record, it costs a quarter
    as much."""

    topic: str
    value: bytes
    key: bytes | None
    partition: int = -1


_target = itemgetter(0, 3)  # (topic, partition) of an Output


class Processor(Protocol):
    """The pure part of a stage: state rebuilt from logs, outputs decided from inputs."""

    def assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Rebuild state for these input partitions from the logs (committed data only)."""

    def revoke(self, partitions: list[TopicPartition]) -> None:
        """Forget the state of these input partitions."""

    def process(self, messages: Sequence[Message]) -> list[Output]:
        """Decide the outputs of a batch of input records (in order per partition)."""

    def committed(self, produced: dict[tuple[str, int], int]) -> list[Output]:
        """Called after each commit with the next offsets of explicitly-partitioned outputs.

        May return records to put in the next transaction (e.g. a snapshot that names the
        log position it covers).
        """


class StageObserver(Protocol):
    """Told about each committed or failed transaction (metrics: one call per batch, not per
    record; see tradex.observability.metrics.StageMetrics). Given by the service, as
    tradex.infra imports no other tradex package."""

    def committed(
        self,
        messages: Sequence[Message],
        records_out: int,
        transaction_s: float,
        lags: Sequence[tuple[str, int, int]],
    ) -> None:
        """A committed batch: its input records, records produced, begin-to-commit time
        and (topic, partition, records behind the partition's end) per position committed."""

    def aborted(self, kind: str) -> None:
        """A transaction that did not commit: ``aborted`` or ``producer_restarted``."""


@dataclass
class StageStats:
    batches: int = 0
    records_in: int = 0
    records_out: int = 0
    aborts: int = 0
    producer_restarts: int = 0
    hung_calls: int = 0  # transactional calls abandoned (offsets_hung_s, commit_hung_s)
    commit_latency_s_total: float = 0.0
    last_commit_monotonic: float = field(default_factory=time.monotonic)

    def summary(self) -> str:
        """Records per batch and mean transaction time (begin to commit), for a log line."""
        batches = max(1, self.batches)
        return (
            f"records/batch={self.records_in / batches:.1f} "
            f"txn_ms_mean={1000 * self.commit_latency_s_total / batches:.1f}"
        )


@dataclass
class _InFlight:
    """A batch whose outputs are produced and whose transaction the committer thread is
    finishing (flush, commit) while this thread decides the next batch."""

    records_in: int
    records_out: int
    started_monotonic: float
    produced: dict[tuple[str, int], int]  # filled by delivery reports on the committer thread
    tracked: int  # explicitly-partitioned outputs whose delivery must be reported
    future: Future[None]
    spans: list[Any]  # of the batch's sampled records (tradex.observability.tracing)
    messages: list[Message] = field(default_factory=list)  # the batch (for its metrics)
    offsets: list[TopicPartition] = field(default_factory=list)  # positions it commits
    stamps: dict[str, int] | None = None  # BatchClock's, when timing is on

    def commit_wait_left_s(self) -> float:
        """How much longer its flush and commit may take before they count as hung."""
        return max(0.0, commit_hung_s - (time.monotonic() - self.started_monotonic))

    def overdue(self) -> bool:
        return self.commit_wait_left_s() <= 0.0


class BatchClock:
    """Where one batch's time goes, when ``TRADEX_STAGE_TIMING`` names a directory: per
    committed batch one JSON line in ``<dir>/<stage>-<pid>.jsonl`` with
    ``time.perf_counter_ns`` stamps (CLOCK_MONOTONIC: comparable between processes of one
    machine) and the input offsets it covers, so a client that knows its records' offsets
    can follow one command through the stage (docs/processors.md, "Latency").

    Stamps, in order: ``first`` (the batch's first record returned by the consumer),
    ``gathered``, ``decided``, ``settled`` (the previous transaction waited for; absent
    when none was in flight), ``begun``, ``offsets`` (sent), ``produced``, then on the
    committer thread ``flushed`` and ``committed``, and ``noticed`` (the main thread took
    note of the commit: after the next batch is gathered and decided)."""

    NAMES = ("first", "gathered", "decided", "settled", "begun", "offsets", "produced",
             "flushed", "committed", "noticed")  # fmt: skip

    def __init__(self, directory: str, stage: str) -> None:
        assert directory, "a directory"
        os.makedirs(directory, exist_ok=True)
        self.file = open(  # noqa: SIM115 - open for the stage's life, closed by close()
            os.path.join(directory, f"{stage}-{os.getpid()}.jsonl"), "a", encoding="utf-8"
        )

    @classmethod
    def from_env(cls, stage: str) -> BatchClock | None:
        directory = os.environ.get(TIMING_ENV, "")
        return cls(directory, stage) if directory else None

    def write(self, stamps: dict[str, int], messages: Sequence[Message]) -> None:
        ranges: dict[str, list[int]] = {}
        for message in messages:
            place = f"{message.topic()}:{message.partition()}"
            offset = message.offset()
            assert offset is not None, place
            found = ranges.get(place)
            if found is None:
                ranges[place] = [offset, offset]
            else:
                found[1] = offset
        line = {"stamps": stamps, "ranges": ranges, "records": len(messages)}
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class TransactionalStage:
    """Runs a :class:`Processor` as one member of a consumer group, exactly once."""

    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        input_topics: list[str],
        processor: Processor,
        transactional_id: str,
        batch_records: int = batch_records_max,
        batch_wait_ms: int | None = None,
        observer: StageObserver | None = None,
    ) -> None:
        """``batch_wait_ms`` None: adaptive batches (see the module doc); a number: the
        fixed mode, each batch waits up to that long to fill after its first record.
        ``observer``: told about every transaction (metrics)."""
        assert input_topics, "a stage needs input topics"
        assert 0 < batch_records <= batch_records_max, batch_records
        assert batch_wait_ms is None or 0 <= batch_wait_ms <= 1_000, batch_wait_ms
        self.settings = settings
        self.group_id = group_id
        self.input_topics = input_topics
        self.processor = processor
        self.transactional_id = transactional_id
        self.batch_records = batch_records
        self.batch_wait_s = None if batch_wait_ms is None else batch_wait_ms / 1000
        self.stats = StageStats()
        self.observer = observer
        self.fault = Fault.from_env()
        self.consumer = Consumer(
            consumer_config(
                settings,
                group_id,
                **{
                    "group.instance.id": transactional_id,
                    "max.poll.interval.ms": 300_000,
                    "fetch.wait.max.ms": PARKED_FETCH_WAIT_MS,
                },
            )
        )
        self.producer = self._new_producer()
        self.assignment: list[TopicPartition] = []
        self.assigned_monotonic = 0.0
        self.rebalances = 0  # assign/revoke callbacks so far: a change means a new assignment
        self.inflight: _InFlight | None = None
        self.committer = self._new_committer()
        self.tracing = StageTracing.of(group_id, group_id)  # None: tracing off
        self.clock = BatchClock.from_env(group_id)  # None: timing off
        self.stamps: dict[str, int] = {}  # the batch being gathered and decided (timing on)

    # -- lifecycle ---------------------------------------------------------------------

    def _new_committer(self) -> ThreadPoolExecutor:
        """The thread of a transaction's flush, commit and offsets call."""
        return ThreadPoolExecutor(1, thread_name_prefix=f"commit-{self.transactional_id}")

    def _new_producer(self) -> Producer:
        producer = Producer(producer_config(self.settings, self.transactional_id))
        producer.init_transactions(transaction_call_timeout_s)
        return producer

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._event("partitions assigned", partitions=[(p.topic, p.partition) for p in partitions])
        self._settle_in_callback()
        self.rebalances += 1
        self.assignment = list(partitions)
        self.processor.assign(consumer, list(partitions))
        self.assigned_monotonic = time.monotonic()  # idle time counts from a rebuilt state

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._event("partitions revoked", partitions=[(p.topic, p.partition) for p in partitions])
        self._settle_in_callback()
        self.rebalances += 1
        gone = {(p.topic, p.partition) for p in partitions}
        self.assignment = [p for p in self.assignment if (p.topic, p.partition) not in gone]
        self.processor.revoke(list(partitions))

    def _settle_in_callback(self) -> None:
        """Partitions change hands only with no transaction in flight: the processor's
        state is dropped or rebuilt from the logs next, and those must hold the batch."""
        if self.inflight is not None:
            self._settle(rewind=False)  # its outputs are void either way: pending is dropped

    def run(
        self,
        stop: threading.Event | None = None,
        batches_max: int | None = None,
        idle_s_max: float | None = None,
    ) -> StageStats:
        """Process batches until ``stop`` is set, ``batches_max`` batches committed, or no
        input arrived for ``idle_s_max`` seconds (a catch-up run that exits when done).

        Batches are pipelined by one: batch N+1 is consumed and decided while the committer
        thread finishes batch N's transaction (flush, commit: ~5–15 ms of waiting for the
        broker per batch). N+1's decisions build on N's effects, so N+1 is produced
        only once N has committed; if N aborts, N+1's decisions are dropped with the state
        they were made on (rewind to the committed offsets, rebuild from the logs)."""
        stop = stop or threading.Event()
        idle_since = time.monotonic()
        self._event("stage start", topics=self.input_topics, transactional_id=self.transactional_id)
        self.consumer.subscribe(
            self.input_topics, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        pending: list[Output] = []
        try:
            while not stop.is_set():
                if (
                    batches_max is not None
                    and self.stats.batches + (self.inflight is not None) >= batches_max
                ):
                    break
                rebalances = self.rebalances
                messages = self._consume_batch()
                if self.rebalances != rebalances:
                    pending = []  # decided for an assignment that is gone
                if not messages and not pending:
                    if self.inflight is not None:
                        pending = self._settle() or []
                        continue
                    idle_since = max(idle_since, self.assigned_monotonic)
                    if idle_s_max is not None and time.monotonic() - idle_since > idle_s_max:
                        break
                    continue
                idle_since = time.monotonic()
                self._mark("gathered")
                outputs, spans = self._decide(messages)
                self._mark("decided")
                if self.inflight is not None:
                    committed = self._settle()
                    self._mark("settled")
                    if committed is None:
                        pending = []
                        StageTracing.finish(spans, "dropped: the previous batch aborted")
                        continue  # the previous batch aborted: rewound, rebuilt; both come again
                    pending = committed
                self._start(messages, pending + outputs if pending else outputs, spans)
                pending = []
        finally:
            try:
                if self.inflight is not None:
                    self._settle()
            finally:
                self.committer.shutdown()
                self.consumer.close()
                if self.clock is not None:
                    self.clock.close()
                self._event(
                    "stage stop", batches=self.stats.batches, records_in=self.stats.records_in,
                    records_out=self.stats.records_out, aborts=self.stats.aborts,
                )  # fmt: skip
        return self.stats

    def _mark(self, name: str) -> None:
        """A stamp of the current batch (:class:`BatchClock`), when timing is on."""
        if self.clock is not None:
            self.stamps[name] = time.perf_counter_ns()

    def _event(self, name: str, level: int = logging.INFO, **fields: Any) -> None:
        """One structured log line of this stage (tradex.observability.logs)."""
        logs.event(log, name, level, stage=self.group_id, **fields)

    # -- one batch ---------------------------------------------------------------------

    def _decide(self, messages: list[Message]) -> tuple[list[Output], list[Any]]:
        """The processor's outputs of a batch; traced, also the spans of its sampled records
        (whose outputs then carry their ``traceparent`` header: produce()'s parameters up
        to ``headers``, a longer tuple than an :class:`Output`)."""
        sampled = self.tracing.sampled(messages) if self.tracing is not None else None
        if not sampled:
            return self.processor.process(messages), []
        assert self.tracing is not None
        return self.tracing.decide(self.processor, messages, sampled)

    def _consume_batch(self) -> list[Message]:
        """Up to ``batch_records`` records: adaptive (:meth:`_gather`) or, in the fixed
        mode, wait (<= idle_poll_s) for the first one, then at most ``batch_wait_s`` for
        more. ``consume(n, timeout)`` returns only when n records are there or the timeout
        expires, so waiting for the first one uses ``poll``."""
        if self.batch_wait_s is None:
            return self._gather()
        batch: list[Message] = []
        rebalances = self.rebalances
        first = self.consumer.poll(idle_poll_s)
        if first is not None:
            self._mark("first")
            self._keep(first, batch)
        if first is None or self.rebalances != rebalances:
            return self._after_rebalance(rebalances, batch)
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_records:
            remaining_s = deadline - time.monotonic()
            if not self._take(max(remaining_s, 0.0), batch, rebalances):
                return self._after_rebalance(rebalances, batch)
            if remaining_s <= 0:
                break
        return batch

    def _gather(self) -> list[Message]:
        """The adaptive batch: what arrives while the previous transaction commits.

        Nothing in flight: wait (<= idle_poll_s) for a first record, then take only what is
        already there — the batch's transaction begins at once. A transaction in flight:
        keep taking records (in ``gather_step_s`` waits) until it has committed, as this
        batch could not begin before anyway; so batches grow with the commit time and the
        load. Returns an empty batch when the in-flight transaction is done and nothing
        came (the caller settles it)."""
        batch: list[Message] = []
        rebalances = self.rebalances
        inflight = self.inflight
        if inflight is None:
            first = self.consumer.poll(idle_poll_s)
            if first is not None:
                self._mark("first")
                self._keep(first, batch)
            if first is None or self.rebalances != rebalances:
                return self._after_rebalance(rebalances, batch)
        steps = 0
        while len(batch) < self.batch_records:
            busy = inflight is not None and not inflight.future.done() and not inflight.overdue()
            had = len(batch)
            if not self._take(gather_step_s if busy else 0.0, batch, rebalances):
                return self._after_rebalance(rebalances, batch)
            if had == 0 and batch:
                self._mark("first")
            if not busy and len(batch) == had:
                break  # committed (or nothing in flight) and nothing more is there: go
            steps += 1
            assert steps < gather_steps_max, "gathering never ended"
        return batch

    def _take(self, timeout_s: float, batch: list[Message], rebalances: int) -> bool:
        """Append what one ``consume`` returns within ``timeout_s``; False on a rebalance."""
        chunk = self.consumer.consume(
            num_messages=self.batch_records - len(batch), timeout=timeout_s
        )
        append = batch.append
        for message in chunk:  # _keep inline for the common case (a call per record)
            if message.error() is None:
                append(message)
            else:
                self._keep(message, batch)
        return self.rebalances == rebalances

    def _after_rebalance(self, rebalances: int, batch: list[Message]) -> list[Message]:
        """A rebalance inside a batch (eager protocol: every partition was revoked and the
        new ones rebuilt from the committed state) makes the records gathered so far
        stale — some may even be read again from the committed offsets. Drop them all and
        start the new assignment at its committed offsets."""
        if self.rebalances == rebalances:
            return batch
        self._event("rebalance while batching", dropped=len(batch))
        self._seek_committed()
        return []

    def _keep(self, message: Message, batch: list[Message]) -> None:
        error = message.error()
        if error is None:
            batch.append(message)
        elif error.fatal():
            raise KafkaException(error)
        else:
            self._event("consumer error", logging.WARNING, error=str(error))

    def _start(
        self, messages: list[Message], outputs: list[Output], spans: list[Any] | None = None
    ) -> None:
        """Begin the batch's transaction, send its offsets and produce its outputs here;
        hand the flush and commit to the committer thread (:meth:`_settle` waits)."""
        assert self.inflight is None, "a transaction is still in flight"
        started = time.monotonic()
        produced: dict[tuple[str, int], int] = {}
        # The last record of each explicitly-partitioned (topic, partition) reports its
        # delivery: its offset is where the processor's writes there end (committed()).
        # The dict is built in C: a Python loop over the outputs was ~1 µs per input.
        last = dict(zip(map(_target, outputs), range(len(outputs)), strict=True))
        tracked = sorted(index for (_topic, partition), index in last.items() if partition >= 0)
        offsets: list[TopicPartition] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is None:
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                assert topic is not None and partition is not None and offset is not None
                produced[(topic, partition)] = offset + 1

        try:
            self._call(self.producer.begin_transaction)
            self._mark("begun")
            if messages:
                # Before producing: with the batch's records in flight this call took
                # 20–25 ms instead of ~2 (confluent-kafka-python #967).
                offsets = self._next_offsets(messages)
                metadata = self.consumer.consumer_group_metadata()
                sent = self.committer.submit(self._send_offsets, offsets, metadata)
                self._within(sent, "send_offsets_to_transaction", offsets_hung_s)
                self._mark("offsets")
            # The hot loop: ~2-5 records per input, handed to librdkafka from C in runs
            # (produce_run); a record it leaves (traced: with headers; refused: a full
            # queue) goes through _produce, which waits for room or raises.
            start = 0
            for stop in (*tracked, len(outputs)):
                while start < stop:
                    start = produce_run(self.producer, outputs, start, stop)
                    if start < stop:
                        self._produce(outputs[start], None)
                        start += 1
                if stop < len(outputs):
                    self._produce(outputs[stop], on_delivery)
                start = stop + 1
            self.fault.check("after_produce", self.stats.batches)
        except KafkaException as exc:
            StageTracing.finish(spans or [], f"transaction failed: {exc}")
            self._recover(exc.args[0])
            self.stamps = {}
            return
        self._mark("produced")
        stamps, self.stamps = (self.stamps, {}) if self.clock is not None else (None, {})
        future = self.committer.submit(self._finish, self.stats.batches, stamps)
        self.inflight = _InFlight(
            len(messages), len(outputs), started, produced, len(tracked), future, spans or [],
            messages, offsets, stamps,
        )  # fmt: skip

    def _send_offsets(self, offsets: list[TopicPartition], metadata: object) -> None:
        """The committer thread's part of a transaction's start (see offsets_hung_s)."""
        self._call(
            self.producer.send_offsets_to_transaction, offsets, metadata, offsets_call_timeout_s
        )

    def _within(self, future: Future[None], call: str, hung_s: float) -> None:
        """The result of a call on the committer thread; one that has not returned in
        ``hung_s`` is left to itself (with its thread) and reported as timed out, which
        recreates the producer (:meth:`_recover`)."""
        try:
            future.result(timeout=hung_s)
        except TimeoutError:
            self._event("transactional call hung: producer abandoned", logging.ERROR,
                        call=call, waited_s=hung_s)  # fmt: skip
            self.stats.hung_calls += 1
            self.committer.shutdown(wait=False)
            self.committer = self._new_committer()
            message = f"{call} did not return in {hung_s} s"
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, message)) from None

    def _finish(self, batch: int, stamps: dict[str, int] | None) -> None:
        """The committer thread's part of a transaction (librdkafka waits without the GIL);
        ``stamps``: the batch's (:class:`BatchClock`), when timing is on."""
        remaining = self.producer.flush(transaction_call_timeout_s)
        if remaining:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "flush timed out"))
        if stamps is not None:
            stamps["flushed"] = time.perf_counter_ns()
        self.fault.check("before_commit", batch)
        self._call(self.producer.commit_transaction, transaction_call_timeout_s)
        if stamps is not None:
            stamps["committed"] = time.perf_counter_ns()

    def _settle(self, *, rewind: bool = True) -> list[Output] | None:
        """Wait for the in-flight transaction. Committed: count it and return what the
        processor puts in the next transaction. Failed: recover (``rewind``: also seek to the
        committed offsets and rebuild the state; a rebalance does that itself) and return
        None."""
        inflight, self.inflight = self.inflight, None
        assert inflight is not None, "no transaction in flight"
        try:
            self._within(
                inflight.future, "flush and commit_transaction", inflight.commit_wait_left_s()
            )
        except KafkaException as exc:
            StageTracing.finish(inflight.spans, f"transaction failed: {exc}")
            self._recover(exc.args[0], rewind=rewind)
            return None
        StageTracing.finish(inflight.spans)
        self.stats.batches += 1
        self.stats.records_in += inflight.records_in
        self.stats.records_out += inflight.records_out
        took_s = time.monotonic() - inflight.started_monotonic
        self.stats.commit_latency_s_total += took_s
        if took_s > slow_batch_s:
            self._slow_batch(inflight, took_s)
        assert len(inflight.produced) == inflight.tracked, "a tracked record was not acknowledged"
        self._observe_commit(inflight, took_s)
        if self.clock is not None and inflight.stamps is not None:
            inflight.stamps["noticed"] = time.perf_counter_ns()
            self.clock.write(inflight.stamps, inflight.messages)
        return self.processor.committed(inflight.produced)

    def _slow_batch(self, inflight: _InFlight, took_s: float) -> None:
        self._event(
            "slow batch", logging.WARNING, transaction_ms=round(took_s * 1000, 1),
            records_in=inflight.records_in, records_out=inflight.records_out,
            trace_ids=[tracing.trace_id(span) for span in inflight.spans],
        )  # fmt: skip

    def _observe_commit(self, inflight: _InFlight, transaction_s: float) -> None:
        """Metrics of a committed batch (once per transaction): counts, latencies from the
        records' log times, consumer lag from the locally cached high watermarks."""
        if self.observer is None:
            return
        lags = []
        watermarks = self.consumer.get_watermark_offsets
        for tp in inflight.offsets:
            found = watermarks(tp, cached=True)  # None or -1001: not known yet
            if found is not None and found[1] >= 0:
                lags.append((tp.topic, tp.partition, max(0, found[1] - tp.offset)))
        self.observer.committed(inflight.messages, inflight.records_out, transaction_s, lags)

    def _produce(self, output: Output, callback: DeliveryCallback | None) -> None:
        while True:
            try:  # a traced output is longer: (..., on_delivery, callback, timestamp, headers)
                self.producer.produce(*output[:4], callback, *output[5:])
                return
            except BufferError:
                self.producer.poll(0.05)

    def _next_offsets(self, messages: list[Message]) -> list[TopicPartition]:
        """The offsets to commit: the consumer's position in each partition it has read.
        That is the offset after the last record it returned, or past the transaction
        markers (control records) and aborted records right after it, which a
        read_committed consumer steps over. Every record it returned is decided by now.
        Partitions it has not read yet have no position and are left out."""
        positions = self.consumer.position(self.assignment)
        last = messages[-1]
        assert any(
            tp.topic == last.topic()
            and tp.partition == last.partition()
            and tp.offset > (last.offset() or 0)
            for tp in positions
        ), "the consumer's position is not after the batch's last record"
        return [tp for tp in positions if tp.offset >= 0]

    def _call(self, function: object, *args: object) -> None:
        """Call a transactional API function, retrying while the error says retriable."""
        assert callable(function)
        for attempt in range(call_retries_max):
            try:
                function(*args)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if (
                    error.retriable()
                    and error.code() != KafkaError._TIMED_OUT
                    and attempt + 1 < call_retries_max
                ):
                    self._event(
                        "retriable error", logging.WARNING,
                        call=getattr(function, "__name__", str(function)), error=str(error),
                    )  # fmt: skip
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise

    # -- recovery ----------------------------------------------------------------------

    def _recover(self, error: KafkaError, *, rewind: bool = True) -> None:
        self.stats.aborts += 1
        if self.observer is not None:
            self.observer.aborted("aborted")
        timed_out = error.code() == KafkaError._TIMED_OUT
        if error.txn_requires_abort() and not timed_out:
            self._event("transaction aborted", logging.WARNING, error=str(error))
            try:
                self.producer.abort_transaction(transaction_call_timeout_s)
            except KafkaException as abort_exc:
                self._event("abort failed: producer recreated", logging.ERROR, error=str(abort_exc))
                self._restart_producer()
        else:
            self._event("transaction failed: producer recreated", logging.ERROR, error=str(error))
            self._restart_producer()
        if rewind:
            self._rewind()

    def _restart_producer(self) -> None:
        self.stats.producer_restarts += 1
        if self.observer is not None:
            self.observer.aborted("producer_restarted")
        self.producer.flush(0)
        self.producer = self._new_producer()

    def _rewind(self) -> None:
        """Seek to the committed offsets and rebuild the processor's state from the logs."""
        if not self.assignment:
            return
        self._seek_committed()
        self.processor.revoke(list(self.assignment))
        self.processor.assign(self.consumer, list(self.assignment))

    def _seek_committed(self) -> None:
        if not self.assignment:
            return
        committed = self.consumer.committed(self.assignment, timeout=transaction_call_timeout_s)
        for tp in committed:
            offset = OFFSET_BEGINNING if tp.offset == OFFSET_INVALID else tp.offset
            try:
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                # Not fetched yet: its first fetch starts at the committed offset anyway.
                if exc.args[0].code() != KafkaError._STATE:
                    raise


def configure_service_logging(process: str) -> None:
    """A `tradex run ...` service's logs (JSON lines on stderr, or TRADEX_LOG_FILE) and
    traces (the OTEL_* variables): call before building the stage."""
    logs.setup(process)
    tracing.configure(f"tradex-{process}")


def run_until_signalled(stage: TransactionalStage, idle_s_max: float | None) -> StageStats:
    """Run a service's stage until SIGINT/SIGTERM (finishing the current batch) or idle."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logs.event(log, "signal: stopping after the current batch", signal=signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stage.run(stop, idle_s_max=idle_s_max)
