"""The ``DeadLetter`` record: what any stage writes for an input it cannot process.

A dead letter keeps the raw key and value and the input's position, says why (``reason``,
a short word, and ``error``, the text), and is keyed by the source topic's name on
``dead-letters``. It is unchained (many stages write the topic) and everything in it
derives from the input — its id from the input's position in the layout of the stage's
:class:`~tradex.log.ids.EventSource`, its time from the input's Kafka timestamp — so a
re-run transaction writes the same bytes.
"""

from __future__ import annotations

from confluent_kafka import Message

from tradex.infra.stage import Output
from tradex.log.ids import EventSource, dead_letter_event_id
from tradex.schemas.chain import ZERO_HASH
from tradex.schemas.codec import Codec

ERROR_LENGTH_MAX = 2_000  # characters of the error text kept


def dead_letter(
    codec: Codec,
    topic: str,
    producer: str,
    source: EventSource,
    source_topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error: str,
) -> Output:
    """The ``DeadLetter`` output to ``topic`` (the real dead-letters topic) for the input at
    ``source_topic[partition]@offset`` (real name) with that Kafka timestamp, key and value."""
    assert partition >= 0, partition
    assert offset >= 0, offset
    time_ns = max(timestamp_ms, 0) * 1_000_000  # the time of what cannot be decoded
    record = {
        "envelope": {
            "event_id": dead_letter_event_id(source, time_ns, partition, offset),
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
        "key": key,
        "value": value,
        "reason": reason,
        "error": error[:ERROR_LENGTH_MAX],
    }
    sealed = codec.seal("DeadLetter", record, ZERO_HASH)
    return Output(topic, sealed.data, source_topic.encode())


def dead_letter_of_message(
    codec: Codec,
    topic: str,
    producer: str,
    source: EventSource,
    message: Message,
    reason: str,
    error: str,
) -> Output:
    """:func:`dead_letter` of a consumed Kafka message."""
    source_topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert source_topic is not None, "a message without a topic"
    assert partition is not None, "a message without a partition"
    assert offset is not None, "a message without an offset"
    _kind, timestamp_ms = message.timestamp()
    return dead_letter(
        codec, topic, producer, source, source_topic, partition, offset, timestamp_ms,
        message.key(), message.value(), reason, error,
    )  # fmt: skip
