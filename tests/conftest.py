"""Shared fixtures: the real local stack, and per-test isolation on top of it.

The session fixture `stack` brings the local stack up (idempotent: it starts what is not
running) and fails the run with the service's name and log when something cannot be
reached. It never skips. Tests that use `settings` (or any fixture built on it), or are
marked `integration`, get the stack.

Isolation per test: a unique Kafka topic prefix (topics deleted afterwards), a fresh
PostgreSQL database, a flushed Redis logical database, a fresh ClickHouse database.

Tests marked `heavy` (a benchmark's quick run end to end, a soak) are not part of the test
command: `pytest --heavy` (`./dev test --heavy`) runs them, and only them.
(Deselected; pytest-xdist's summary does not count deselections made by its workers, so
the report header says it.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests import schedule
from tradex.infra import clickhouse as clickhouse_module
from tradex.infra import postgres, redis_client
from tradex.infra import settings as settings_module
from tradex.infra import stack as stack_module
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.local_process import StackError
from tradex.infra.settings import Settings

pytest_plugins = ["pytester"]  # tests/test_schedule.py runs pytest-xdist on sample modules

stack_up_timeout_s = 180.0


def _worker_index() -> tuple[int, int]:
    """This process's index among pytest-xdist workers and their count ((0, 1) without)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(name.removeprefix("gw"))
    assert 0 <= index < count, (name, count)
    return index, count


# db 0 is the stack's own; the rest are split between the xdist workers (each flushes its own)
_worker, _workers = _worker_index()
redis_test_dbs = range(1 + _worker, redis_client.databases_max, _workers)
assert len(redis_test_dbs) >= 2, "too many xdist workers for Redis's logical databases"
_redis_db_cycle = itertools.cycle(redis_test_dbs)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--heavy",
        action="store_true",
        help="run only the tests marked heavy (benchmarks' quick runs, soaks), which the "
        "test command leaves out",
    )
    parser.addoption(
        "--record-module-seconds",
        action="store_true",
        help="write each module's seconds into tests/module_seconds.json (the order in which "
        "--dist loadscope hands out the units of work: tests/schedule.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    heavy = config.getoption("--heavy")
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (keep if (item.get_closest_marker("heavy") is not None) == heavy else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadscope`` (./dev test): units of work longest first (tests/schedule.py)."""
    return schedule.make_scheduler(config, log)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--record-module-seconds"):
        config.pluginmanager.register(schedule.ModuleSecondsRecorder(), "module-seconds")


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("--heavy"):
        return "heavy tests only (benchmarks' quick runs, soaks)"
    return "tests marked heavy are left out: `./dev test --heavy` runs them"


def _token() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The local stack, up and healthy (started if needed); its base settings.

    chdb is embedded and one path can be open in one process only, so the tests use a
    private chdb path for this pytest process (another pytest, or `tradex demo`, may hold
    the stack's own path at the same time).
    """
    base = settings_module.load()
    if not base.clickhouse_url:
        base = dataclasses.replace(base, clickhouse_path=tmp_path_factory.mktemp("chdb"))
    servers = [name for name in stack_module.services_all if name != "clickhouse"]
    try:
        results = stack_module.up(base, only=servers, timeout_s=stack_up_timeout_s)
    except StackError as exc:
        pytest.fail(f"the local stack is not usable:\n{exc}", pytrace=False)
    results.append(stack_module.clickhouse_health(base))
    down = [h for h in results if not h.ok]
    if down:
        pytest.fail(f"stack services down:\n{stack_module.format_health(down)}", pytrace=False)
    return base


@pytest.fixture(autouse=True)
def _stack_for_integration_tests(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is not None:
        request.getfixturevalue("stack")


@pytest.fixture
def settings(stack: Settings) -> Iterator[Settings]:
    """Base settings with a unique topic prefix; the test's topics are deleted after it."""
    prefix = f"t{_token()}-"
    settings = dataclasses.replace(stack, topic_prefix=prefix)
    yield settings
    delete_prefixed_topics(settings)


@pytest.fixture
def pg_database(stack: Settings) -> Iterator[str]:
    """A fresh PostgreSQL database (dropped after the test); its name."""
    name = f"t_{_token()}"
    asyncio.run(postgres.create_database(stack, name))
    yield name
    asyncio.run(postgres.drop_database(stack, name))


@pytest.fixture
def pg_settings(settings: Settings, pg_database: str) -> Settings:
    """`settings` pointing at the test's own PostgreSQL database."""
    return dataclasses.replace(settings, postgres_db=pg_database)


@pytest.fixture
def redis_settings(settings: Settings) -> Iterator[Settings]:
    """`settings` pointing at a Redis logical database that is empty, and flushed after."""
    db = next(_redis_db_cycle)
    isolated = dataclasses.replace(settings, redis_url=redis_client.url(settings, db))
    conn = redis_client.client(isolated)
    try:
        conn.flushdb()
        yield isolated
        conn.flushdb()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def clickhouse(stack: Settings) -> clickhouse_module.ClickHouse:
    """The stack's ClickHouse (chdb in this process unless TRADEX_CLICKHOUSE_URL is set)."""
    return clickhouse_module.connect(stack)


@pytest.fixture(scope="session", autouse=True)
def _close_chdb_at_the_end() -> Iterator[None]:
    yield
    clickhouse_module.ChdbClickHouse.close_sessions()


@pytest.fixture
def ch_database(clickhouse: clickhouse_module.ClickHouse) -> Iterator[str]:
    """A fresh ClickHouse database (dropped after the test); its name."""
    name = f"t_{_token()}"
    clickhouse.command(f"CREATE DATABASE {name}")
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name} SYNC")
