"""A record of the log and where it is (shared by :mod:`.source` and :mod:`.batch`)."""

from __future__ import annotations

from typing import NamedTuple

Place = tuple[str, int]  # (logical topic, partition)


class LogRecord(NamedTuple):
    """One record of the log: where it is, when it was written, its key and value."""

    topic: str  # logical name
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
