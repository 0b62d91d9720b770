"""The records the codec hands out and takes in (re-exported by :mod:`tradex.schemas.codec`)."""

from __future__ import annotations

from typing import Any, NamedTuple

RECORD_SIZE_MAX = 1 << 20  # a larger record is refused (Kafka's default message.max.bytes)


class Envelope(NamedTuple):
    event_id: str
    type: str
    event_time_ns: int
    causation_id: str
    correlation_id: str
    trace_parent: str
    producer: str
    seq: int
    prev_hash: bytes


class EnvelopeFields(NamedTuple):
    """What a producer supplies; ``type``, ``event_time_ns`` and ``prev_hash`` come from the
    record and the chain."""

    event_id: str
    causation_id: str
    correlation_id: str
    producer: str
    seq: int
    trace_parent: str = ""


class Decoded(NamedTuple):
    subject: str
    record: dict[str, Any]  # includes "envelope" and "hash"
    schema_id: int  # the id in the bytes (wire id)


class Sealed(NamedTuple):
    data: bytes  # wire bytes
    hash: bytes  # this record's hash: the next record's prev_hash
