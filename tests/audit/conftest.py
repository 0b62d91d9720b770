"""The audit tests share one settled exchange's log and one tampered copy of it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from tests.audit.tamper import Tampered, tamper_copy
from tests.projections.exchange import Exchange, build_exchange
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings


@pytest.fixture(scope="session")
def audit_exchange(stack: Settings) -> Iterator[Exchange]:
    """A settled exchange written by the real stages on its own prefix."""
    settings = dataclasses.replace(stack, topic_prefix=f"a{uuid.uuid4().hex[:10]}-")
    yield build_exchange(settings)
    delete_prefixed_topics(settings)


@pytest.fixture(scope="session")
def tampered(stack: Settings, audit_exchange: Exchange) -> Iterator[Tampered]:
    """A copy of that log on a throwaway prefix with one of each kind of damage."""
    prefix = f"a{uuid.uuid4().hex[:10]}-bad-"
    target = dataclasses.replace(stack, topic_prefix=prefix)
    yield tamper_copy(audit_exchange.settings, target)
    delete_prefixed_topics(target)
