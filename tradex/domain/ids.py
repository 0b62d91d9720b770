"""Deterministic identifiers: event ids and order ids derive from the input position.

A processor that crashes and re-runs the same input offset produces the same ids, so a
re-run transaction writes identical records (no uuid4, no wall clock).

Event id: a UUIDv7-shaped value (RFC 9562 layout, so it sorts by time):

- 48 bits unix milliseconds of ``event_time_ns``
- 4 bits version 7, 12 bits input partition
- 2 bits variant, 62 bits = source (6) | input offset (48) | output index (8)

``source`` tells apart the input topics of one stage (e.g. account-commands = 0,
settlements = 1) so the same (partition, offset) in two topics cannot collide; the sources
in use are :class:`tradex.log.ids.EventSource`, with the fast text builders of each stage.
"""

from __future__ import annotations

SOURCE_MAX = (1 << 6) - 1
PARTITION_MAX = (1 << 12) - 1
OFFSET_MAX = (1 << 48) - 1
OUTPUT_INDEX_MAX = (1 << 8) - 1  # outputs per input record
UNIX_MS_MAX = (1 << 48) - 1
ORDER_OFFSET_BITS = 40
ORDER_PARTITION_MAX = (1 << 22) - 1


def event_id_int(
    event_time_ns: int, source: int, partition: int, offset: int, output_index: int
) -> int:
    """The 128-bit integer of the event id (see module doc for the layout)."""
    unix_ms = event_time_ns // 1_000_000
    assert 0 <= unix_ms <= UNIX_MS_MAX, "event time out of the UUIDv7 range"
    assert 0 <= source <= SOURCE_MAX, "source out of range"
    assert 0 <= partition <= PARTITION_MAX, "partition out of range"
    assert 0 <= offset <= OFFSET_MAX, "offset out of range"
    assert 0 <= output_index <= OUTPUT_INDEX_MAX, "too many outputs for one input"
    tail = (source << 56) | (offset << 8) | output_index
    return (unix_ms << 80) | (0x7 << 76) | (partition << 64) | (0b10 << 62) | tail


def uuid_text(value: int) -> str:
    """A 128-bit int as canonical UUID text (36 chars, lower-case hex, 8-4-4-4-12): the one
    formatter of every id on the log."""
    assert 0 <= value < (1 << 128), "not a 128-bit value"
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_id(
    event_time_ns: int, source: int, partition: int, offset: int, output_index: int
) -> str:
    """The event id as canonical UUID text (36 chars), as carried by the envelope."""
    return uuid_text(event_id_int(event_time_ns, source, partition, offset, output_index))


def order_id(partition: int, offset: int) -> int:
    """``(input partition << 40) | input offset`` of the PlaceOrder command (design.md)."""
    assert 0 <= partition <= ORDER_PARTITION_MAX, "partition out of range"
    assert 0 <= offset < (1 << ORDER_OFFSET_BITS), "offset out of range"
    return (partition << ORDER_OFFSET_BITS) | offset
