"""A reader that follows partitions (:class:`Tail`) and the settings of bulk reads.

Implemented by :mod:`.source` (confluent-kafka, a ``LogRecord`` per record), by
:mod:`.native_tail` (librdkafka in C, a :class:`~tradex.log.batch.RecordBatch` per poll)
and by any other :class:`~tradex.log.source.LogSource`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from tradex.log.batch import RecordBatch
from tradex.log.records import LogRecord, Place

read_poll_timeout_s = 0.2
read_idle_s_max = 30.0  # a bounded read that makes no progress for this long gives up
batch_records_max = 10_000  # records per batch of a read
# Bulk reads (rebuilds, audits) fetch big and never back off: with librdkafka's defaults a
# consumer holding queued.min.messages waits fetch.queue.backoff.ms (1 s) before fetching
# again. Measured here, 1M records of ~150 bytes from 2 partitions: 215k records/s with
# the defaults, 625k with these.
BULK_READ_CONFIG: dict[str, Any] = {
    "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 10_485_760,
    "queued.max.messages.kbytes": 1_048_576,
    "fetch.queue.backoff.ms": 1,
}


class Tail(ABC):
    """A reader that follows some partitions from given positions as records arrive."""

    @abstractmethod
    def poll(self, timeout_s: float, records_max: int = batch_records_max) -> list[LogRecord]:
        """The records there now (at most ``records_max``), waiting at most ``timeout_s``
        for the first; in log order within each partition."""

    def poll_batch(self, timeout_s: float, records_max: int = batch_records_max) -> RecordBatch:
        """:meth:`poll` as one :class:`RecordBatch` (a tail that reads in C overrides it)."""
        return RecordBatch.from_records(self.poll(timeout_s, records_max))

    @abstractmethod
    def reached(self, place: Place) -> int:
        """The position up to which ``place`` is read: every committed record below it has
        been returned by :meth:`poll` (the last record's offset + 1, or further once the
        reader has seen the partition's end past transaction markers)."""

    @abstractmethod
    def at_end(self, place: Place) -> bool:
        """Whether the last :meth:`poll` left ``place`` at the end of the log: every committed
        record there has been returned, and none has arrived since (so a reader knows the
        last records it got are complete, e.g. all events of one transaction)."""

    @abstractmethod
    def close(self) -> None:
        """Release the reader."""

    def __enter__(self) -> Tail:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
