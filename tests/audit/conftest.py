"""The audit tests share one settled exchange's log and one tampered copy of it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.audit.tamper import Tampered, tamper_copy
from tests.projections.exchange import Exchange, build_exchange
from tradex.infra.settings import Settings


def _drop_topics(stack: Settings, prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap, "log_level": 0})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()


@pytest.fixture(scope="session")
def audit_exchange(stack: Settings) -> Iterator[Exchange]:
    """A settled exchange written by the real stages on its own prefix."""
    prefix = f"a{uuid.uuid4().hex[:10]}-"
    yield build_exchange(dataclasses.replace(stack, topic_prefix=prefix))
    _drop_topics(stack, prefix)


@pytest.fixture(scope="session")
def tampered(stack: Settings, audit_exchange: Exchange) -> Iterator[Tampered]:
    """A copy of that log on a throwaway prefix with one of each kind of damage."""
    prefix = f"a{uuid.uuid4().hex[:10]}-bad-"
    target = dataclasses.replace(stack, topic_prefix=prefix)
    yield tamper_copy(audit_exchange.settings, target)
    _drop_topics(stack, prefix)
