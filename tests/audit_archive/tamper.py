"""Copies of a log on the real Kafka (a throwaway topic prefix), intact or tampered with.

A copy is produced record by record, non-transactionally, so its offsets are dense from 0;
it is then checkpointed itself, and the tampered copies are made from it (their
checkpoints copied as they are, or re-signed with another key).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from confluent_kafka import Producer

from tradex.audit.checkpoints import Checkpoint, parse, sign
from tradex.infra.kafka import TopicSpec, admin_timeout_s, ensure_topics, producer_config
from tradex.infra.settings import Settings
from tradex.log.records import LogRecord, Place
from tradex.log.source import KafkaLog
from tradex.log.topics import CHAINED_TOPICS, CHECKPOINTS

Log = dict[Place, list[LogRecord]]
TARGET: Place = ("account-events", 0)  # where the tampering happens


def read_log(settings: Settings, topics: tuple[str, ...]) -> Log:
    found: Log = {}
    with KafkaLog(settings) as log:
        for topic in topics:
            for partition in range(log.partitions(topic)):
                found[(topic, partition)] = list(log.read(topic, partition))
    return found


def write_copy(base: Settings, log: Log) -> Settings:
    """``log`` under a new topic prefix (its stack dir, so its key, kept); the settings."""
    settings = dataclasses.replace(
        base, topic_prefix=f"{base.topic_prefix}c{uuid.uuid4().hex[:6]}-"
    )
    counts: dict[str, int] = {}
    for topic, partition in log:
        counts[topic] = max(counts.get(topic, 0), partition + 1)
    ensure_topics(settings, {topic: TopicSpec(n) for topic, n in counts.items()})
    producer = Producer(producer_config(settings))
    for (topic, partition), records in log.items():
        for record in records:
            producer.produce(
                settings.topic(topic), record.value, record.key, partition,
                timestamp=max(record.timestamp_ms, 0),
            )  # fmt: skip
            producer.poll(0)
    assert producer.flush(admin_timeout_s) == 0
    return settings


def chained(log: Log) -> Log:
    return {place: records for place, records in log.items() if place[0] in CHAINED_TOPICS}


def target_index(log: Log) -> int:
    """A record in the middle of the second checkpoint's segment of :data:`TARGET`."""
    n = len(log[TARGET])
    assert n >= 8, n
    return n // 2 + (n - n // 2) // 2


def flip(log: Log) -> int:
    k = target_index(log)
    record = log[TARGET][k]
    assert record.value is not None
    value = bytearray(record.value)
    value[len(value) // 2] ^= 0x01
    log[TARGET][k] = record._replace(value=bytes(value))
    return k


def drop(log: Log) -> int:
    k = target_index(log)
    del log[TARGET][k]
    return k


def swap(log: Log) -> int:
    k = target_index(log)
    records = log[TARGET]
    records[k], records[k + 1] = records[k + 1], records[k]
    return k


def truncate(log: Log) -> int:
    k = target_index(log)
    del log[TARGET][k:]
    return k


def resign(log: Log, key: object) -> None:
    """Every checkpoint signed again, unchanged, with ``key`` (an Ed25519 private key)."""
    records = log[(CHECKPOINTS, 0)]
    for i, record in enumerate(records):
        checkpoint: Checkpoint = parse(record.value).checkpoint
        records[i] = record._replace(value=sign(checkpoint, key).value)  # type: ignore[arg-type]


TAMPERS: dict[str, Callable[[Log], int]] = {
    "flip": flip,
    "drop": drop,
    "swap": swap,
    "truncate": truncate,
}
