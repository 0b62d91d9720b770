"""Event ids as the stages write them: the sources, fast text builders, command ids.

The layout of an event id is :mod:`tradex.domain.ids` (``event_id_int``, and ``uuid_text``,
the one formatter of a 128-bit id as text); everything here builds on it and produces the
same bytes, faster where a stage writes millions of ids:

- :class:`EventIds`: the account and reference processors' ids, per input (source topic,
  partition): offset 48 bits | output index 8 bits;
- :func:`event_id_base` + :func:`format_event_id`: the matcher's ids, offset 40 bits |
  output index 16 bits (one sweeping order can cause far more than 256 outputs);
- :func:`dead_letter_event_id`: the id of a dead letter, in its source's layout;
- :func:`command_event_id`: the id a client gives a command (its time and a hash of its
  command id: the same command always gets the same id).
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from tradex.domain.commands import AccountCommand
from tradex.domain.ids import (
    OFFSET_MAX,
    OUTPUT_INDEX_MAX,
    PARTITION_MAX,
    SOURCE_MAX,
    UNIX_MS_MAX,
    event_id,
    event_id_int,
    uuid_text,
)
from tradex.domain.reference import ReferenceCommand


class EventSource(IntEnum):
    """The 6-bit ``source`` field of an event id. It tells apart what one stage reads or
    writes, so the same (partition, offset) in two topics never gives one id.

    0-2: the command side, by **input** topic; position bits: offset (48) | output
    index (8) (:class:`EventIds`). 3-5: the matcher, by **output** topic (its one input is
    ``order-requests``); position bits: offset (40) | output index (16)
    (:func:`format_event_id`). 6: projectors, what they dead-letter (layout of 0-2, the
    position of the record read). 7-63: free.
    """

    ACCOUNT_COMMANDS = 0  # account processor, records read from account-commands
    SETTLEMENTS = 1  # account processor, records read from settlements
    REFERENCE_COMMANDS = 2  # reference processor, records read from reference-commands
    MATCHER_ENGINE_EVENTS = 3  # matcher, what it writes to engine-events
    MATCHER_SETTLEMENTS = 4  # matcher, what it writes to settlements
    MATCHER_DEAD_LETTERS = 5  # matcher, what it writes to dead-letters
    PROJECTOR_DEAD_LETTERS = 6  # a projector, records of any topic it could not fold


assert max(EventSource) <= SOURCE_MAX
MATCHER_SOURCES = frozenset(
    (
        EventSource.MATCHER_ENGINE_EVENTS,
        EventSource.MATCHER_SETTLEMENTS,
        EventSource.MATCHER_DEAD_LETTERS,
    )
)
DEAD_LETTER_OUTPUT_INDEX = 255  # command side: never used by a decision (outputs are far fewer)

# --- the command side: offset 48 bits | output index 8 bits ----------------------------------

OUTPUT_INDEX_TEXT = tuple(f"{index:02x}" for index in range(OUTPUT_INDEX_MAX + 1))
_OFFSET_SHORT = 1 << 40  # offsets below this have "00" as their first two hex digits


class EventIds:
    """``tradex.domain.ids.event_id`` of one input (source topic, partition), as text, fast.

    The canonical text ``tttttttt-tttt-7ppp-ssoo-oooooooooo ii`` (t: unix ms, p: partition,
    s: variant + source, o: offset, i: output index) is built from a per-millisecond prefix
    (cached: consecutive inputs share their millisecond), one format of the offset per
    input (:meth:`head`) and a precomputed index suffix per output (:meth:`of`)."""

    __slots__ = ("_middle", "_ms", "_prefix")

    def __init__(self, source: int, partition: int) -> None:
        assert 0 <= source <= SOURCE_MAX, source
        assert 0 <= partition <= PARTITION_MAX, partition
        self._middle = f"-7{partition:03x}-{0x80 | source:02x}"
        self._ms = -1
        self._prefix = ""

    def head(self, event_time_ns: int, offset: int) -> str:
        """Everything but the output index of the ids of the input at ``offset``."""
        ms = event_time_ns // 1_000_000
        if ms != self._ms:
            assert 0 <= ms <= UNIX_MS_MAX, "event time out of the UUIDv7 range"
            self._prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}{self._middle}"
            self._ms = ms
        if 0 <= offset < _OFFSET_SHORT:
            return f"{self._prefix}00-{offset:010x}"
        assert 0 <= offset <= OFFSET_MAX, offset
        text = f"{offset:012x}"
        return f"{self._prefix}{text[:2]}-{text[2:]}"

    @staticmethod
    def of(head: str, output_index: int) -> str:
        """The id of output ``output_index`` of the input whose :meth:`head` is ``head``."""
        return head + OUTPUT_INDEX_TEXT[output_index]


# --- the matcher: offset 40 bits | output index 16 bits ---------------------------------------

INPUT_OFFSET_MAX = (1 << 40) - 1  # like order ids
OUTPUTS_PER_INPUT_MAX = 1 << 16  # of one kind (one source)


class OutputOverflow(RuntimeError):
    """One input record caused more than OUTPUTS_PER_INPUT_MAX outputs of one kind."""


def event_id_base(time_ns: int, source: int, partition: int, offset: int) -> int:
    """The event id (as an int) of output 0 of one kind caused by input ``offset``; output
    ``i`` is ``base + i`` (the index fills the low 16 bits)."""
    assert 0 <= offset <= INPUT_OFFSET_MAX, "order-requests offset beyond 40 bits"
    return event_id_int(max(time_ns, 0), source, partition, offset << 8, 0)


def format_event_id(base: int, index: int) -> str:
    """Canonical UUID text of output ``index`` after :func:`event_id_base` (the fast path)."""
    if not 0 <= index < OUTPUTS_PER_INPUT_MAX:
        raise OutputOverflow(f"one input caused more than {OUTPUTS_PER_INPUT_MAX} outputs")
    return uuid_text(base + index)


def matcher_event_id(time_ns: int, source: int, partition: int, offset: int, index: int) -> str:
    """Event id of the ``index``-th output of one kind caused by input ``offset``: the
    obvious twin of :func:`format_event_id`, through the layout function itself."""
    if not 0 <= index < OUTPUTS_PER_INPUT_MAX:
        raise OutputOverflow(
            f"input {partition}@{offset} caused more than {OUTPUTS_PER_INPUT_MAX} outputs"
        )
    assert 0 <= offset <= INPUT_OFFSET_MAX, "order-requests offset beyond 40 bits"
    return event_id(max(time_ns, 0), source, partition, (offset << 8) | (index >> 8), index & 0xFF)


# --- both -------------------------------------------------------------------------------------


def dead_letter_event_id(source: EventSource, time_ns: int, partition: int, offset: int) -> str:
    """The id of the dead letter of the input at ``offset``, in the layout of ``source``."""
    if source in MATCHER_SOURCES:
        return matcher_event_id(time_ns, source, partition, offset, 0)
    return event_id(time_ns, source, partition, offset, DEAD_LETTER_OUTPUT_INDEX)


def command_event_id(command: AccountCommand | ReferenceCommand) -> str:
    """A UUIDv7-shaped id of a command: its time, and a hash of its command id (stable)."""
    unix_ms = command.event_time_ns // 1_000_000
    assert 0 <= unix_ms <= UNIX_MS_MAX, "event time out of the UUIDv7 range"
    digest = int.from_bytes(hashlib.sha256(command.command_id.encode()).digest()[:10], "big")
    value = (unix_ms << 80) | (0x7 << 76) | ((digest >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (digest & ((1 << 62) - 1))
    return uuid_text(value)
