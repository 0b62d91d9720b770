"""Snapshots as records of a compacted topic, written inside a stage's transaction.

A snapshot is an optimisation, never a source of truth: it says "the fold of some log of
partition p below ``position`` is this payload". Its single writer produces it inside the
Kafka transaction that makes the log up to ``position`` visible, so a visible snapshot
never covers more than is committed.

Records: the zlib-compressed payload split into pieces of at most ``piece_bytes_max``
(Kafka refuses records over ~1 MB), each ``magic | position | index | count | bytes`` with
key ``b"<p>/<index>"`` on partition p (compaction keeps the newest piece per key). The
pieces of one snapshot are consecutive (one transaction, one writer); a reader takes the
newest complete run and skips fragments that compaction left behind.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

from tradex.infra.stage import Output
from tradex.log.source import LogSource

HEADER = struct.Struct(">4sqII")  # magic, position, index, count
piece_bytes_max = 512 * 1024
pieces_max = 4_096  # 2 GB compressed: far beyond a partition we would snapshot
tail_records_start = 64  # a snapshot is looked for in the last N records, N growing x4


class SnapshotLogError(ValueError):
    """A complete snapshot whose payload cannot be decompressed."""


def snapshot_outputs(
    topic: str, partition: int, magic: bytes, position: int, payload: bytes
) -> list[Output]:
    """The records of one snapshot of ``partition`` covering the log below ``position``."""
    assert len(magic) == 4, magic
    assert position >= 0, position
    packed = zlib.compress(payload, 1)
    pieces = [packed[i : i + piece_bytes_max] for i in range(0, len(packed), piece_bytes_max)]
    assert 0 < len(pieces) <= pieces_max, "snapshot too large"
    return [
        Output(
            topic,
            HEADER.pack(magic, position, index, len(pieces)) + piece,
            f"{partition}/{index}".encode(),
            partition,
        )
        for index, piece in enumerate(pieces)
    ]


def complete_runs(values: Iterable[bytes], magic: bytes) -> Iterator[tuple[int, bytes]]:
    """(position, compressed payload) of every complete snapshot among records, in order."""
    current: list[bytes] = []
    current_position = -1
    for value in values:
        if len(value) < HEADER.size:
            current = []
            continue
        found_magic, position, index, count = HEADER.unpack_from(value)
        if found_magic != magic or not 0 <= index < count <= pieces_max:
            current = []
            continue
        if index == 0:
            current, current_position = [], position
        elif position != current_position or index != len(current):
            current = []  # a fragment (older pieces left behind by compaction)
            continue
        current.append(value[HEADER.size :])
        if len(current) == count:
            yield current_position, b"".join(current)
            current = []


def decompress(packed: bytes) -> bytes:
    try:
        return zlib.decompress(packed)
    except zlib.error as exc:
        raise SnapshotLogError(f"unreadable snapshot: {exc}") from exc


def latest(
    source: LogSource, topic: str, partition: int, magic: bytes, below: int | None = None
) -> tuple[int, bytes] | None:
    """The newest complete snapshot of ``partition`` of ``topic`` (logical name) with
    position <= ``below`` if given: (position, payload), or None. Reads only the log's tail,
    widening the window until a snapshot is found or the whole log was read."""
    low, high = source.watermarks(topic, partition)
    window = tail_records_start
    while True:
        start = max(low, high - window)
        found: tuple[int, bytes] | None = None
        values = (r.value or b"" for r in source.read(topic, partition, start, high))
        for position, packed in complete_runs(values, magic):
            if below is None or position <= below:
                found = (position, packed)
        if found is not None:
            return found[0], decompress(found[1])
        if start <= low:
            return None
        window *= 4
