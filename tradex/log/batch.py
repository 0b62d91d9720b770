"""A batch of log records as columns: a few buffers, no Python object per record.

    batch = tail.poll_batch(0.2)              # any LogSource's tail (Kafka: read in C)
    batch.values, batch.value_offsets         # every value concatenated, and where each is
    batch.topic_index, batch.partition, batch.offset, batch.timestamp_ms   # numpy, per record
    batch.topics[batch.topic_index[i]]        # the logical topic of record i
    batch.record(i)                           # one record as a LogRecord (slow: tests, errors)

What holds the log does not show: Kafka's reader fills one in C
(:mod:`tradex.log.native_tail`), any other source builds one from its records
(:meth:`RecordBatch.from_records`). Records are in log order within each partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tradex.log.records import LogRecord, Place

FLAG_VALUE_NULL = 1  # the record has no value (a tombstone), not an empty one
FLAG_KEY_NULL = 2
FLAG_TRACED = 4  # the record has a traceparent header, in ``traceparents`` (C reader only)
TRACEPARENT_BYTES = 55


@dataclass(frozen=True, eq=False)
class RecordBatch:
    """Records of some partitions (see the module doc). Arrays are read-only views."""

    topics: tuple[str, ...]  # logical names; topic_index indexes this
    values: bytes
    value_offsets: np.ndarray  # int64, len + 1: value i is values[o[i]:o[i + 1]]
    keys: bytes
    key_offsets: np.ndarray  # int64, len + 1
    flags: np.ndarray  # uint8: FLAG_VALUE_NULL | FLAG_KEY_NULL
    topic_index: np.ndarray  # int32
    partition: np.ndarray  # int32
    offset: np.ndarray  # int64
    timestamp_ms: np.ndarray  # int64 (-1: none)
    # the traceparent header of each FLAG_TRACED record, TRACEPARENT_BYTES each, in order
    traceparents: bytes = b""

    def __post_init__(self) -> None:
        n = len(self.offset)
        assert len(self.value_offsets) == n + 1, (len(self.value_offsets), n)
        assert len(self.key_offsets) == n + 1, (len(self.key_offsets), n)
        for column in (self.flags, self.topic_index, self.partition, self.timestamp_ms):
            assert len(column) == n, (len(column), n)
        assert int(self.value_offsets[-1]) == len(self.values), "values and offsets differ"
        assert int(self.key_offsets[-1]) == len(self.keys), "keys and offsets differ"
        assert len(self.traceparents) % TRACEPARENT_BYTES == 0, len(self.traceparents)

    def __len__(self) -> int:
        return len(self.offset)

    @classmethod
    def empty(cls, topics: tuple[str, ...] = ()) -> RecordBatch:
        zero = np.zeros(1, np.int64)
        return cls(
            topics, b"", zero, b"", zero, np.zeros(0, np.uint8), np.zeros(0, np.int32),
            np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64),
        )  # fmt: skip

    @classmethod
    def from_records(cls, records: Sequence[LogRecord], topics: Sequence[str] = ()) -> RecordBatch:
        """The batch of ``records`` (``topics``: the topic list to index, extended with
        any other topic the records name, in order of appearance)."""
        names = list(topics)
        index = {name: i for i, name in enumerate(names)}
        for record in records:
            if record.topic not in index:
                index[record.topic] = len(names)
                names.append(record.topic)
        n = len(records)
        flags = np.zeros(n, np.uint8)
        value_offsets = np.zeros(n + 1, np.int64)
        key_offsets = np.zeros(n + 1, np.int64)
        for i, record in enumerate(records):
            flags[i] = (FLAG_VALUE_NULL if record.value is None else 0) | (
                FLAG_KEY_NULL if record.key is None else 0
            )
            value_offsets[i + 1] = value_offsets[i] + len(record.value or b"")
            key_offsets[i + 1] = key_offsets[i] + len(record.key or b"")
        return cls(
            tuple(names),
            b"".join(r.value or b"" for r in records),
            value_offsets,
            b"".join(r.key or b"" for r in records),
            key_offsets,
            flags,
            np.fromiter((index[r.topic] for r in records), np.int32, n),
            np.fromiter((r.partition for r in records), np.int32, n),
            np.fromiter((r.offset for r in records), np.int64, n),
            np.fromiter((r.timestamp_ms for r in records), np.int64, n),
        )

    # -- one record (slow paths: errors, dead letters, tests) ------------------------------

    def value(self, i: int) -> bytes | None:
        if self.flags[i] & FLAG_VALUE_NULL:
            return None
        return self.values[self.value_offsets[i] : self.value_offsets[i + 1]]

    def key(self, i: int) -> bytes | None:
        if self.flags[i] & FLAG_KEY_NULL:
            return None
        return self.keys[self.key_offsets[i] : self.key_offsets[i + 1]]

    def place(self, i: int) -> Place:
        return (self.topics[self.topic_index[i]], int(self.partition[i]))

    def record(self, i: int) -> LogRecord:
        topic, partition = self.place(i)
        return LogRecord(
            topic, partition, int(self.offset[i]), int(self.timestamp_ms[i]), self.key(i),
            self.value(i),
        )  # fmt: skip

    def records(self) -> list[LogRecord]:
        return [self.record(i) for i in range(len(self))]

    # -- many records -----------------------------------------------------------------------

    def bounds(self, positions: Mapping[Place, int], missing: int) -> np.ndarray:
        """Per record, ``positions`` of its place (``missing`` for a place not given)."""
        table = np.full((max(1, len(self.topics)), self.partitions_max()), missing, np.int64)
        for (topic, partition), position in positions.items():
            if topic in self.topics and partition < table.shape[1]:
                table[self.topics.index(topic), partition] = position
        return table[self.topic_index, self.partition]

    def partitions_max(self) -> int:
        return int(self.partition.max()) + 1 if len(self) else 1

    def select(self, keep: np.ndarray) -> RecordBatch:
        """The records where ``keep`` (bool per record) is true, in order."""
        assert keep.dtype == np.bool_ and len(keep) == len(self), (keep.dtype, len(keep))
        if keep.all():
            return self
        rows = np.flatnonzero(keep)
        values, value_offsets = _take(self.values, self.value_offsets, rows)
        keys, key_offsets = _take(self.keys, self.key_offsets, rows)
        traceparents = b"".join(value for row, value in self.traced() if keep[row])
        return RecordBatch(
            self.topics, values, value_offsets, keys, key_offsets, self.flags[rows],
            self.topic_index[rows], self.partition[rows], self.offset[rows],
            self.timestamp_ms[rows], traceparents,
        )  # fmt: skip

    def traced(self) -> list[tuple[int, bytes]]:
        """(record index, traceparent header) of the records that have one."""
        if not self.traceparents:
            return []
        rows = np.flatnonzero(self.flags & FLAG_TRACED).tolist()
        assert len(rows) * TRACEPARENT_BYTES == len(self.traceparents), "flags and headers differ"
        size = TRACEPARENT_BYTES
        return [(row, self.traceparents[k * size : (k + 1) * size]) for k, row in enumerate(rows)]


def _take(data: bytes, offsets: np.ndarray, rows: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The items ``rows`` of a concatenation (``data``, ``offsets``), concatenated."""
    starts, ends = offsets[rows], offsets[rows + 1]
    new = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(ends - starts, out=new[1:])
    view = memoryview(data)
    return b"".join(view[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)), new
