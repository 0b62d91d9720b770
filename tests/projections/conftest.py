"""The projector tests share one exchange's log (written once per run, read many times)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from tests.projections.exchange import Exchange, build_exchange
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings


@pytest.fixture(scope="session")
def exchange(stack: Settings) -> Iterator[Exchange]:
    """A settled exchange on its own topic prefix (topics deleted at the end)."""
    prefix = f"x{uuid.uuid4().hex[:10]}-"
    settings = dataclasses.replace(stack, topic_prefix=prefix)
    yield build_exchange(settings)
    delete_prefixed_topics(settings)


@pytest.fixture
def pg(exchange: Exchange, pg_database: str) -> Settings:
    """The exchange's settings with a PostgreSQL database of the test's own."""
    return dataclasses.replace(exchange.settings, postgres_db=pg_database)
