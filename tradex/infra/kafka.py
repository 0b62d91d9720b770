"""Kafka clients and topics, configured one way for the whole system.

Every client's librdkafka log lines go to the ``tradex.librdkafka`` Python logger
(confluent-kafka's ``logger`` setting): JSON lines in the process's log, never raw
``%3|...`` lines on a user's terminal (:mod:`tradex.observability.logs`).

Every producer is idempotent with acks=all and the murmur2 partitioner (the Java
clients' default), so a key lands on the same partition whichever client wrote it. Every
consumer reads committed data only and never auto-commits: positions move only inside a
Kafka transaction (see :mod:`tradex.infra.stage`) or not at all. Reading the log is
:mod:`tradex.log.source` (built on these consumers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tradex.infra.reachable import require_kafka
from tradex.infra.settings import Settings
from tradex.observability.logs import LIBRDKAFKA

log = logging.getLogger(__name__)

# How long a transaction may stay open before the broker aborts it. Short, so a crashed
# process that never comes back blocks read_committed readers of its partitions briefly.
transaction_timeout_ms = 15_000
admin_timeout_s = 30.0
FETCH_QUEUE_BACKOFF_MS = 10  # see consumer_config
# How long the broker holds an idle consumer's fetch (see consumer_config). A fetch held
# there is answered as soon as a transaction commits records for it, so only an empty
# answer waits this long — and with it librdkafka's end-of-partition event, which tells a
# reader that nothing follows the records it has (a transaction's last record is followed
# by its commit marker, which only an empty fetch after it settles). Readers that act on
# that event (command clients completing a command's events, the reference follower's
# catch-up, bounded reads) keep FETCH_WAIT_MS; consumers that act on records alone (the
# stages, the projectors' live tails) park theirs for PARKED_FETCH_WAIT_MS. Each idle
# consumer at 10 ms sends the broker 100 fetches/s: an idle exchange (3 stages, 3
# projectors, the API) kept ~0.4 of a core busy in the broker alone.
FETCH_WAIT_MS = 10
PARKED_FETCH_WAIT_MS = 100
metadata_poll_s = 0.05
# How long a producer waits for more records before sending a partition's batch. Stages
# flush at the end of each batch (librdkafka's flush() sends at once, whatever the
# linger), so theirs only matters for bulk feeders. A client that sends commands one at a
# time (the command clients, the e2e bench's feed) passes COMMAND_LINGER_MS: each
# command's 2 ms of lingering were 2 ms of its order→ack at a light rate; under load
# librdkafka still batches what piles up while earlier requests are in flight.
LINGER_MS = 2
COMMAND_LINGER_MS = 0
LOGGER = logging.getLogger(LIBRDKAFKA)  # every client's librdkafka lines (see the module doc)


def admin_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap, "logger": LOGGER}
    config.update(overrides)
    return config


def producer_config(
    settings: Settings, transactional_id: str | None = None, *, linger_ms: int = LINGER_MS
) -> dict[str, Any]:
    """``linger_ms``: see :data:`LINGER_MS` (``COMMAND_LINGER_MS`` for command clients)."""
    assert 0 <= linger_ms <= 1_000, linger_ms
    require_kafka(settings)  # a stack that is down: one clear line, not librdkafka's retries
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "logger": LOGGER,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": linger_ms,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "lz4",
        # First retry after 1 ms (librdkafka's minimum), doubling up to
        # retry.backoff.max.ms. A transaction begun right after the previous commit meets
        # CONCURRENT_TRANSACTIONS while the coordinator still writes that commit's markers
        # (~1-3 ms here; about once per transaction back to back): with 20 ms the offsets
        # call then took 25 ms at p90 (2 ms: 8 ms); back-to-back transactions, three
        # alternated pairs, offsets p50 4.6-4.7 ms at 2 ms vs 3.0-3.8 at 1 ms.
        "retry.backoff.ms": 1,
        # ... and the doubling stops at 25 ms, not librdkafka's 1 s: a stage that begins
        # its next transaction as soon as the last one commits (adaptive batches) meets
        # that error most often, and a backoff grown to 1 s stalled a whole stage (seen
        # in tradex bench e2e: the matcher's transactions took ~1 s for a while).
        "retry.backoff.max.ms": 25,
    }
    if transactional_id is not None:
        config["transactional.id"] = transactional_id
        config["transaction.timeout.ms"] = transaction_timeout_ms
    return config


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    require_kafka(settings)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "logger": LOGGER,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # Range keeps co-partitioned topics (same key, same partition count) on one member.
        "partition.assignment.strategy": "range",
        # The broker answers a fetch as soon as one byte is there (fetch.min.bytes 1), or
        # after this long with nothing (see FETCH_WAIT_MS).
        "fetch.wait.max.ms": FETCH_WAIT_MS,
        # Once queued.min.messages records wait in the local queue, librdkafka stops
        # fetching for fetch.queue.backoff.ms (default 1,000 ms). A stage that drains its
        # queue fast then sat idle for up to a second, and the stages after it too: a
        # 3-stage transactional pass-through chain went from ~14k to ~21k "orders"/s at
        # 10 ms (docs/processors.md). Not in librdkafka < 2.1 (the C reader of
        # tradex.log.native_tail drops it and raises queued.min.messages instead).
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
    }
    config.update(overrides)
    return config


def admin_client(settings: Settings, **config: Any) -> AdminClient:
    """An admin client of settings' cluster (ServiceUnavailable when it does not answer)."""
    require_kafka(settings)
    return AdminClient(admin_config(settings, **config))


@dataclass(frozen=True)
class TopicSpec:
    """A topic the system needs: partitions, and whether it is compacted (snapshots)."""

    partitions: int
    compacted: bool = False
    replication_factor: int = -1  # -1: the broker's default.replication.factor


def ensure_topics(settings: Settings, specs: Mapping[str, TopicSpec]) -> None:
    """Create the topics that do not exist yet (idempotent); check those that do.

    ``specs`` maps logical names to specs; real names get ``settings.topic_prefix``.
    An existing topic with a different partition count is an error, never silently used:
    keys would land on other partitions than the processors expect.
    """
    admin = admin_client(settings)
    wanted = {settings.topic(name): spec for name, spec in specs.items()}
    existing = admin.list_topics(timeout=admin_timeout_s).topics
    new_topics = []
    for name, spec in wanted.items():
        assert spec.partitions > 0, name
        if name in existing:
            have = len(existing[name].partitions)
            if have != spec.partitions:
                raise RuntimeError(
                    f"topic {name} has {have} partitions, expected {spec.partitions}"
                )
            continue
        config = {"cleanup.policy": "compact"} if spec.compacted else {}
        new_topics.append(
            NewTopic(
                name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                config=config,
            )
        )
    if not new_topics:
        return
    for name, future in admin.create_topics(new_topics, request_timeout=admin_timeout_s).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created topic %s", name)
    # Created is not yet visible: metadata reaches the brokers a moment later, and a
    # partition_count() right after would say the topic does not exist.
    deadline = time.monotonic() + admin_timeout_s
    pending = {topic.topic for topic in new_topics}
    while pending:
        visible = admin.list_topics(timeout=admin_timeout_s).topics
        pending = {
            name for name in pending
            if name not in visible or visible[name].error is not None
            or not visible[name].partitions
        }  # fmt: skip
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"topics {sorted(pending)} created but not visible")
        if pending:
            time.sleep(metadata_poll_s)


def delete_prefixed_topics(settings: Settings) -> list[str]:
    """Delete every topic under ``settings.topic_prefix`` (a test's, a benchmark's or a
    throwaway exchange's own); the names deleted. An empty prefix is refused: it would
    name every topic of the cluster."""
    prefix = settings.topic_prefix
    assert prefix, "no topic prefix: refusing to delete every topic"
    admin = admin_client(settings)
    topics = sorted(t for t in admin.list_topics(timeout=admin_timeout_s).topics
                    if t.startswith(prefix))  # fmt: skip
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=admin_timeout_s).values():
            future.result()
    return topics


def partition_count(settings: Settings, topic: str) -> int:
    """Partitions of a real topic name; raises if the topic does not exist."""
    return partitions_of(admin_client(settings), topic)


def partitions_of(client: Any, topic: str) -> int:
    """:func:`partition_count` asked through a client already connected (an AdminClient or
    a Consumer: both answer ``list_topics``; a new AdminClient costs ~35 ms of connecting)."""
    metadata = client.list_topics(topic=topic, timeout=admin_timeout_s)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise RuntimeError(f"topic {topic} does not exist")
    return len(found.partitions)


def produce_sync(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Write records (key, value) to a real topic name and wait until all are acknowledged.

    For clients outside the pipeline (CLI, tests, benchmarks' feeders).
    """
    producer = Producer(producer_config(settings))
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
    remaining = producer.flush(admin_timeout_s)
    if remaining:
        raise TimeoutError(f"{remaining} records to {topic} not acknowledged")
    if errors:
        raise KafkaException(errors[0])
