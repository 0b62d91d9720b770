"""Which processes make an exchange (:mod:`tradex.infra.exchange` runs them), and when
the exchange is idle.

    exchange.start(pipeline_services("demo") + projector_services() + [api_service(h, p)])
    wait_idle(settings, ["postgres", "redis"], limit_s=300)
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tradex.infra import postgres, redis_client
from tradex.infra.exchange import Exchange, Ready, Service, free_port, ready_poll_s
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNTS_GROUP,
    MATCHER_GROUP,
    ORDER_REQUESTS,
    REFERENCE_GROUP,
    SETTLEMENTS,
    ensure_account_topics,
    ensure_matcher_topics,
    ensure_reference_topics,
)
from tradex.projections import admin
from tradex.projections.catalog import PROJECTORS
from tradex.projections.projector import namespace


def pipeline_services(
    instance: str, accounts_args: Sequence[str] = (), matcher_args: Sequence[str] = ()
) -> list[Service]:
    """The three stages of the write path: reference, account processor, matcher."""
    return [
        Service("reference", ("run", "reference", "--instance", instance),
                Ready("group", REFERENCE_GROUP)),
        Service("accounts", ("run", "accounts", "--instance", instance, *accounts_args),
                Ready("group", ACCOUNTS_GROUP)),
        Service("matcher", ("run", "matcher", "--instance", instance, *matcher_args),
                Ready("group", MATCHER_GROUP)),
    ]  # fmt: skip


def projector_services(names: Iterable[str] | None = None) -> list[Service]:
    """One process per read model (every one by default)."""
    chosen = sorted(PROJECTORS) if names is None else list(names)
    return [
        Service(f"projector-{name}", ("run", "projector", name),
                Ready("log", "following the log as v"))
        for name in chosen
    ]  # fmt: skip


def api_service(host: str, port: int, workers: int = 1) -> Service:
    url = f"http://{host}:{port}/health"
    words = ("run", "api", "--host", host, "--port", str(port), "--workers", str(workers))
    return Service("api", words, Ready("http", url))


# The read models the API reads (ClickHouse is the quants'): one projector process for them.
API_READ_MODELS = ("postgres", "timescale", "redis")


def api_exchange_services(
    instance: str, port: int, partitions: int, workers: int = 1
) -> list[Service]:
    """An exchange for the API's tests and benchmark: the three stages, one projector
    process for :data:`API_READ_MODELS`, the API on ``127.0.0.1:port``."""
    return [
        *pipeline_services(instance, ["--partitions", str(partitions)]),
        Service("projector", ("run", "projector", *API_READ_MODELS),
                Ready("log", "following the log as v")),
        api_service("127.0.0.1", port, workers),
    ]  # fmt: skip


def start_api_exchange(
    base: Settings, log_dir: Path, instance: str, prefix: str, database: str, partitions: int,
    env: dict[str, str], workers: int = 1, ready_s: float = 180.0,
) -> tuple[Exchange, str]:  # fmt: skip
    """A throwaway exchange the API serves, on topic ``prefix`` with PostgreSQL database
    ``database`` beside ``base``'s: both made, :func:`api_exchange_services` started (with
    ``env`` added to their environment) and ready. Its services and the API's URL;
    :func:`discard` removes what it leaves (this does, when the start fails)."""
    settings = dataclasses.replace(base, topic_prefix=prefix, topic_partitions=partitions,
                                   postgres_db=database)  # fmt: skip
    asyncio.run(postgres.create_database(base, database))
    ensure_account_topics(settings, partitions)
    ensure_reference_topics(settings)
    ensure_matcher_topics(settings)
    port = free_port()
    services = Exchange(settings, log_dir, {**env, "TRADEX_API_PORT": str(port)})
    try:
        services.start(api_exchange_services(instance, port, partitions, workers))
        services.wait_ready(ready_s)
    except BaseException:
        services.stop()
        discard(base, settings)
        raise
    return services, f"http://127.0.0.1:{port}"


def discard(base: Settings, settings: Settings) -> None:
    """What a throwaway exchange (``settings``: its own topic prefix and PostgreSQL
    database beside ``base``'s) leaves behind, removed: its topics, its read models' Redis
    keys, its database."""
    delete_prefixed_topics(settings)
    conn = redis_client.client(settings)
    try:
        pattern = "{" + namespace(settings, "") + "*"  # every read model of the prefix
        keys = list(conn.scan_iter(match=pattern, count=1_000))
        for first in range(0, len(keys), 500):
            conn.delete(*keys[first : first + 500])
    finally:
        conn.close()
    asyncio.run(postgres.drop_database(base, settings.postgres_db))


def wait_idle(settings: Settings, projectors: Sequence[str], limit_s: float) -> float:
    """Until the stages have consumed their inputs and every projector named has applied
    everything on its topics, on two checks in a row; the seconds it took."""
    inputs = ((ACCOUNTS_GROUP, (ACCOUNT_COMMANDS, SETTLEMENTS)), (MATCHER_GROUP, (ORDER_REQUESTS,)))
    started = time.monotonic()
    quiet = 0
    with KafkaLog(settings, bulk=False) as log:
        while time.monotonic() - started < limit_s:
            behind = 0
            for group, topics in inputs:
                for (topic, partition), end in log.ends(list(topics)).items():
                    done = max(0, log.committed(group, topic).get(partition, 0))
                    behind += max(0, end - done - 1)  # a commit marker may follow
            try:
                report = admin.status(settings, list(projectors))
            except RuntimeError:  # a chdb folder opened by its projector, not yet served
                quiet = 0
                time.sleep(ready_poll_s)
                continue
            behind += sum(p["lag_records"] for entry in report for p in entry["partitions"])
            ready = all(entry["live"] is not None for entry in report)
            quiet = quiet + 1 if ready and behind == 0 else 0
            if quiet >= 2:
                return time.monotonic() - started
            time.sleep(ready_poll_s)
    raise TimeoutError(f"the pipeline and its projectors did not catch up in {limit_s:.0f} s")
