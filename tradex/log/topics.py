"""Every topic of the log: logical names, consumer groups, partition counts, creation.

Names here are logical (``"account-events"``); :meth:`tradex.infra.settings.Settings.topic`
adds ``TRADEX_TOPIC_PREFIX`` to get the real name, and a
:class:`~tradex.log.source.LogSource` takes logical names. docs/design.md has the table of
who writes and reads each topic, and with which key (:mod:`tradex.log.keys`).

Each stage creates what it needs at start, idempotently, through :func:`ensure_stage_topics`:

- topics it **owns** have a spec (partition count, compaction) and an existing one with
  another partition count is an error (keys would land elsewhere than its processors
  expect);
- topics **shared** with stages that route by their own key (``order-requests`` by
  instrument, ``settlements`` by account, ``dead-letters`` by source topic) are created
  with ``TRADEX_TOPIC_PARTITIONS`` if missing, and any existing count is accepted: a
  producer routes by key, so their count is not the creating stage's to check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaException

from tradex import domain
from tradex.domain import engine, reference
from tradex.domain.ids import PARTITION_MAX
from tradex.infra.kafka import (
    TopicSpec,
    admin_timeout_s,
    ensure_topics,
    metadata_poll_s,
    partition_count,
)
from tradex.infra.settings import Settings

ACCOUNT_COMMANDS = "account-commands"
SETTLEMENTS = "settlements"
ACCOUNT_EVENTS = "account-events"
ACCOUNT_SNAPSHOTS = "account-snapshots"
ORDER_REQUESTS = "order-requests"
REFERENCE_COMMANDS = "reference-commands"
REFERENCE_EVENTS = "reference-events"
ENGINE_EVENTS = "engine-events"
MATCHER_SNAPSHOTS = "matcher-snapshots"
DEAD_LETTERS = "dead-letters"
CHECKPOINTS = "checkpoints"  # signed heads of the chained streams (tradex.audit.checkpoints)
TOPICS_ALL = (
    ACCOUNT_COMMANDS, SETTLEMENTS, ACCOUNT_EVENTS, ACCOUNT_SNAPSHOTS, ORDER_REQUESTS,
    REFERENCE_COMMANDS, REFERENCE_EVENTS, ENGINE_EVENTS, MATCHER_SNAPSHOTS, DEAD_LETTERS,
    CHECKPOINTS,
)  # fmt: skip
# The hash-chained streams: per partition, and per producer within one (settlements has
# one chain per matcher writing the partition).
CHAINED_TOPICS = (ACCOUNT_EVENTS, ENGINE_EVENTS, SETTLEMENTS, REFERENCE_EVENTS)
CHECKPOINT_PARTITIONS = 1  # one ordered, signed sequence

# The record types each event topic holds; a reader dead-letters anything else.
TOPIC_TYPES: dict[str, frozenset[type]] = {
    ACCOUNT_EVENTS: frozenset(domain.ACCOUNT_EVENT_TYPES),
    REFERENCE_EVENTS: frozenset(reference.REFERENCE_EVENT_TYPES),
    ENGINE_EVENTS: frozenset(engine.ENGINE_EVENT_TYPES),
}

ACCOUNTS_GROUP = "accounts"  # consumer group of the account processors
REFERENCE_GROUP = "reference"  # consumer group of the reference processor
MATCHER_GROUP = "matcher"  # consumer group of the matching engines

PARTITIONS_MAX = PARTITION_MAX + 1  # event ids hold 12 bits of partition (4,096)
REFERENCE_PARTITIONS = 1  # one ordered stream: an account needs its user, an instrument its assets
# Written by one stage, keyed by another's entity: any existing partition count is accepted.
SHARED_BY_ACCOUNTS = (ORDER_REQUESTS, DEAD_LETTERS)
SHARED_BY_REFERENCE = (ORDER_REQUESTS, DEAD_LETTERS)
SHARED_BY_MATCHER = (ORDER_REQUESTS, SETTLEMENTS, DEAD_LETTERS)


def account_topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """The co-partitioned topics of the account processors (same count, by account), and
    the reference events they read."""
    assert 0 < partitions <= PARTITIONS_MAX, partitions
    return {
        ACCOUNT_COMMANDS: TopicSpec(partitions),
        SETTLEMENTS: TopicSpec(partitions),
        ACCOUNT_EVENTS: TopicSpec(partitions),
        ACCOUNT_SNAPSHOTS: TopicSpec(partitions, compacted=True),
        REFERENCE_EVENTS: TopicSpec(REFERENCE_PARTITIONS),
    }


def reference_topic_specs() -> dict[str, TopicSpec]:
    """The reference processor's one-partition input and output."""
    return {
        REFERENCE_COMMANDS: TopicSpec(REFERENCE_PARTITIONS),
        REFERENCE_EVENTS: TopicSpec(REFERENCE_PARTITIONS),
    }


def matcher_topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """The matcher's outputs partitioned like ``order-requests`` (``partitions`` of them)."""
    assert 0 < partitions <= PARTITIONS_MAX, partitions
    return {
        ENGINE_EVENTS: TopicSpec(partitions),
        MATCHER_SNAPSHOTS: TopicSpec(partitions, compacted=True),
    }


def checkpoint_topic_specs() -> dict[str, TopicSpec]:
    """The checkpointer's one-partition output."""
    return {CHECKPOINTS: TopicSpec(CHECKPOINT_PARTITIONS)}


def ensure_stage_topics(
    settings: Settings, owned: Mapping[str, TopicSpec], shared: Sequence[str] = ()
) -> dict[str, int]:
    """Create what is missing of a stage's topics (idempotent): ``owned`` as specified
    (checked if they exist), ``shared`` with ``settings.topic_partitions`` (any existing
    count accepted). Returns the partition count of each shared topic."""
    assert not set(owned) & set(shared), "a topic is either owned or shared"
    if owned:
        ensure_topics(settings, owned)
    counts: dict[str, int] = {}
    for name in shared:
        try:
            counts[name] = partition_count(settings, settings.topic(name))
        except (RuntimeError, KafkaException):
            ensure_topics(settings, {name: TopicSpec(settings.topic_partitions)})
            # another stage may have created it meanwhile, with its own count
            counts[name] = _visible_partition_count(settings, name)
    return counts


def _visible_partition_count(settings: Settings, name: str) -> int:
    """:func:`partition_count` of a topic just created: on a cluster of several brokers the
    one asked may not know it yet (metadata reaches the brokers a moment apart)."""
    deadline = time.monotonic() + admin_timeout_s
    while True:
        try:
            return partition_count(settings, settings.topic(name))
        except (RuntimeError, KafkaException):
            if time.monotonic() > deadline:
                raise
            time.sleep(metadata_poll_s)


def ensure_account_topics(settings: Settings, partitions: int) -> None:
    """Every topic an account processor reads or writes."""
    ensure_stage_topics(settings, account_topic_specs(partitions), SHARED_BY_ACCOUNTS)


def ensure_reference_topics(settings: Settings) -> None:
    """Every topic the reference processor reads or writes."""
    ensure_stage_topics(settings, reference_topic_specs(), SHARED_BY_REFERENCE)


def ensure_matcher_topics(settings: Settings) -> tuple[int, int]:
    """Every topic the matcher reads or writes; returns (order-requests partitions,
    settlements partitions). ``engine-events`` and ``matcher-snapshots`` must have as many
    partitions as ``order-requests``."""
    counts = ensure_stage_topics(settings, {}, SHARED_BY_MATCHER)
    partitions = counts[ORDER_REQUESTS]
    if partitions > PARTITIONS_MAX:
        raise RuntimeError(f"order-requests has {partitions} partitions, max {PARTITIONS_MAX}")
    ensure_stage_topics(settings, matcher_topic_specs(partitions))
    return partitions, counts[SETTLEMENTS]
