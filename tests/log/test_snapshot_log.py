"""Finding the newest complete snapshot on a log (an in-memory source: no Kafka needed)."""

from __future__ import annotations

import pytest

from tests.log.memory_log import MemoryLog
from tradex.log import snapshot_log

MAGIC = b"TEST"
TOPIC = "some-snapshots"


def _write(log: MemoryLog, partition: int, position: int, payload: bytes) -> None:
    for output in snapshot_log.snapshot_outputs(TOPIC, partition, MAGIC, position, payload):
        assert output.partition == partition
        log.append(TOPIC, partition, output.key, output.value, gap=1)


def test_the_newest_complete_snapshot_below_a_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_log, "piece_bytes_max", 16)
    monkeypatch.setattr(snapshot_log, "tail_records_start", 2)  # the window must widen
    log = MemoryLog()
    _write(log, 1, 10, b"ten" * 40)
    _write(log, 1, 20, b"twenty" * 40)
    _write(log, 1, 30, b"thirty" * 40)
    assert snapshot_log.latest(log, TOPIC, 1, MAGIC) == (30, b"thirty" * 40)
    assert snapshot_log.latest(log, TOPIC, 1, MAGIC, below=29) == (20, b"twenty" * 40)
    assert snapshot_log.latest(log, TOPIC, 1, MAGIC, below=10) == (10, b"ten" * 40)
    assert snapshot_log.latest(log, TOPIC, 1, MAGIC, below=9) is None
    assert snapshot_log.latest(log, TOPIC, 1, b"ELSE") is None


def test_an_unreadable_snapshot_is_an_error_and_an_empty_log_has_none() -> None:
    log = MemoryLog()
    log.append(TOPIC, 0, b"0/0", snapshot_log.HEADER.pack(MAGIC, 5, 0, 1) + b"not zlib")
    with pytest.raises(snapshot_log.SnapshotLogError):
        snapshot_log.latest(log, TOPIC, 0, MAGIC)
    log.append("other", 0, None, b"x")
    log.records[(TOPIC, 1)] = []
    assert snapshot_log.latest(log, TOPIC, 1, MAGIC) is None
