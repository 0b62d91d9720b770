"""The projector tests share one exchange's log (written once per run, read many times)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.projections.exchange import Exchange, build_exchange
from tradex.infra.settings import Settings


@pytest.fixture(scope="session")
def exchange(stack: Settings) -> Iterator[Exchange]:
    """A settled exchange on its own topic prefix (topics deleted at the end)."""
    prefix = f"x{uuid.uuid4().hex[:10]}-"
    settings = dataclasses.replace(stack, topic_prefix=prefix)
    yield build_exchange(settings)
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap, "log_level": 0})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()


@pytest.fixture
def pg(exchange: Exchange, pg_database: str) -> Settings:
    """The exchange's settings with a PostgreSQL database of the test's own."""
    return dataclasses.replace(exchange.settings, postgres_db=pg_database)
