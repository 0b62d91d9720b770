"""Matcher snapshots (compacted ``matcher-snapshots``) and the rebuild on assignment.

A snapshot says: "the fold of ``order-requests[p]`` below ``next_offset`` is this state"
(:meth:`PartitionEngine.state_bytes`: books, hash-chain tails, trade counter). It is written
by the partition's single writer *inside the transaction that commits offset next_offset*,
so a visible snapshot never covers more input than the committed offsets. It is an
optimisation, never a source of truth: an unreadable or mismatching snapshot is skipped and
the partition replayed from the start.

Records: zlib-compressed state split into pieces of at most ``PIECE_BYTES_MAX`` (Kafka
refuses records over ~1 MB), each ``MAGIC | next_offset | index | count | bytes`` with key
``b"<partition>/<index>"`` on partition p. The pieces of one snapshot are consecutive (one
transaction, one writer); a reader takes the newest complete run in the log's tail.

Rebuild (:func:`rebuild`): restore the newest snapshot at or below the committed offset,
then re-run ``order-requests[p]`` from its ``next_offset`` up to the committed offset through
the same code as live processing, discarding the outputs (they are on the log already) —
which also recomputes the hash-chain tails exactly.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from tradex.infra.kafka import admin_timeout_s, consumer_config, read_partition
from tradex.infra.settings import Settings
from tradex.infra.stage import Output
from tradex.matching.partition import InputRecord, PartitionEngine, input_record
from tradex.matching.snapshot import SnapshotError

log = logging.getLogger(__name__)

MAGIC = b"TXMS"
_PIECE = struct.Struct(">4sqII")  # magic, next_offset, index, count
PIECE_BYTES_MAX = 512 * 1024
PIECES_MAX = 4_096
TAIL_RECORDS_START = 64  # a snapshot is looked for in the last N records, N growing x4
REPLAY_BATCH_MAX = 5_000  # input records folded per apply() during a replay


def snapshot_outputs(engine: PartitionEngine, topic: str) -> list[Output]:
    """The records of one snapshot of ``engine`` (to partition ``engine.partition``)."""
    packed = zlib.compress(engine.state_bytes(), 1)
    pieces = [packed[i : i + PIECE_BYTES_MAX] for i in range(0, len(packed), PIECE_BYTES_MAX)]
    assert 0 < len(pieces) <= PIECES_MAX, "snapshot too large"
    outputs = []
    for index, piece in enumerate(pieces):
        header = _PIECE.pack(MAGIC, engine.next_offset, index, len(pieces))
        key = f"{engine.partition}/{index}".encode()
        outputs.append(Output(topic, header + piece, key, engine.partition))
    return outputs


def complete_runs(values: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """(next_offset, compressed state) of every complete snapshot among records, in order."""
    current: list[bytes] = []
    current_next = -1
    for value in values:
        if len(value) < _PIECE.size:
            current = []
            continue
        magic, next_offset, index, count = _PIECE.unpack_from(value)
        if magic != MAGIC or not 0 <= index < count <= PIECES_MAX:
            current = []
            continue
        if index == 0:
            current, current_next = [], next_offset
        elif next_offset != current_next or index != len(current):
            current = []  # a fragment (older pieces left behind by compaction)
            continue
        current.append(value[_PIECE.size :])
        if len(current) == count:
            yield current_next, b"".join(current)
            current = []


def latest_snapshot(
    settings: Settings, topic: str, partition: int, below: int
) -> tuple[int, bytes] | None:
    """The newest complete snapshot with next_offset <= ``below``: (next_offset, state)."""
    probe = Consumer(consumer_config(settings, group_id="tradex-reader"))
    try:
        low, high = probe.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=admin_timeout_s
        )
    finally:
        probe.close()
    window = TAIL_RECORDS_START
    while True:
        start = max(low, high - window)
        found: tuple[int, bytes] | None = None
        values = (m.value() or b"" for m in read_partition(settings, topic, partition, start, high))
        for next_offset, packed in complete_runs(values):
            if next_offset <= below:
                found = (next_offset, packed)
        if found is not None:
            try:
                return found[0], zlib.decompress(found[1])
            except zlib.error as exc:
                log.warning("matcher snapshot of partition %d unreadable: %s", partition, exc)
                return None
        if start <= low:
            return None
        window *= 4


@dataclass
class RebuildReport:
    partition: int
    snapshot_offset: int  # -1: no snapshot used
    replayed: int  # input records re-run after the snapshot
    committed: int  # where live processing continues


def replay(settings: Settings, topic: str, engine: PartitionEngine, end: int) -> int:
    """Fold ``topic[engine.partition]`` from ``engine.next_offset`` up to ``end`` into the
    engine, discarding outputs; return the number of records folded."""
    folded = 0
    batch: list[InputRecord] = []
    for message in read_partition(settings, topic, engine.partition, engine.next_offset, end):
        batch.append(input_record(message))
        if len(batch) >= REPLAY_BATCH_MAX:
            engine.apply(batch)
            folded += len(batch)
            batch = []
    if batch:
        engine.apply(batch)
        folded += len(batch)
    return folded


def rebuild(
    settings: Settings,
    engine: PartitionEngine,
    *,
    order_requests: str,
    snapshots: str,
    committed: int,
    use_snapshot: bool = True,
) -> RebuildReport:
    """Bring a fresh ``engine`` to the state after ``order-requests[p]`` below ``committed``."""
    assert engine.next_offset == 0, "rebuild starts from a fresh engine"
    assert committed >= 0
    snapshot_offset = -1
    if use_snapshot and committed > 0:
        found = latest_snapshot(settings, snapshots, engine.partition, committed)
        if found is not None:
            try:
                engine.restore(found[1])
            except SnapshotError as exc:
                log.warning("matcher snapshot of partition %d skipped: %s", engine.partition, exc)
            else:
                assert engine.next_offset == found[0], "snapshot header and state disagree"
                snapshot_offset = found[0]
    replayed = replay(settings, order_requests, engine, committed) if committed > 0 else 0
    # Offsets skipped by the log (transaction markers) do not count: the engine continues
    # at the committed offset whatever the last record's offset was.
    engine.next_offset = max(engine.next_offset, committed)
    return RebuildReport(engine.partition, snapshot_offset, replayed, committed)
