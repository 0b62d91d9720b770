"""A chained record's link, read straight from its wire bytes: who wrote it, what it links to.

Every record starts with the ``tradex.Envelope`` (docs/schemas.md) and ends with its
``hash``, so the checkpoints and proofs need no schema to follow a chain: the envelope's
leading fields are read as Avro (strings, longs), nothing else is decoded.

    link = read_link(value)       # None: not a record of ours (too short, bad header)
    link.producer, link.prev_hash, link.hash, link.event_id
"""

from __future__ import annotations

from typing import NamedTuple

from tradex.schemas.chain import HASH_SIZE, HEADER_SIZE, hash_ok

MAGIC = 0
string_bytes_max = 4_096  # an envelope string longer than this is not ours
varint_bytes_max = 10


class Link(NamedTuple):
    event_id: str
    type: str
    producer: str
    prev_hash: bytes
    hash: bytes


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = HEADER_SIZE

    def long(self) -> int:
        shift, result = 0, 0
        for _ in range(varint_bytes_max):
            if self.at >= len(self.data):
                raise ValueError("truncated")
            byte = self.data[self.at]
            self.at += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
        raise ValueError("varint too long")

    def string(self) -> str:
        size = self.long()
        if not 0 <= size <= string_bytes_max or self.at + size > len(self.data):
            raise ValueError("bad string")
        text = self.data[self.at : self.at + size].decode()
        self.at += size
        return text

    def fixed(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ValueError("truncated")
        found = self.data[self.at : self.at + size]
        self.at += size
        return found


def read_link(value: bytes | None) -> Link | None:
    """The envelope's link fields of a record, or None when it is not a record of ours."""
    if value is None or len(value) < HEADER_SIZE + 2 * HASH_SIZE or value[0] != MAGIC:
        return None
    # The fast path: every length below 64 (one varint byte), as the stages write them.
    try:
        at = HEADER_SIZE
        size = value[at]
        if size & 0x81:
            return _read_link_slowly(value)
        event_end = at + 1 + (size >> 1)
        event_id = value[at + 1 : event_end]
        size = value[event_end]
        if size & 0x81:
            return _read_link_slowly(value)
        type_end = event_end + 1 + (size >> 1)
        type_name = value[event_end + 1 : type_end]
        at = type_end
        while value[at] & 0x80:  # event_time_ns
            at += 1
        at += 1
        for _ in range(3):  # causation_id, correlation_id, trace_parent
            size = value[at]
            if size & 0x81:
                return _read_link_slowly(value)
            at += 1 + (size >> 1)
        size = value[at]
        if size & 0x81:
            return _read_link_slowly(value)
        producer_end = at + 1 + (size >> 1)
        producer = value[at + 1 : producer_end]
        at = producer_end
        while value[at] & 0x80:  # seq
            at += 1
        at += 1
        if at + HASH_SIZE > len(value) - HASH_SIZE:
            return None
        return Link(
            event_id.decode(), type_name.decode(), producer.decode(),
            value[at : at + HASH_SIZE], value[-HASH_SIZE:],
        )  # fmt: skip
    except (IndexError, UnicodeDecodeError):
        return None


def _read_link_slowly(value: bytes) -> Link | None:
    """:func:`read_link` for any Avro encoding of the envelope (long strings)."""
    cursor = _Cursor(value)
    try:
        event_id = cursor.string()
        type_name = cursor.string()
        cursor.long()  # event_time_ns
        cursor.string()  # causation_id
        cursor.string()  # correlation_id
        cursor.string()  # trace_parent
        producer = cursor.string()
        cursor.long()  # seq
        prev_hash = cursor.fixed(HASH_SIZE)
    except (ValueError, UnicodeDecodeError):
        return None
    if cursor.at > len(value) - HASH_SIZE:
        return None
    return Link(event_id, type_name, producer, prev_hash, value[-HASH_SIZE:])


def link_problem(value: bytes | None, expected_prev: bytes | None) -> tuple[Link | None, str]:
    """(the link, "" or why the record breaks its chain): not ours, its content does not
    match its hash, or it does not link to ``expected_prev`` (None: not checked)."""
    link = read_link(value)
    if link is None or value is None:
        return None, "not a chained record (no envelope)"
    if not hash_ok(link.prev_hash, value):
        return link, "its hash does not match its content (changed record)"
    if expected_prev is not None and link.prev_hash != expected_prev:
        return link, (
            f"prev_hash does not link to producer {link.producer!r}'s previous record "
            "(a record removed, inserted or reordered before it)"
        )
    return link, ""
