"""Records of the log decoded to domain objects, one :class:`TypedRecord` per record.

    for record in read_typed(log, codec, "account-events", 0):
        envelope, event = record.checked()        # raises the record's CodecError
    for record in read_typed_topic(log, codec, "account-events"):
        if record.error is not None:              # or dead-letter it and go on
            ...

Decoding is :attr:`tradex.schemas.codec.Codec.decode_domain` (the C path: header, body and
``validate()`` in one call). A record that does not decode is not an exception in the
middle of a read: it comes out with its :class:`~tradex.schemas.codec.CodecError` in
``error``, so a stage can dead-letter it and a rebuild can refuse it, each at its place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from tradex.log.source import LogRecord, LogSource
from tradex.schemas.codec import Codec, CodecError, Envelope


class TypedRecord(NamedTuple):
    """One record: where it is, its key and raw value, and what it decoded to."""

    topic: str  # logical name
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes  # as on the log (b"" for none): hash chains are checked over these bytes
    envelope: Envelope | None  # None when ``error``
    body: Any  # the domain object (a NamedTuple of tradex.domain); None when ``error``
    error: CodecError | None  # why the value does not decode, or None

    def checked(self) -> tuple[Envelope, Any]:
        """(envelope, body); raises the record's :class:`CodecError` if it did not decode."""
        if self.error is not None:
            raise self.error
        assert self.envelope is not None, "a decoded record without an envelope"
        return self.envelope, self.body


def decode(codec: Codec, record: LogRecord) -> TypedRecord:
    """``record`` decoded (never raises for bad bytes: see ``error``)."""
    value = record.value or b""
    try:
        envelope, body = codec.decode_domain(value)
    except CodecError as exc:
        return TypedRecord(record.topic, record.partition, record.offset, record.timestamp_ms,
                           record.key, value, None, None, exc)  # fmt: skip
    return TypedRecord(record.topic, record.partition, record.offset, record.timestamp_ms,
                       record.key, value, envelope, body, None)  # fmt: skip


def typed(codec: Codec, records: Iterable[LogRecord]) -> Iterator[TypedRecord]:
    """Each of ``records`` decoded, in order."""
    for record in records:
        yield decode(codec, record)


def read_typed(
    source: LogSource,
    codec: Codec,
    topic: str,
    partition: int,
    start: int = 0,
    end: int | None = None,
) -> Iterator[TypedRecord]:
    """:meth:`LogSource.read`, decoded."""
    return typed(codec, source.read(topic, partition, start, end))


def read_typed_topic(source: LogSource, codec: Codec, topic: str) -> Iterator[TypedRecord]:
    """Every record of every partition of ``topic`` (each to its end as it stands when its
    read begins), decoded; partition after partition, so always in the same order."""
    for partition in range(source.partitions(topic)):
        yield from read_typed(source, codec, topic, partition)
