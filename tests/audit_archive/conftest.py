"""The audit tests share one exchange's log, checkpointed twice and exported once.

``audited`` is the exchange (written by the real stages on the real Kafka) with a key of
its own (a stack dir under tmp), two signed checkpoints (half the log, then all of it)
and an archive of it (``tradex export``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.projections.exchange import build_exchange
from tradex.audit.checkpointer import write_one
from tradex.audit.checkpoints import chained_places, load_or_create_key, public_bytes
from tradex.audit.export import export
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog

COMMANDS = 600


class Audited(NamedTuple):
    settings: Settings  # the exchange's prefix, its stack dir holding the key
    public_key: bytes
    archive: Path


def checkpoint_twice(settings: Settings) -> None:
    """A checkpoint of the first half of every chained partition, then one of the rest."""
    with KafkaLog(settings) as log:
        ends = {place: log.watermarks(*place)[1] for place in chained_places(log)}
    write_one(settings, {place: end // 2 for place, end in ends.items()})
    write_one(settings, ends)


@pytest.fixture(scope="session")
def audited(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    prefix = f"a{uuid.uuid4().hex[:10]}-"
    home = tmp_path_factory.mktemp("audit-stack")
    settings = dataclasses.replace(stack, topic_prefix=prefix, stack_dir=home)
    build_exchange(settings, commands=COMMANDS)
    checkpoint_twice(settings)
    archive = tmp_path_factory.mktemp("archive") / "a"
    export(settings, archive, show_progress=False)
    yield Audited(settings, public_bytes(load_or_create_key(settings)), archive)
    delete_prefixed_topics(settings)
