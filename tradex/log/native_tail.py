"""A tail of Kafka partitions read by librdkafka in C into :class:`RecordBatch` es.

``KafkaLog.follow_batches`` / ``read_columns`` use it: the records of a poll arrive as a
few buffers (``tradex.log._native_kafka``, source in ``_native/native_kafka.c``), with no
``Message``, ``LogRecord`` or ``bytes`` object per record. Positions and ends follow
:class:`~tradex.log.tail.Tail` exactly as the confluent-kafka tail of :mod:`.source` does
(the last record's offset + 1, or the partition EOF past transaction markers); only
committed records are read (``read_committed``).

It links the system librdkafka (Debian 12: 2.0.2, which reads from Kafka 4.1: checked by
``tests/log/test_native_tail.py`` on the local broker), not the copy inside the
confluent-kafka wheel. 2.0.2 has no ``fetch.queue.backoff.ms``: a partition holding
``queued.min.messages`` waits a fixed second before its next fetch, so bulk reads raise
that threshold instead (:data:`NATIVE_BULK_READ_CONFIG`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tradex.infra.kafka import FETCH_WAIT_MS, LOGGER, consumer_config
from tradex.infra.settings import Settings
from tradex.log import _native_kafka
from tradex.log.batch import FLAG_KEY_NULL, FLAG_TRACED, FLAG_VALUE_NULL, RecordBatch
from tradex.log.records import LogRecord, Place
from tradex.log.tail import BULK_READ_CONFIG, Tail, batch_records_max

assert FLAG_VALUE_NULL == _native_kafka.FLAG_VALUE_NULL, "flags differ from the C reader's"
assert FLAG_KEY_NULL == _native_kafka.FLAG_KEY_NULL, "flags differ from the C reader's"
assert FLAG_TRACED == _native_kafka.FLAG_TRACED, "flags differ from the C reader's"

# The bulk settings without fetch.queue.backoff.ms (not in librdkafka 2.0.2): instead the
# threshold that triggers its fixed 1 s backoff is set where a partition's queue holds
# more than a second of reading (2M records; queued.max.messages.kbytes still bounds
# memory per partition at 1 GiB, as for the confluent-kafka tail).
NATIVE_BULK_READ_CONFIG: dict[str, Any] = {
    **{k: v for k, v in BULK_READ_CONFIG.items() if k != "fetch.queue.backoff.ms"},
    "queued.min.messages": 2_000_000,
}
# A light tail likewise: a second's stall once 100k records wait would show as a second of
# lag; the queue's size in bytes still bounds its memory.
NATIVE_LIVE_READ_CONFIG: dict[str, Any] = {"queued.min.messages": 1_000_000}
NOT_IN_LIBRDKAFKA_2_0 = frozenset({"fetch.queue.backoff.ms"})
TIMEOUT_MS_MAX = 3_600_000
# syslog level (librdkafka's) -> logging level
SYSLOG_LEVELS = (50, 50, 50, 40, 30, 20, 20, 10)


def _text(value: Any) -> str:
    """A configuration value as librdkafka takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    assert isinstance(value, str | int | float), value
    return str(value)


class NativeKafkaTail(Tail):
    """Kafka partitions from given positions (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        starts: Mapping[Place, int],
        bulk: bool,
        fetch_wait_ms: int = FETCH_WAIT_MS,
    ) -> None:
        """``fetch_wait_ms``: how long an idle fetch waits at the broker — the end of the
        log (and a last transaction's marker) is seen that long after the last record
        (tradex.infra.kafka.FETCH_WAIT_MS); a reader that acts on records alone parks it."""
        assert starts, "a tail of no partition"
        overrides: dict[str, Any] = {"enable.partition.eof": True}
        overrides.update(NATIVE_BULK_READ_CONFIG if bulk else NATIVE_LIVE_READ_CONFIG)
        overrides["fetch.wait.max.ms"] = fetch_wait_ms
        config = consumer_config(settings, "tradex-reader", **overrides)
        config = {
            k: v for k, v in config.items() if k not in NOT_IN_LIBRDKAFKA_2_0 and k != "logger"
        }
        self.topics = tuple(sorted({topic for topic, _ in starts}))
        self._places = list(starts)
        self._index = {place: i for i, place in enumerate(self._places)}
        for place, start in starts.items():
            assert start >= 0, (place, start)
        self._reader = _native_kafka.Reader(
            {key: _text(value) for key, value in config.items()},
            [settings.topic(topic) for topic in self.topics],
            [(self.topics.index(t), p, start) for (t, p), start in starts.items()],
        )
        self._reached = np.array([starts[p] for p in self._places], np.int64)
        self._at_end = np.zeros(len(self._places), np.bool_)

    def poll_batch(self, timeout_s: float, records_max: int = batch_records_max) -> RecordBatch:
        assert records_max > 0, records_max
        timeout_ms = min(TIMEOUT_MS_MAX, max(0, round(timeout_s * 1000)))
        try:
            parts = self._reader.poll(timeout_ms, records_max)
        finally:
            self._forward_logs()
        (
            values,
            value_offsets,
            keys,
            key_offsets,
            flags,
            topic,
            partition,
            offset,
            stamps,
            traced,
        ) = parts
        reached, at_end = self._reader.positions()
        self._reached = np.frombuffer(reached, np.int64)
        self._at_end = np.frombuffer(at_end, np.uint8).astype(np.bool_)
        batch = RecordBatch(
            self.topics, values, np.frombuffer(value_offsets, np.int64), keys,
            np.frombuffer(key_offsets, np.int64), np.frombuffer(flags, np.uint8),
            np.frombuffer(topic, np.int32), np.frombuffer(partition, np.int32),
            np.frombuffer(offset, np.int64), np.frombuffer(stamps, np.int64), traced,
        )  # fmt: skip
        return batch

    def poll(self, timeout_s: float, records_max: int = batch_records_max) -> list[LogRecord]:
        return self.poll_batch(timeout_s, records_max).records()

    def reached(self, place: Place) -> int:
        return int(self._reached[self._index[place]])

    def at_end(self, place: Place) -> bool:
        return bool(self._at_end[self._index[place]])

    def close(self) -> None:
        self._reader.close()
        self._forward_logs()

    def _forward_logs(self) -> None:
        """librdkafka's lines kept by the C reader, to the logger every client logs to
        (:data:`tradex.infra.kafka.LOGGER`), as confluent-kafka's clients log them."""
        for level, facility, text in self._reader.logs():
            LOGGER.log(SYSLOG_LEVELS[min(level, 7)], "%s [%s] %s", facility, "native-reader", text)
