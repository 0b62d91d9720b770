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

``until`` (rebuilds, verification): positions not to go past; the run is *done* once
every place has reached its bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from tradex.infra.kafka import admin_timeout_s, producer_config
from tradex.infra.settings import Settings
from tradex.log.dead_letters import dead_letter
from tradex.log.ids import EventSource
from tradex.log.source import LogRecord, LogSource, Place, Tail, read_idle_s_max
from tradex.log.topics import DEAD_LETTERS, TOPIC_TYPES
from tradex.projections.projector import Event, Projector
from tradex.schemas.codec import Codec, CodecError

log = logging.getLogger(__name__)

batch_records_max = 20_000  # records per batch (one sink transaction)
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
            log.warning(
                "dead letter %s[%d]@%d: %s: %s",
                record.topic, record.partition, record.offset, reason, error,
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
        batch_records: int = batch_records_max,
        track_lag: bool = False,
    ) -> None:
        """``track_lag``: count each record's lag from its Kafka timestamp to being applied
        (a live projector; a rebuild's records are old by design)."""
        assert 0 < batch_records <= batch_records_max, batch_records
        self.projector = projector
        self.source = source
        self.codec = codec
        self.dead_letters = dead_letters
        self.until = dict(until) if until is not None else None
        self.batch_records = batch_records
        self.track_lag = track_lag
        self.stats = RunStats()
        self.positions: dict[Place, int] = {}
        self._tail: Tail | None = None
        self._types = {topic: TOPIC_TYPES[topic] for topic in projector.topics}
        self._skipped = frozenset().union(
            *(codec.headers_of(cls.__name__) for cls in projector.ignores)
        )

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
        self._tail = self.source.follow(self.positions)

    @property
    def done(self) -> bool:
        """Every place has reached ``until`` (never, without a bound)."""
        if self.until is None:
            return False
        return all(self.positions[place] >= bound for place, bound in self.until.items())

    def lag(self, ends: Mapping[Place, int]) -> int:
        """Records (and markers) between the positions and ``ends``."""
        return sum(max(0, ends[place] - position) for place, position in self.positions.items())

    def step(self, wait_s: float = idle_wait_s) -> int:
        """Read, decode and apply one batch; return the number of records it consumed."""
        tail = self._tail
        assert tail is not None, "start() first"
        records = tail.poll(wait_s, self.batch_records)
        until = self.until
        positions = self.positions
        moved: dict[Place, int] = {}
        for place, position in positions.items():
            reached = tail.reached(place)
            if until is not None:
                reached = min(reached, until[place])
            if reached != position:
                moved[place] = reached
        if not moved:
            assert not records or until is not None, "records without progress"
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
        self.projector.apply(events, moved)
        stats = self.stats
        stats.apply_s += time.perf_counter() - started
        stats.batches += 1
        stats.events += len(events)
        stats.skipped += ignored
        if events:
            stats.last_event_time_ns = events[-1].envelope.event_time_ns
        if self.track_lag and records:
            stats.lag.add(records, time.time_ns() // 1_000_000)
        positions.update(moved)
        return len(records)

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        self.projector.close()


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
