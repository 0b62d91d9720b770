"""Matcher snapshots (compacted ``matcher-snapshots``) and the rebuild on assignment.

A snapshot says: "the fold of ``order-requests[p]`` below ``next_offset`` is this state"
(:meth:`PartitionEngine.state_bytes`: books, hash-chain tails, trade counter). It is written
by the partition's single writer *inside the transaction that commits offset next_offset*,
so a visible snapshot never covers more input than the committed offsets. It is an
optimisation, never a source of truth: an unreadable or mismatching snapshot is skipped and
the partition replayed from the start.

Records: :mod:`tradex.log.snapshot_log` (magic ``TXMS``, position ``next_offset``).

Rebuild (:func:`rebuild`): restore the newest snapshot at or below the committed offset,
then re-run ``order-requests[p]`` from its ``next_offset`` up to the committed offset through
the same code as live processing, discarding the outputs (they are on the log already) —
which also recomputes the hash-chain tails exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from tradex.infra.stage import Output
from tradex.log import snapshot_log
from tradex.log.snapshot_log import SnapshotLogError
from tradex.log.source import LogRecord, LogSource
from tradex.log.topics import MATCHER_SNAPSHOTS, ORDER_REQUESTS
from tradex.matching.partition import InputRecord, PartitionEngine
from tradex.matching.snapshot import SnapshotError

log = logging.getLogger(__name__)

MAGIC = b"TXMS"
REPLAY_BATCH_MAX = 5_000  # input records folded per apply() during a replay


def snapshot_outputs(engine: PartitionEngine, topic: str) -> list[Output]:
    """The records of one snapshot of ``engine`` (to partition ``engine.partition``)."""
    return snapshot_log.snapshot_outputs(
        topic, engine.partition, MAGIC, engine.next_offset, engine.state_bytes()
    )


def latest_snapshot(source: LogSource, partition: int, below: int) -> tuple[int, bytes] | None:
    """The newest complete snapshot with next_offset <= ``below``: (next_offset, state)."""
    try:
        return snapshot_log.latest(source, MATCHER_SNAPSHOTS, partition, MAGIC, below)
    except SnapshotLogError as exc:
        log.warning("matcher snapshot of partition %d unreadable: %s", partition, exc)
        return None


@dataclass
class RebuildReport:
    partition: int
    snapshot_offset: int  # -1: no snapshot used
    replayed: int  # input records re-run after the snapshot
    committed: int  # where live processing continues


def input_records(records: list[LogRecord]) -> list[InputRecord]:
    """``order-requests`` records as the engine takes them."""
    return [InputRecord(r.partition, r.offset, r.key, r.value, r.timestamp_ms) for r in records]


def input_batches(
    source: LogSource, partition: int, start: int, end: int
) -> Iterator[list[InputRecord]]:
    """``order-requests[partition]`` from ``start`` to ``end`` (exclusive), in batches of at
    most REPLAY_BATCH_MAX (the engine's outputs do not depend on batch boundaries)."""
    place = (ORDER_REQUESTS, partition)
    for batch in source.read_batches({place: start}, {place: end}, REPLAY_BATCH_MAX):
        yield input_records(batch)


def replay(source: LogSource, engine: PartitionEngine, end: int) -> int:
    """Fold ``order-requests[engine.partition]`` from ``engine.next_offset`` up to ``end``
    into the engine, discarding outputs; return the number of records folded."""
    folded = 0
    for batch in input_batches(source, engine.partition, engine.next_offset, end):
        engine.apply(batch)
        folded += len(batch)
    return folded


def rebuild(
    source: LogSource,
    engine: PartitionEngine,
    *,
    committed: int,
    use_snapshot: bool = True,
) -> RebuildReport:
    """Bring a fresh ``engine`` to the state after ``order-requests[p]`` below ``committed``."""
    assert engine.next_offset == 0, "rebuild starts from a fresh engine"
    assert committed >= 0
    snapshot_offset = -1
    if use_snapshot and committed > 0:
        found = latest_snapshot(source, engine.partition, committed)
        if found is not None:
            try:
                engine.restore(found[1])
            except SnapshotError as exc:
                log.warning("matcher snapshot of partition %d skipped: %s", engine.partition, exc)
            else:
                assert engine.next_offset == found[0], "snapshot header and state disagree"
                snapshot_offset = found[0]
    replayed = replay(source, engine, committed) if committed > 0 else 0
    # Offsets skipped by the log (transaction markers) do not count: the engine continues
    # at the committed offset whatever the last record's offset was.
    engine.next_offset = max(engine.next_offset, committed)
    return RebuildReport(engine.partition, snapshot_offset, replayed, committed)
