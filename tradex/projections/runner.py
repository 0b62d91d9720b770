"""Driving a projector: read from its positions, decode, dead-letter poison, apply.

    run = ProjectorRun(projector, KafkaLog(settings), codec, dead_letters)
    run.start()                         # open the sink, follow the log from its positions
    while ...: run.step()               # one batch: whatever is there, up to a bound
    run.close()

A batch is what the log has ready (at most ``batch_records_max`` records, waiting at most
``idle_wait_s`` for the first). Each record is decoded with the codec's C path; a record
that does not decode, fails validation or has no business on its topic is a *poison*
record: it is written to ``dead-letters`` (and flushed) before the batch that moves past
it is applied, and the projector keeps going. Anything else that fails — the fold, the
sink — stops the run: a projector never skips what it cannot explain.

A *columnar* projector (``Projector.columnar``) gets its batches as columns: the records
are read in C (``LogSource.follow_batches``) and its record types decoded in C into
columns (:class:`~tradex.schemas.columns.ColumnReader`), no Python object per record. The
few records the columnar decoder does not vouch for — flagged by a ``validate()`` check,
corrupt, of a type or schema version it does not serve, or on a topic their type has no
business on — go through ``Codec.decode_domain`` one by one, so exactly the same records
are dead-lettered, with the same reasons, as on the row path; a record of an older
schema version that decodes is re-encoded with the newest and decoded into the columns.

``until`` (rebuilds, verification): positions not to go past; the run is *done* once
every place has reached its bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from confluent_kafka import Producer

from tradex.infra.kafka import admin_timeout_s, producer_config
from tradex.infra.settings import Settings
from tradex.log.batch import FLAG_VALUE_NULL, RecordBatch
from tradex.log.dead_letters import dead_letter
from tradex.log.ids import EventSource
from tradex.log.source import LogRecord, LogSource, Place, Tail, read_idle_s_max
from tradex.log.topics import DEAD_LETTERS, ENGINE_EVENTS, TOPIC_TYPES
from tradex.observability import logs, tracing
from tradex.observability.metrics import ProjectorMetrics, sample
from tradex.projections.projector import (
    BATCH_RECORDS_MAX,
    COLUMNAR_BATCH_RECORDS_MAX,
    ColumnarBatch,
    Event,
    Projector,
)
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields
from tradex.schemas.columns import (
    STATUS_CORRUPT,
    STATUS_FLAGGED,
    STATUS_IGNORED,
    STATUS_UNSERVED,
    ColumnReader,
    DecodedBatch,
)

log = logging.getLogger(__name__)

batch_records_max = BATCH_RECORDS_MAX  # records per batch (one sink transaction), row projectors
idle_wait_s = 0.05  # how long a step waits for a first record
LAG_MS_MAX = 60_000  # lags are counted per millisecond up to this; longer ones in the last bucket


class LagHistogram:
    """How long records took from being written (their Kafka timestamp: when the upstream
    stage produced them, before its transaction committed) to being applied, per ms."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (LAG_MS_MAX + 1)
        self.total = 0

    def add(self, records: list[LogRecord], now_ms: int) -> None:
        counts = self.counts
        for record in records:
            lag = now_ms - record.timestamp_ms
            counts[lag if 0 <= lag < LAG_MS_MAX else (0 if lag < 0 else LAG_MS_MAX)] += 1
        self.total += len(records)

    def add_stamps(self, timestamps_ms: np.ndarray, now_ms: int) -> None:
        """:meth:`add` of records given by their Kafka timestamps (one numpy pass)."""
        if not len(timestamps_ms):
            return
        lags = np.clip(now_ms - timestamps_ms, 0, LAG_MS_MAX)
        # counted over the batch's own range of lags (a few ms wide, usually), not over
        # every bucket: a live batch of a hundred records used to zero and scan 60,001
        low = int(lags.min())
        found = np.bincount(lags - low)
        counts = self.counts
        for at, count in zip(
            np.flatnonzero(found).tolist(), found[found > 0].tolist(), strict=True
        ):
            counts[low + at] += count
        self.total += len(timestamps_ms)

    def percentile(self, fraction: float) -> int:
        """The smallest lag (ms) at or below which ``fraction`` of the records were."""
        assert 0 < fraction <= 1, fraction
        if not self.total:
            return 0
        wanted = fraction * self.total
        seen = 0
        for lag, count in enumerate(self.counts):
            seen += count
            if seen >= wanted:
                return lag
        return LAG_MS_MAX


@dataclass
class RunStats:
    batches: int = 0
    events: int = 0
    dead_letters: int = 0
    skipped: int = 0  # records of types the projector ignores (not decoded)
    apply_s: float = 0.0  # time spent in the sink's apply (fold + write)
    started_monotonic: float = field(default_factory=time.monotonic)
    last_event_time_ns: int = 0  # event time of the newest event applied
    lag: LagHistogram = field(default_factory=LagHistogram)


class DeadLetters:
    """Writes poison records to ``dead-letters`` and waits until they are stored."""

    def __init__(self, settings: Settings, codec: Codec, producer_name: str) -> None:
        self.settings = settings
        self.codec = codec
        self.producer_name = producer_name
        self.topic = settings.topic(DEAD_LETTERS)
        self._producer: Producer | None = None

    def write(self, records: list[tuple[LogRecord, str, str]]) -> None:
        """Each (record, reason, error) to dead-letters; returns once all are acknowledged."""
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings))
        for record, reason, error in records:
            logs.event(
                log, "dead letter", logging.WARNING, stage=self.producer_name,
                topic=record.topic, partition=record.partition, offset=record.offset,
                reason=reason, error=error,
            )  # fmt: skip
            output = dead_letter(
                self.codec, self.topic, self.producer_name, EventSource.PROJECTOR_DEAD_LETTERS,
                self.settings.topic(record.topic), record.partition, record.offset,
                record.timestamp_ms, record.key, record.value, reason, error,
            )  # fmt: skip
            self._producer.produce(output.topic, output.value, output.key)
        if self._producer.flush(admin_timeout_s):
            raise TimeoutError("dead letters not acknowledged")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(admin_timeout_s)
            self._producer = None


class ProjectorRun:
    """One projector following the log (see the module doc)."""

    def __init__(
        self,
        projector: Projector,
        source: LogSource,
        codec: Codec,
        dead_letters: DeadLetters,
        *,
        until: Mapping[Place, int] | None = None,
        batch_records: int | None = None,
        track_lag: bool = False,
    ) -> None:
        """``batch_records``: records per batch at most (None: the projector's default; a
        row projector takes at most BATCH_RECORDS_MAX, a columnar one
        COLUMNAR_BATCH_RECORDS_MAX). ``track_lag``: count each record's lag from its Kafka
        timestamp to being applied (a live projector; a rebuild's records are old by
        design)."""
        limit = COLUMNAR_BATCH_RECORDS_MAX if projector.columnar else BATCH_RECORDS_MAX
        if batch_records is None:
            batch_records = projector.batch_records
        assert 0 < batch_records <= COLUMNAR_BATCH_RECORDS_MAX, batch_records
        batch_records = min(batch_records, limit)
        self.projector = projector
        self.source = source
        self.codec = codec
        self.dead_letters = dead_letters
        self.until = dict(until) if until is not None else None
        self.batch_records = batch_records
        self.track_lag = track_lag
        # A live projector's metrics (a rebuild's records are old by design, as for lag).
        self.metrics = ProjectorMetrics(projector.name, ENGINE_EVENTS) if track_lag else None
        self.stats = RunStats()
        self.positions: dict[Place, int] = {}
        self._tail: Tail | None = None
        self._types = {topic: TOPIC_TYPES[topic] for topic in projector.topics}
        self._allowed: dict[tuple[type, tuple[str, ...]], np.ndarray] = {}
        self._skipped = frozenset().union(
            *(codec.headers_of(cls.__name__) for cls in projector.ignores)
        )
        self._columns: ColumnReader | None = None
        if projector.columnar:
            served = set(projector.column_specs) | set(projector.ignores)
            missing = {t for topic in projector.topics for t in TOPIC_TYPES[topic]} - served
            assert not missing, f"{projector.name}: neither decoded nor ignored: {missing}"
            self._columns = ColumnReader(codec, projector.column_specs, projector.ignores)

    def start(self) -> None:
        stored = self.projector.open()
        places = [
            (topic, partition)
            for topic in self.projector.topics
            for partition in range(self.source.partitions(topic))
        ]
        unknown = set(stored) - set(places)
        if unknown:
            raise RuntimeError(f"{self.projector.name}: stored positions of unknown {unknown}")
        self.positions = {place: stored.get(place, 0) for place in places}
        if self.until is not None:
            missing = set(places) - set(self.until)
            assert not missing, f"no bound for {missing}"
            ahead = {p for p in places if self.positions[p] > self.until[p]}
            if ahead:
                raise RuntimeError(f"{self.projector.name} is already past the bound at {ahead}")
        # both paths read batches: the C reader where the source has one, which also
        # carries the records' traceparent headers (a traced order's projector span)
        self._tail = self.source.follow_batches(self.positions)

    @property
    def done(self) -> bool:
        """Every place has reached ``until`` (never, without a bound)."""
        if self.until is None:
            return False
        return all(self.positions[place] >= bound for place, bound in self.until.items())

    def lag(self, ends: Mapping[Place, int]) -> int:
        """Records (and markers) between the positions and ``ends``."""
        return sum(max(0, ends[place] - position) for place, position in self.positions.items())

    def _moved(self, tail: Tail) -> dict[Place, int]:
        """The places the last poll moved, to where (never past ``until``)."""
        until = self.until
        moved: dict[Place, int] = {}
        for place, position in self.positions.items():
            reached = tail.reached(place)
            if until is not None:
                reached = min(reached, until[place])
            if reached != position:
                moved[place] = reached
        return moved

    def step(self, wait_s: float = idle_wait_s) -> int:
        """Read, decode and apply one batch; return the number of records it consumed."""
        if self._columns is not None:
            return self._step_columns(wait_s, self._columns)
        tail = self._tail
        assert tail is not None, "start() first"
        batch = tail.poll_batch(wait_s, self.batch_records)
        records = batch.records()
        until = self.until
        positions = self.positions
        moved = self._moved(tail)
        if not moved:
            assert not records or until is not None, "records without progress"
            if self.metrics is not None:
                self.metrics.idle()
            return 0
        decode = self.codec.decode_domain
        types = self._types
        skipped = self._skipped
        ignored = 0
        events: list[Event] = []
        poison: list[tuple[LogRecord, str, str]] = []
        for record in records:
            if until is not None and record.offset >= until[(record.topic, record.partition)]:
                continue
            value = record.value
            if value is None:
                poison.append((record, "empty", "record without a value"))
                continue
            if value[:5] in skipped:
                ignored += 1
                continue
            try:
                envelope, body = decode(value)
            except CodecError as exc:
                poison.append((record, "undecodable", str(exc)))
                continue
            if type(body) not in types[record.topic]:
                poison.append(
                    (record, "unexpected type", f"{type(body).__name__} on {record.topic}")
                )
                continue
            events.append(Event(record.topic, record.partition, record.offset, envelope, body))
        if poison:
            self.dead_letters.write(poison)
            self.stats.dead_letters += len(poison)
        started = time.perf_counter()
        started_ns = time.time_ns()
        self.projector.apply(events, moved)
        stats = self.stats
        stats.apply_s += time.perf_counter() - started
        if batch.traceparents:
            self._trace(batch, started_ns)
        stats.batches += 1
        stats.events += len(events)
        stats.skipped += ignored
        if events:
            stats.last_event_time_ns = events[-1].envelope.event_time_ns
        if self.track_lag and records:
            stats.lag.add(records, time.time_ns() // 1_000_000)
        if self.metrics is not None:
            self.metrics.applied(
                len(records), len(events), len(poison), time.perf_counter() - started,
                records[0].timestamp_ms if records else 0,
                [r.timestamp_ms for r in records[sample(len(records))] if r.topic == ENGINE_EVENTS],
            )  # fmt: skip
        positions.update(moved)
        return len(records)

    def _step_columns(self, wait_s: float, reader: ColumnReader) -> int:
        """:meth:`step` of a columnar projector (see the module doc)."""
        tail = self._tail
        assert tail is not None, "start() first"
        batch = tail.poll_batch(wait_s, self.batch_records)
        moved = self._moved(tail)
        if not moved:
            assert not len(batch) or self.until is not None, "records without progress"
            if self.metrics is not None:
                self.metrics.idle()
            return 0
        skip = np.zeros(len(batch), np.bool_)
        if self.until is not None:  # records past the bound: not this run's
            skip |= batch.offset >= batch.bounds(self.until, 0)
        empty = ((batch.flags & FLAG_VALUE_NULL) != 0) & ~skip
        poison = [
            (batch.record(i), "empty", "record without a value")
            for i in np.flatnonzero(empty).tolist()
        ]
        skip |= empty
        decoded, ignored, more_poison = self._decode_columns(batch, reader, skip)
        poison += more_poison
        if poison:
            self.dead_letters.write(poison)
            self.stats.dead_letters += len(poison)
        columnar = ColumnarBatch(batch, decoded.types)
        started = time.perf_counter()
        started_ns = time.time_ns()
        self.projector.apply_columns(columnar, moved)
        stats = self.stats
        stats.apply_s += time.perf_counter() - started
        if batch.traceparents:
            self._trace(batch, started_ns)
        stats.batches += 1
        stats.events += len(columnar)
        stats.skipped += ignored
        if decoded.types:  # the event time of the batch's last event
            last = max(decoded.types.values(), key=lambda columns: int(columns.rows[-1]))
            stats.last_event_time_ns = int(np.asarray(last["event_time_ns"])[-1])
        if self.track_lag and len(batch):
            stats.lag.add_stamps(batch.timestamp_ms, time.time_ns() // 1_000_000)
        if self.metrics is not None:
            self._observe_columns(batch, len(columnar), len(poison), started)
        self.positions.update(moved)
        return len(batch)

    def _observe_columns(
        self, batch: RecordBatch, events: int, dead_letters: int, started: float
    ) -> None:
        """A columnar batch's metrics (a sample of its records' log times, not each)."""
        assert self.metrics is not None
        count = len(batch)
        trades = ()
        if ENGINE_EVENTS in batch.topics:
            picked = sample(count)
            is_trade = batch.topic_index[picked] == batch.topics.index(ENGINE_EVENTS)
            trades = batch.timestamp_ms[picked][is_trade].tolist()
        oldest_ms = int(batch.timestamp_ms[0]) if count else 0
        self.metrics.applied(
            count, events, dead_letters, time.perf_counter() - started, oldest_ms, trades
        )

    def _trace(self, batch: RecordBatch, started_ns: int) -> None:
        """A span per traced record of the batch just applied (its rows are written), from
        the apply's start (tradex.observability.tracing)."""
        name = f"{self.projector.name} projector"
        for row, value in batch.traced():
            topic = batch.topics[int(batch.topic_index[row])]  # the logical name
            partition, offset = int(batch.partition[row]), int(batch.offset[row])
            tracing.record_span(name, topic, partition, offset, value, started_ns)

    def _allowed_topics(self, cls: type, topics: tuple[str, ...]) -> np.ndarray:
        """Per topic index of a batch's ``topics``: whether ``cls`` may be on it (kept per
        type and topic list: a live projector asks it for every type of every batch)."""
        found = self._allowed.get((cls, topics))
        if found is None:
            found = np.array([cls in self._types[topic] for topic in topics], np.bool_)
            self._allowed[(cls, topics)] = found
        return found

    def _decode_columns(
        self, batch: RecordBatch, reader: ColumnReader, skip: np.ndarray
    ) -> tuple[DecodedBatch, int, list[tuple[LogRecord, str, str]]]:
        """The batch decoded into columns, the records of ignored types, and the poison."""
        decoded = reader.decode(batch.values, batch.value_offsets, skip)
        status = decoded.status
        doubtful = (
            (status == STATUS_FLAGGED) | (status == STATUS_UNSERVED) | (status == STATUS_CORRUPT)
        )
        for cls, columns in decoded.types.items():  # a type on a topic it has no business on
            allowed = self._allowed_topics(cls, batch.topics)
            wrong = ~allowed[batch.topic_index[columns.rows]]
            if wrong.any():
                doubtful[columns.rows[wrong]] = True
        ignored = int(np.count_nonzero(status == STATUS_IGNORED))
        poison: list[tuple[LogRecord, str, str]] = []
        dropped = np.zeros(len(batch), np.bool_)
        renewed: dict[int, bytes] = {}
        for i in np.flatnonzero(doubtful).tolist():
            record = batch.record(i)
            try:
                envelope, body = self.codec.decode_domain(record.value or b"")
            except CodecError as exc:
                poison.append((record, "undecodable", str(exc)))
                dropped[i] = True
                continue
            if type(body) not in self._types[record.topic]:
                poison.append(
                    (record, "unexpected type", f"{type(body).__name__} on {record.topic}")
                )
                dropped[i] = True
            elif status[i] == STATUS_CORRUPT:
                raise AssertionError(f"{record.topic}[{record.partition}]@{record.offset}: "
                                     "the columnar decoder refuses what decode_domain accepts")  # fmt: skip
            elif status[i] == STATUS_UNSERVED and type(body) in self.projector.ignores:
                ignored += 1
                dropped[i] = True
            elif status[i] == STATUS_UNSERVED:  # an older schema version: re-encoded
                assert envelope.event_time_ns == body.event_time_ns, "cannot re-encode"
                fields = EnvelopeFields(
                    envelope.event_id, envelope.causation_id, envelope.correlation_id,
                    envelope.producer, envelope.seq, envelope.trace_parent,
                )  # fmt: skip
                renewed[i] = self.codec.encode_domain(body, fields, envelope.prev_hash).data
        if not renewed and not dropped.any():
            return decoded, ignored, poison
        values, offsets = batch.values, batch.value_offsets
        if renewed:
            values, offsets = _replaced(batch, renewed)
        again = reader.decode(values, offsets, skip | dropped)
        for i in renewed:
            assert again.status[i] in (0, STATUS_FLAGGED), f"re-encoded record {i} not decoded"
        return again, ignored, poison

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        self.projector.close()


def _replaced(batch: RecordBatch, values: dict[int, bytes]) -> tuple[bytes, np.ndarray]:
    """The batch's values with those of some records replaced (the rare path)."""
    view = memoryview(batch.values)
    ends = batch.value_offsets.tolist()
    pieces = [values.get(i, view[ends[i] : ends[i + 1]]) for i in range(len(batch))]
    offsets = np.zeros(len(batch) + 1, np.int64)
    np.cumsum([len(piece) for piece in pieces], out=offsets[1:])
    return b"".join(pieces), offsets


def run_to_end(run: ProjectorRun, progress: Any = None) -> RunStats:
    """Step ``run`` (which must have ``until``) until it is done; ``progress(run)`` after
    each batch."""
    assert run.until is not None, "run_to_end needs a bound"
    idle_since = time.monotonic()
    while not run.done:
        if run.step(0.2):
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > read_idle_s_max:
            missing = {p: b for p, b in run.until.items() if run.positions[p] < b}
            raise TimeoutError(f"{run.projector.name}: the log does not reach {missing}")
        if progress is not None:
            progress(run)
    return run.stats
