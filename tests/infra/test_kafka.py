"""Kafka smoke tests on the real broker: transactions commit atomically, aborts stay invisible."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from tradex.infra.kafka import (
    TopicSpec,
    consumer_config,
    ensure_topics,
    partition_count,
    producer_config,
)
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog

pytestmark = pytest.mark.integration


def _values(settings: Settings, name: str) -> list[bytes | None]:
    with KafkaLog(settings) as log:
        return [r.value for r in log.read(name, 0)]


def test_committed_transaction_is_read_and_aborted_one_is_not(settings: Settings) -> None:
    ensure_topics(settings, {"smoke": TopicSpec(partitions=1)})
    topic = settings.topic("smoke")
    producer = Producer(producer_config(settings, transactional_id=f"{topic}-tx"))
    producer.init_transactions(30)

    producer.begin_transaction()
    producer.produce(topic, b"kept-1", b"k")
    producer.produce(topic, b"kept-2", b"k")
    producer.commit_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, b"aborted", b"k")
    producer.flush(30)
    producer.abort_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, b"kept-3", b"k")
    producer.commit_transaction(30)

    assert _values(settings, "smoke") == [b"kept-1", b"kept-2", b"kept-3"]

    # A group consumer with the project's config sees the same, in order.
    consumer = Consumer(consumer_config(settings, f"{topic}-group"))
    consumer.subscribe([topic])
    seen: list[bytes] = []
    for _ in range(60):
        for message in consumer.consume(10, timeout=0.5):
            assert message.error() is None
            seen.append(message.value())
        if len(seen) >= 3:
            break
    consumer.close()
    assert seen == [b"kept-1", b"kept-2", b"kept-3"]


def test_ensure_topics_is_idempotent_and_refuses_a_partition_mismatch(settings: Settings) -> None:
    ensure_topics(settings, {"twice": TopicSpec(partitions=3)})
    ensure_topics(settings, {"twice": TopicSpec(partitions=3)})
    assert partition_count(settings, settings.topic("twice")) == 3
    with pytest.raises(RuntimeError, match="has 3 partitions, expected 2"):
        ensure_topics(settings, {"twice": TopicSpec(partitions=2)})


def test_murmur2_partitioner_places_a_key_like_the_java_client(settings: Settings) -> None:
    # Java's DefaultPartitioner: toPositive(murmur2(key)) % partitions. For 12 partitions the
    # key b"account-42" lands on the partition computed by tradex's own murmur2 helper.
    from tradex.infra.partitioner import partition_for

    ensure_topics(settings, {"keyed": TopicSpec(partitions=12)})
    topic = settings.topic("keyed")
    producer = Producer(producer_config(settings))
    placed: dict[bytes, int] = {}

    def on_delivery(error: object, message: object) -> None:
        assert error is None
        placed[message.key()] = message.partition()  # type: ignore[attr-defined]

    keys = [f"account-{i}".encode() for i in range(50)]
    for key in keys:
        producer.produce(topic, b"v", key, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert placed == {key: partition_for(key, 12) for key in keys}


def test_a_topic_nobody_created_is_an_error_not_a_new_topic(settings: Settings) -> None:
    """auto.create.topics.enable=false: a typo'd topic fails loudly on produce."""
    topic = settings.topic("never-created")
    producer = Producer({**producer_config(settings), "message.timeout.ms": 3000})
    errors: list[KafkaError] = []
    producer.produce(topic, b"lost?", b"k", on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(10) == 0
    assert len(errors) == 1
    assert errors[0] is not None
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._MSG_TIMED_OUT)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    assert topic not in admin.list_topics(timeout=10).topics
