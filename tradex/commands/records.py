"""Building the records a command-side stage writes: envelopes and dead letters.

Everything here derives from the input record (position, time, ids), never from the
wall clock or randomness, so a crashed transaction re-run from the same offsets writes
the same bytes.
"""

from __future__ import annotations

from confluent_kafka import Message

from tradex.domain.ids import (
    OFFSET_MAX,
    OUTPUT_INDEX_MAX,
    PARTITION_MAX,
    SOURCE_MAX,
    UNIX_MS_MAX,
    event_id,
)
from tradex.infra.stage import Output
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec, EnvelopeFields

# The "source" part of event ids (tradex.domain.ids): which input topic a record came from.
SOURCE_ACCOUNT_COMMANDS = 0
SOURCE_SETTLEMENTS = 1
SOURCE_REFERENCE_COMMANDS = 2

DEAD_LETTER_ERROR_LENGTH_MAX = 2_000  # characters of the error text kept
DEAD_LETTER_OUTPUT_INDEX = 255  # never used by a decision (outputs per input are far fewer)


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


def message_time_ns(message: Message) -> int:
    """The Kafka timestamp of a record (ms) in ns: the time of what we cannot decode."""
    _kind, timestamp_ms = message.timestamp()
    return max(timestamp_ms, 0) * 1_000_000


def dead_letter(
    codec: Codec,
    topic: str,
    producer: str,
    source: int,
    message: Message,
    reason: str,
    error: str,
) -> Output:
    """A ``DeadLetter`` for ``message`` (raw key and value kept), keyed by source topic."""
    source_topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert source_topic is not None and partition is not None and offset is not None
    time_ns = message_time_ns(message)
    identifier = event_id(time_ns, source, partition, offset, DEAD_LETTER_OUTPUT_INDEX)
    record = {
        "envelope": {
            "event_id": identifier,
            "type": "DeadLetter",
            "event_time_ns": time_ns,
            "causation_id": f"{source_topic}/{partition}/{offset}",
            "correlation_id": "",
            "trace_parent": "",
            "producer": producer,
            "seq": 0,
            "prev_hash": ZERO_HASH,
        },
        "source_topic": source_topic,
        "source_partition": partition,
        "source_offset": offset,
        "key": message.key(),
        "value": message.value(),
        "reason": reason,
        "error": error[:DEAD_LETTER_ERROR_LENGTH_MAX],
    }
    sealed = codec.seal("DeadLetter", record, ZERO_HASH)
    return Output(topic, sealed.data, source_topic.encode())


def unchained(identifier: str, causation: str, correlation: str, producer: str) -> EnvelopeFields:
    """Envelope of a record outside any chain (many writers share its partition)."""
    return EnvelopeFields(identifier, causation, correlation, producer, 0)
