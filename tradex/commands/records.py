"""Building the records a command-side stage writes: envelopes and dead letters.

Everything here derives from the input record (position, time, ids), never from the
wall clock or randomness, so a crashed transaction re-run from the same offsets writes
the same bytes.
"""

from __future__ import annotations

from confluent_kafka import Message

from tradex.domain.ids import OFFSET_MAX, OUTPUT_INDEX_MAX, PARTITION_MAX, SOURCE_MAX, event_id
from tradex.infra.stage import Output
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec, EnvelopeFields

# The "source" part of event ids (tradex.domain.ids): which input topic a record came from.
SOURCE_ACCOUNT_COMMANDS = 0
SOURCE_SETTLEMENTS = 1
SOURCE_REFERENCE_COMMANDS = 2

DEAD_LETTER_ERROR_LENGTH_MAX = 2_000  # characters of the error text kept
DEAD_LETTER_OUTPUT_INDEX = 255  # never used by a decision (outputs per input are far fewer)


def event_id_base(source: int, partition: int) -> int:
    """The constant bits of the event ids of one input (source topic, partition)."""
    assert 0 <= source <= SOURCE_MAX, source
    assert 0 <= partition <= PARTITION_MAX, partition
    return (0x7 << 76) | (partition << 64) | (0b10 << 62) | (source << 56)


def fast_event_id(base: int, event_time_ns: int, offset: int, output_index: int) -> str:
    """``tradex.domain.ids.event_id`` with the constant bits precomputed (hot path)."""
    assert 0 <= offset <= OFFSET_MAX, offset
    assert 0 <= output_index <= OUTPUT_INDEX_MAX, output_index
    value = ((event_time_ns // 1_000_000) << 80) | base | (offset << 8) | output_index
    h = f"{value:032x}"
    assert len(h) == 32, "event time out of the UUIDv7 range"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
