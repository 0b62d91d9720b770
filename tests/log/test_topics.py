"""Topic creation of each stage on the real broker: idempotent, owned counts checked,
shared counts accepted."""

from __future__ import annotations

import dataclasses

import pytest

from tradex.infra.kafka import TopicSpec, ensure_topics, partition_count
from tradex.infra.settings import Settings
from tradex.log import topics
from tradex.log.topics import (
    ensure_account_topics,
    ensure_matcher_topics,
    ensure_reference_topics,
    ensure_stage_topics,
)

pytestmark = pytest.mark.integration


def _count(settings: Settings, name: str) -> int:
    return partition_count(settings, settings.topic(name))


def test_every_topic_name_is_distinct_and_logical() -> None:
    assert len(set(topics.TOPICS_ALL)) == len(topics.TOPICS_ALL) == 11
    assert all(name == name.lower() and "_" not in name for name in topics.TOPICS_ALL)


def test_stage_topics_are_created_once_and_owned_counts_are_checked(settings: Settings) -> None:
    settings = dataclasses.replace(settings, topic_partitions=2)
    ensure_reference_topics(settings)
    ensure_account_topics(settings, 3)
    ensure_account_topics(settings, 3)  # idempotent
    assert _count(settings, topics.ACCOUNT_COMMANDS) == _count(settings, topics.ACCOUNT_EVENTS) == 3
    assert _count(settings, topics.SETTLEMENTS) == _count(settings, topics.ACCOUNT_SNAPSHOTS) == 3
    assert _count(settings, topics.REFERENCE_EVENTS) == 1
    assert _count(settings, topics.ORDER_REQUESTS) == 2  # shared: TRADEX_TOPIC_PARTITIONS
    with pytest.raises(RuntimeError, match="has 3 partitions, expected 4"):
        ensure_account_topics(settings, 4)


def test_shared_topics_keep_the_count_they_have(settings: Settings) -> None:
    ensure_topics(settings, {topics.ORDER_REQUESTS: TopicSpec(3), topics.SETTLEMENTS: TopicSpec(5)})
    assert ensure_matcher_topics(settings) == (3, 5)
    assert ensure_matcher_topics(settings) == (3, 5)
    assert _count(settings, topics.ENGINE_EVENTS) == _count(settings, topics.MATCHER_SNAPSHOTS) == 3
    assert _count(settings, topics.DEAD_LETTERS) == settings.topic_partitions
    assert ensure_stage_topics(settings, {}, [topics.ORDER_REQUESTS]) == {topics.ORDER_REQUESTS: 3}
    ensure_reference_topics(settings)  # order-requests has 3, not TRADEX_TOPIC_PARTITIONS: fine
    assert _count(settings, topics.ORDER_REQUESTS) == 3
