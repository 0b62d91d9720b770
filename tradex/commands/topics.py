"""Where the command side's records live: topic names, partition counts, keys.

Keys are the entity id as ASCII decimal (``b"42"``), so standard Kafka tooling shows them
and every client (Java or librdkafka, murmur2) puts a key on the same partition. An
account's commands, settlements, events and snapshots all live on partition
``account_partition(account_id, n)`` of their topics (same partition count ``n``).
"""

from __future__ import annotations

from confluent_kafka import KafkaException

from tradex.infra.kafka import TopicSpec, ensure_topics, partition_count
from tradex.infra.partitioner import partition_for
from tradex.infra.settings import Settings

ACCOUNT_COMMANDS = "account-commands"
SETTLEMENTS = "settlements"
ACCOUNT_EVENTS = "account-events"
ACCOUNT_SNAPSHOTS = "account-snapshots"
ORDER_REQUESTS = "order-requests"
REFERENCE_COMMANDS = "reference-commands"
REFERENCE_EVENTS = "reference-events"
DEAD_LETTERS = "dead-letters"

ACCOUNTS_GROUP = "accounts"  # consumer group of the account processors
REFERENCE_GROUP = "reference"  # consumer group of the reference processor
PARTITIONS_MAX = 4_096  # event ids have 12 bits of partition
REFERENCE_PARTITIONS = 1  # one ordered stream: an account needs its user, an instrument its assets


def account_key(account_id: int) -> bytes:
    return str(account_id).encode()


def instrument_key(instrument_id: int) -> bytes:
    return str(instrument_id).encode()


def account_partition(account_id: int, partitions: int) -> int:
    """The partition of every account-keyed topic that holds ``account_id``."""
    return partition_for(account_key(account_id), partitions)


def account_topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """The co-partitioned topics of the account processors (same count, by account)."""
    assert 0 < partitions <= PARTITIONS_MAX, partitions
    return {
        ACCOUNT_COMMANDS: TopicSpec(partitions),
        SETTLEMENTS: TopicSpec(partitions),
        ACCOUNT_EVENTS: TopicSpec(partitions),
        ACCOUNT_SNAPSHOTS: TopicSpec(partitions, compacted=True),
    }


def ensure_shared(settings: Settings, names: list[str], partitions: int) -> None:
    """Create topics partitioned by someone else's key if missing; accept any existing count.

    ``order-requests`` is partitioned by instrument for the matcher and ``dead-letters`` by
    source topic: a producer routes by key, so their partition count is not ours to check.
    """
    missing = {}
    for name in names:
        try:
            partition_count(settings, settings.topic(name))
        except (RuntimeError, KafkaException):
            missing[name] = TopicSpec(partitions)
    if missing:
        ensure_topics(settings, missing)


def ensure_account_topics(settings: Settings, partitions: int) -> None:
    """Every topic an account processor reads or writes (idempotent)."""
    ensure_topics(settings, account_topic_specs(partitions))
    ensure_topics(settings, {REFERENCE_EVENTS: TopicSpec(REFERENCE_PARTITIONS)})
    ensure_shared(settings, [ORDER_REQUESTS, DEAD_LETTERS], settings.topic_partitions)


def ensure_reference_topics(settings: Settings) -> None:
    """Every topic the reference processor reads or writes (idempotent)."""
    ensure_topics(
        settings,
        {
            REFERENCE_COMMANDS: TopicSpec(REFERENCE_PARTITIONS),
            REFERENCE_EVENTS: TopicSpec(REFERENCE_PARTITIONS),
        },
    )
    ensure_shared(settings, [ORDER_REQUESTS, DEAD_LETTERS], settings.topic_partitions)
