"""What every projector must do, whatever its store (a contract subclassed per projector).

A subclass names the projector (``name``) and how to give it a private store
(``isolate``); the tests here then run on the real store against the shared exchange log:

- batches of any size (incremental) and a rebuild give identical read models, and
  ``tradex projections verify`` finds them equal;
- a replayed prefix (records applied before, fed again) changes nothing;
- ``kill -9`` inside a batch, then a restart, ends in the same state as a clean run;
- a poison record is dead-lettered and the projector keeps going;
- readers move to a rebuilt version atomically, and a live writer follows them there.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from typing import Any, ClassVar

import pytest
from confluent_kafka import Producer

from tests.projections.exchange import Exchange
from tradex.infra.kafka import TopicSpec, ensure_topics, producer_config
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.source import KafkaLog, Place
from tradex.projections import admin
from tradex.projections.catalog import projector_class
from tradex.projections.projector import Event, Projector
from tradex.projections.runner import DeadLetters, ProjectorRun, run_to_end
from tradex.schemas.codec import Codec

CODEC = Codec.offline()
PROCESS_TIMEOUT_S = 120.0


def ends(settings: Settings, cls: type[Projector]) -> dict[Place, int]:
    return admin.log_ends(settings, cls.topics)


def run_version(
    settings: Settings, name: str, version: int, *, batch_records: int = 20_000,
    until: dict[Place, int] | None = None, live: bool = False,
) -> ProjectorRun:  # fmt: skip
    """Fill ``version`` of ``name`` to ``until`` (default: the log's end) in batches of at
    most ``batch_records``; the closed run (its stats)."""
    cls = projector_class(name)
    projector = cls(settings, version)
    source = KafkaLog(settings)
    run = ProjectorRun(
        projector, source, CODEC, DeadLetters(settings, CODEC, f"projector/{name}"),
        until=until if until is not None else ends(settings, cls), batch_records=batch_records,
    )  # fmt: skip
    run.start()
    if live:
        projector.make_live()
    try:
        run_to_end(run)
    finally:
        run.close()
        source.close()
    return run


def digests(settings: Settings, name: str, version: int) -> tuple[dict[Place, int], Any]:
    with projector_class(name)(settings, version).frozen() as view:
        return view.positions, view.digests()


def decoded(settings: Settings, topics: tuple[str, ...]) -> list[Event]:
    source = KafkaLog(settings)
    events = []
    for topic in topics:
        for partition in range(source.partitions(topic)):
            for record in source.read(topic, partition):
                envelope, body = CODEC.decode_domain(record.value or b"")
                events.append(Event(topic, partition, record.offset, envelope, body))
    source.close()
    return events


def run_process(settings: Settings, name: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    """``tradex run projector NAME`` in batches of 100 records until idle."""
    env = dict(
        os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT=fault,
        TRADEX_POSTGRES_DB=settings.postgres_db, TRADEX_REDIS_URL=settings.redis_url,
        TRADEX_CLICKHOUSE_PATH=str(settings.clickhouse_path),
    )  # fmt: skip
    argv = [sys.executable, "-m", "tradex.cli", "run", "projector", name, "--exit-when-idle", "2",
            "--batch-records", "100"]  # fmt: skip
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S
    )


class ProjectorContract:
    name: ClassVar[str]

    @pytest.fixture
    def store(self, exchange: Exchange, request: pytest.FixtureRequest) -> Settings:
        """The exchange's settings pointing at a private store for this test."""
        return self.isolate(exchange.settings, request)

    def isolate(self, settings: Settings, request: pytest.FixtureRequest) -> Settings:
        raise NotImplementedError

    def test_incremental_equals_rebuild_and_verify_agrees(self, store: Settings) -> None:
        run = run_version(store, self.name, 1, batch_records=37, live=True)
        assert run.stats.batches > 10, "the log is too small to split into many batches"
        assert run.stats.dead_letters == 0
        positions, incremental = digests(store, self.name, 1)
        assert all(rows > 0 for rows, _ in incremental.values()) or self.may_be_empty(incremental)
        built, _stats = admin.rebuild(store, self.name, show_progress=False)
        assert built.version == 2
        cls = projector_class(self.name)
        assert cls.versions(store).live == 2
        rebuilt_positions, rebuilt = digests(store, self.name, 2)
        assert rebuilt_positions == positions
        assert rebuilt == incremental
        assert admin.verify(store, self.name, show_progress=False) == []

    def may_be_empty(self, found: dict[str, Any]) -> bool:
        """Whether tables may stay empty on the test exchange (override per projector)."""
        return False

    def test_a_replayed_prefix_changes_nothing(self, store: Settings) -> None:
        run_version(store, self.name, 1)
        before = digests(store, self.name, 1)
        cls = projector_class(self.name)
        events = decoded(store, cls.topics)
        projector = cls(store, 1)
        projector.open()
        try:
            half = events[: len(events) // 2]
            reached: dict[Place, int] = {}
            for event in half:
                reached[(event.topic, event.partition)] = event.offset + 1
            projector.apply(half, reached)  # applied before: dropped
            projector.apply(events, {})
        finally:
            projector.close()
        assert digests(store, self.name, 1) == before

    def test_kill_inside_a_batch_then_restart_equals_a_clean_run(self, store: Settings) -> None:
        killed = run_process(store, self.name, fault="sink_before_commit:3")
        assert killed.returncode == 137, killed.stderr[-2000:]
        cls = projector_class(self.name)
        live = cls.versions(store).live
        assert live == 1
        partial = cls(store, 1).positions()
        assert sum(partial.values()) < sum(ends(store, cls).values()), "killed after the end"
        resumed = run_process(store, self.name)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        after = digests(store, self.name, 1)
        run_version(store, self.name, 2)
        clean = digests(store, self.name, 2)
        assert after == clean

    def test_a_poison_record_is_dead_lettered_and_the_projector_goes_on(
        self, store: Settings, exchange: Exchange
    ) -> None:
        cls = projector_class(self.name)
        # a log of our own: the exchange's topics plus a poison record in the first topic
        prefix_settings = self.poisoned(store, cls)
        run = run_version(prefix_settings, self.name, 1)
        assert run.stats.dead_letters == 1
        source = KafkaLog(prefix_settings)
        letters = [
            CODEC.decode(record.value or b"").record
            for p in range(source.partitions("dead-letters"))
            for record in source.read("dead-letters", p)
        ]
        source.close()
        assert [(x["source_topic"], x["reason"]) for x in letters] == [
            (prefix_settings.topic(cls.topics[0]), "undecodable")
        ]
        assert letters[0]["value"] == b"\x00poison"

    def poisoned(self, store: Settings, cls: type[Projector]) -> Settings:
        """Settings for a copy of the exchange's topics with one poison record in the
        middle of the first topic's first partition that has records."""
        copy = copy_settings(store)
        copy_log(store, copy, cls.topics, poison=True)
        return copy


def copy_settings(store: Settings) -> Settings:
    """``store`` with a fresh topic prefix under the exchange's (deleted with it)."""
    return dataclasses.replace(store, topic_prefix=f"{store.topic_prefix}{uuid.uuid4().hex[:6]}-")


def copy_log(
    store: Settings, copy: Settings, topics: tuple[str, ...], *, poison: bool = False,
    part: tuple[float, float] = (0.0, 1.0),
) -> None:  # fmt: skip
    """Copy the records of ``topics`` (each partition's share ``part``, e.g. (0, 0.5) its
    first half) from ``store``'s prefix to ``copy``'s; with ``poison``, one undecodable
    record in the middle of the first topic's first partition that has records."""
    source = KafkaLog(store)
    ensure_topics(copy, {t: TopicSpec(source.partitions(t)) for t in (*topics, "dead-letters")})
    producer = Producer(producer_config(copy))
    poisoned = not poison
    for topic in topics:
        for partition in range(source.partitions(topic)):
            records = list(source.read(topic, partition))
            start, end = int(len(records) * part[0]), int(len(records) * part[1])
            for index in range(start, end):
                record = records[index]
                if not poisoned and topic == topics[0] and index == len(records) // 2:
                    producer.produce(copy.topic(topic), b"\x00poison", b"k", partition)
                    poisoned = True
                producer.produce(copy.topic(topic), record.value, record.key, partition)
    assert poisoned, f"{topics[0]} is empty"
    assert producer.flush(30) == 0
    source.close()


class PostgresContract(ProjectorContract):
    """The contract for read models in PostgreSQL: each test gets a database of its own."""

    def isolate(self, settings: Settings, request: pytest.FixtureRequest) -> Settings:
        return dataclasses.replace(settings, postgres_db=request.getfixturevalue("pg_database"))
