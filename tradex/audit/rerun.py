"""The matching re-run: ``order-requests`` through fresh engines, compared byte for byte.

For every ``order-requests`` partition p, its inputs up to the matcher group's committed
position (the inputs whose outputs are on the log: offsets and outputs commit in one
transaction; the end of the partition if the group never committed) go through a fresh
:class:`~tradex.matching.partition.PartitionEngine` — the service's own code, the C fold —
and what it writes is compared with the log, per output stream of ``matcher/<p>``:
``engine-events[p]`` and, in every ``settlements`` partition, the records whose envelope
producer is ``matcher/<p>`` (the scan's chains, :mod:`.scan`). Each stream is compared as
one concatenation of its records (one ``memcmp``); on a difference, the first differing
record is named (``rerun``). ``tradex matching verify`` does the same per partition,
record by record; this is its fast form over the scan the audit already made: the
streams are compared by their chain heads first (``rerun_matching``'s doc), record by
record only where they differ.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradex.audit.findings import Findings
from tradex.audit.scan import Gathered, fingerprints_of
from tradex.infra.stage import Output
from tradex.log.batch import FLAG_KEY_NULL, FLAG_VALUE_NULL, RecordBatch
from tradex.log.source import LogSource, Place
from tradex.log.topics import (
    DEAD_LETTERS,
    ENGINE_EVENTS,
    MATCHER_GROUP,
    ORDER_REQUESTS,
    SETTLEMENTS,
)
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, PartitionEngine, Topics
from tradex.matching.verify import summary
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec

LOGICAL_TOPICS = Topics(ORDER_REQUESTS, ENGINE_EVENTS, SETTLEMENTS, DEAD_LETTERS)
# Inputs folded per apply(): the fold's C calls hold the GIL for a whole batch, so beside the
# scan (start_rerun_thread) a smaller batch lets the scan's thread back in sooner (the
# outputs do not depend on batch boundaries).
RERUN_BATCH_MAX = 1_000


@dataclass
class RerunFigures:
    inputs: int = 0
    outputs: int = 0
    seconds: float = 0.0
    input_ends: dict[int, int] = field(default_factory=dict)  # per partition
    settlement_partitions: int = 0
    cpu_seconds: float = 0.0  # of the thread that ran it (a child process: its threads)

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0


def input_ends(source: LogSource, ends: Mapping[Place, int]) -> dict[int, int]:
    """Per ``order-requests`` partition, how far to re-run: the matcher group's committed
    position, else (never committed, or a source without groups) the end."""
    partitions = [p for (topic, p) in ends if topic == ORDER_REQUESTS]
    try:
        committed = source.committed(MATCHER_GROUP, ORDER_REQUESTS, partitions)
    except Exception:  # an archive may hold no consumer groups
        committed = {}
    found = {}
    for p in partitions:
        end = ends[(ORDER_REQUESTS, p)]
        position = committed.get(p, -1)
        found[p] = end if position < 0 else min(position, end)
    return found


Stream = tuple[str, int, str]  # (topic, partition, producer), as the scan's chains


class RerunStopped(Exception):
    """The re-run was asked to stop (the audit beside it failed)."""


@dataclass
class Heads:
    """What a re-run leaves: each output stream's chain head, and its figures."""

    heads: dict[Stream, bytes]
    figures: RerunFigures


def rerun_heads(
    source: LogSource,
    codec: Codec,
    ends: Mapping[Place, int],
    config: BookConfig | None = None,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> Heads:
    """Re-run every ``order-requests`` partition up to its matcher-committed end; the chain
    head of every stream the engines write (``ZERO_HASH`` for an empty one). ``stop`` set:
    :class:`RerunStopped` at the next batch."""
    config = config or BookConfig()
    settlement_partitions = sum(1 for (topic, _p) in ends if topic == SETTLEMENTS)
    figures = RerunFigures(input_ends=input_ends(source, ends),
                           settlement_partitions=settlement_partitions)  # fmt: skip
    started, cpu_started = time.perf_counter(), time.thread_time()
    heads: dict[Stream, bytes] = {}
    for partition, end in sorted(figures.input_ends.items()):
        engine = _engine(partition, codec, settlement_partitions, config)
        for inputs, outputs in _count(source, engine, end):
            if stop is not None and stop.is_set():
                raise RerunStopped(f"stopped at order-requests[{partition}]")
            figures.inputs += inputs
            figures.outputs += outputs
            if progress is not None:
                progress(inputs)
        heads[(ENGINE_EVENTS, partition, "")] = engine.engine_prev
        for s in range(settlement_partitions):
            heads[(SETTLEMENTS, s, engine.producer)] = engine.settle_prev.get(s, ZERO_HASH)
    figures.seconds = time.perf_counter() - started
    figures.cpu_seconds = time.thread_time() - cpu_started
    return Heads(heads, figures)


def rerun_in_child(
    reopen: Callable[[], tuple[LogSource, Codec]],
    ends: Mapping[Place, int],
    config: BookConfig | None = None,
) -> Heads:
    """:func:`rerun_heads` with a source and codec ``reopen`` makes (run in a child process
    by :func:`start_rerun`: ``reopen`` must pickle)."""
    source, codec = reopen()
    cpu_started = time.process_time()
    with source:
        ran = rerun_heads(source, codec, ends, config)
    ran.figures.cpu_seconds = time.process_time() - cpu_started  # its reader's threads too
    return ran


def start_rerun(
    reopen: Callable[[], tuple[LogSource, Codec]],
    ends: Mapping[Place, int],
    config: BookConfig | None,
) -> tuple[ProcessPoolExecutor, Future[Heads]]:
    """The re-run in a fresh process (spawned: no thread or Kafka handle of this one is
    copied), beside the scan: the engine holds the GIL, a process does not share it."""
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    return pool, pool.submit(rerun_in_child, reopen, dict(ends), config)


def start_rerun_thread(
    source: LogSource,
    codec: Codec,
    ends: Mapping[Place, int],
    config: BookConfig | None,
) -> tuple[Future[Heads], threading.Event]:
    """:func:`rerun_heads` on a thread of its own, beside the scan and the checks: it reads
    ``order-requests`` with its own reader; the scan's reader, decoder and hashing and the
    checks' numpy release the GIL, the fold mostly holds it. Setting the event stops it at
    its next batch (the audit failed: nobody will judge it)."""
    stop = threading.Event()
    pool = ThreadPoolExecutor(1, "audit-rerun")
    future = pool.submit(rerun_heads, source, codec, dict(ends), config, None, stop)
    pool.shutdown(wait=False)  # the worker finishes the re-run, then ends
    return future, stop


def judge(
    source: LogSource,
    codec: Codec,
    found: Gathered,
    ran: Heads,
    out: Findings,
    config: BookConfig | None = None,
) -> None:
    """Each stream is identical to the log's when the re-run's chain head equals the log's
    and the log's chain is intact (every hash links all the bytes before it after the
    header; headers are checked by decoding). Where a stream differs, its partition runs
    again keeping the outputs, to name the first differing record."""
    config = config or BookConfig()
    differ: dict[int, list[Stream]] = {}
    for stream, head in ran.heads.items():
        if found.heads.get(stream, ZERO_HASH) != head or stream in found.broken:
            partition = int(stream[2].rsplit("/", 1)[-1]) if stream[2] else stream[1]
            differ.setdefault(partition, []).append(stream)
    outputs = {s for s in found.heads if s[0] in (ENGINE_EVENTS, SETTLEMENTS)}
    for stream in sorted(outputs - ran.heads.keys()):  # written by no matcher re-run
        out.add("rerun", int(found.chains[stream][0]),
                f"records of a stream no matcher of the re-run writes ({stream[2] or stream[0]})")  # fmt: skip
    for partition, streams in sorted(differ.items()):
        end = ran.figures.input_ends[partition]
        _name_differences(source, codec, found, partition, end,
                          ran.figures.settlement_partitions, config, streams, out)  # fmt: skip


def rerun_matching(
    source: LogSource,
    codec: Codec,
    found: Gathered,
    ends: Mapping[Place, int],
    out: Findings,
    config: BookConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> RerunFigures:
    """Re-run (in this process) and judge; findings go to ``out``."""
    ran = rerun_heads(source, codec, ends, config, progress)
    judge(source, codec, found, ran, out, config)
    return ran.figures


def _engine(
    partition: int, codec: Codec, settlement_partitions: int, config: BookConfig
) -> PartitionEngine:
    return PartitionEngine(
        partition, codec, LOGICAL_TOPICS, max(settlement_partitions, 1),
        OutputBuffers(config.orders_max), config,
    )  # fmt: skip


def _run(
    source: LogSource, engine: PartitionEngine, end: int
) -> Iterator[tuple[int, list[Output]]]:
    """(inputs, outputs) per batch of ``order-requests[engine.partition]`` below ``end``."""
    for batch, columns in _inputs(source, engine.partition, end):
        yield len(batch), engine.apply_columns(*columns)


def _count(source: LogSource, engine: PartitionEngine, end: int) -> Iterator[tuple[int, int]]:
    """:func:`_run` without building the outputs (only the engine's chain tails advance:
    :meth:`PartitionEngine.count_columns`): (inputs, outputs) per batch."""
    for batch, columns in _inputs(source, engine.partition, end):
        yield len(batch), engine.count_columns(*columns)


Columns = tuple[list[int], list[Any], list[Any], Callable[[int], int]]


def _inputs(source: LogSource, partition: int, end: int) -> Iterator[tuple[RecordBatch, Columns]]:
    """Batches of ``order-requests[partition]`` below ``end``, each with its inputs as
    ``apply_columns`` takes them."""
    if end <= 0:
        return
    place = (ORDER_REQUESTS, partition)
    for batch in source.read_columns({place: 0}, {place: end}, RERUN_BATCH_MAX):
        columns: Columns = (
            batch.offset.tolist(),
            _items(batch.keys, batch.key_offsets, batch.flags, FLAG_KEY_NULL),
            _items(batch.values, batch.value_offsets, batch.flags, FLAG_VALUE_NULL),
            lambda i, b=batch: int(b.timestamp_ms[i]),  # type: ignore[misc]
        )
        yield batch, columns


def _name_differences(
    source: LogSource, codec: Codec, found: Gathered, partition: int, end: int,
    settlement_partitions: int, config: BookConfig, differ: list[tuple[str, int, str]],
    out: Findings,
) -> None:  # fmt: skip
    """Run ``partition`` again keeping the outputs of the streams that differ; name the
    first differing record of each."""
    engine = _engine(partition, codec, settlement_partitions, config)
    kept: dict[tuple[str, int, str], list[bytes]] = {stream: [] for stream in differ}
    for _inputs, outputs in _run(source, engine, end):
        for o in outputs:
            if o.topic == ENGINE_EVENTS:
                stream = (ENGINE_EVENTS, partition, "")
            elif o.topic == SETTLEMENTS:
                stream = (SETTLEMENTS, o.partition, engine.producer)
            else:
                continue
            values = kept.get(stream)
            if values is not None:
                values.append(o.value)
    for stream, values in kept.items():
        compare(codec, found, stream, values, out)


def _items(data: bytes, offsets: np.ndarray, flags: np.ndarray, null: int) -> list[Any]:
    """The items of a concatenation as bytes (None where ``flags`` mark them null)."""
    bounds = offsets.tolist()
    items: list[Any] = [data[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]
    for i in np.flatnonzero(flags & null).tolist():
        items[i] = None
    return items


def compare(
    codec: Codec,
    found: Gathered,
    stream: tuple[str, int, str],
    expected: list[bytes],
    out: Findings,
) -> bool:
    """The log's records of ``stream`` against the re-run's, by fingerprint (length, header,
    hash: see :class:`~tradex.audit.scan.Fingerprints`); a finding at the first
    difference. True if identical."""
    gs = found.chains.get(stream, np.zeros(0, np.int64))
    logged = found.fingerprints(gs)
    at = logged.first_difference(fingerprints_of(expected))
    if at < 0:
        return True
    topic, partition, producer = stream
    whose = f" of {producer}" if producer else ""
    n_log = len(logged)
    if at < min(n_log, len(expected)):
        got = found.value(int(gs[at]))
        out.add("rerun", int(gs[at]),
                f"the matching re-run writes a different record{whose} here: expected "
                f"{summary(codec, expected[at])}; the log has {summary(codec, got)}")  # fmt: skip
    elif n_log > len(expected):
        out.add("rerun", int(gs[at]),
                f"the log holds {n_log - len(expected)} records{whose} the matching re-run "
                "does not write, from here")  # fmt: skip
    else:
        out.add("rerun", -1,
                f"the matching re-run writes {len(expected) - n_log} records{whose} the log "
                f"does not hold (after its {n_log} records), the first: "
                f"{summary(codec, expected[n_log])}", (topic, partition))  # fmt: skip
    return False
