"""Operating read models: status and lag, an interrupted rebuild that resumes while the
live version keeps serving, a live projector that follows readers to a rebuilt version,
and bad arguments refused (on PostgreSQL, the same code for every store)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.projections.contract import (
    copy_log,
    copy_settings,
    digests,
    ends,
    run_process,
    run_version,
)
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.projections import admin
from tradex.projections.pg_read import PostgresReader
from tradex.projections.postgres import PostgresReadModel

pytestmark = pytest.mark.integration
NAME = "postgres"
WAIT_S = 60.0


def cli(settings: Settings, *words: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT=fault,
        TRADEX_POSTGRES_DB=settings.postgres_db,
    )  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "tradex.cli", *words], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def balances_of(settings: Settings, account_id: int) -> list[tuple[str, int, int]]:
    reader = PostgresReader(settings)

    async def read() -> list[tuple[str, int, int]]:
        async with reader.connect() as conn:
            return [tuple(b) for b in await reader.balances(conn, account_id)]  # type: ignore[misc]

    return asyncio.run(read())


def test_status_shows_positions_and_lag_in_records_and_seconds(pg: Settings) -> None:
    report = admin.status(pg, [NAME])
    assert report[0]["live"] is None and report[0]["partitions"] == []
    log_end = ends(pg, PostgresReadModel)
    half = {place: end // 2 for place, end in log_end.items()}
    run_version(pg, NAME, 1, until=half, live=True)
    (entry,) = admin.status(pg, [NAME])
    assert entry["live"] == 1
    behind = [p for p in entry["partitions"] if p["lag_records"] > 0]
    assert behind and all(p["lag_s"] > 0 for p in behind)
    assert {(p["topic"], p["partition"]): p["end"] for p in entry["partitions"]} == log_end
    run_version(pg, NAME, 1)
    (entry,) = admin.status(pg, [NAME])
    assert sum(p["lag_records"] for p in entry["partitions"]) == 0
    shown = cli(pg, "projections", "status", NAME)
    assert shown.returncode == 0, shown.stderr
    assert f"{NAME}: v1; lag 0 records" in shown.stdout


def test_an_interrupted_rebuild_resumes_and_the_live_version_serves_meanwhile(
    pg: Settings,
) -> None:
    run_version(pg, NAME, 1, live=True)
    live_before = digests(pg, NAME, 1)
    some_account = 1
    served = balances_of(pg, some_account)
    assert served
    killed = cli(pg, "projections", "rebuild", NAME, "--batch-records", "50",
                 fault="sink_before_commit:4")  # fmt: skip
    assert killed.returncode == 137, killed.stderr[-2000:]
    versions = PostgresReadModel.versions(pg)
    assert (versions.live, versions.building) == (1, 2)
    assert balances_of(pg, some_account) == served, "readers still see v1"
    partial = PostgresReadModel(pg, 2).positions()
    assert 0 < sum(partial.values()) < sum(ends(pg, PostgresReadModel).values())
    resumed = cli(pg, "projections", "rebuild", NAME)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "v2" in resumed.stdout and "made live" in resumed.stdout
    assert "events/s" in resumed.stderr and "ETA" in resumed.stderr  # the progress line
    versions = PostgresReadModel.versions(pg)
    assert (versions.live, versions.building) == (2, None)
    assert digests(pg, NAME, 2) == live_before
    assert PostgresReadModel(pg, 1).positions() == {}, "the old version is dropped"
    assert balances_of(pg, some_account) == served


def test_a_live_projector_follows_readers_to_a_rebuilt_version(pg: Settings) -> None:
    copy = copy_settings(pg)
    topics = PostgresReadModel.topics
    copy_log(pg, copy, topics, part=(0.0, 0.5))
    env = dict(
        os.environ, TRADEX_TOPIC_PREFIX=copy.topic_prefix, TRADEX_POSTGRES_DB=copy.postgres_db
    )
    live = subprocess.Popen(
        [sys.executable, "-m", "tradex.cli", "run", "projector", NAME], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_caught_up(copy)
        built, _stats = admin.rebuild(copy, NAME, show_progress=False)
        assert built.version == 2
        copy_log(pg, copy, topics, part=(0.5, 1.0))  # new records after the switch
        _wait_caught_up(copy)
        assert PostgresReadModel.versions(copy).live == 2
    finally:
        live.send_signal(signal.SIGTERM)
        _out, err = live.communicate(timeout=60)
    assert live.returncode == 0, err[-2000:]
    assert "reopening" in err
    followed = digests(copy, NAME, 2)
    run_version(copy, NAME, 3)
    assert digests(copy, NAME, 3) == followed


def _wait_caught_up(settings: Settings) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        (entry,) = admin.status(settings, [NAME])
        if (
            entry["live"] is not None
            and entry["partitions"]
            and not any(p["lag_records"] for p in entry["partitions"])
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"{NAME} did not catch up in {WAIT_S} s")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("run", "projector", "nosuch"), "unknown projector nosuch"),
        (("run", "projector", NAME, "--batch-records", "0"), "must be > 0"),
        (
            ("projections", "rebuild", NAME, "--to-position", "account-events:x:1"),
            "TOPIC:PARTITION:OFFSET",
        ),
        (("projections", "verify"), "the following arguments are required"),
        (("projections", "status", "nosuch"), "unknown projector nosuch"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(
    pg: Settings, words: tuple[str, ...], message: str
) -> None:
    result = cli(pg, *words)
    assert result.returncode == 2
    assert message in result.stderr
    assert PostgresReadModel.versions(pg).live is None, "nothing was created"


def test_a_killed_live_projector_resumes_from_its_positions(pg: Settings) -> None:
    killed = run_process(pg, NAME, fault="sink_before_commit:2")
    assert killed.returncode == 137
    assert run_process(pg, NAME).returncode == 0
    assert admin.verify(pg, NAME, show_progress=False) == []


def test_sigusr1_makes_a_live_projector_count_lag_afresh(pg: Settings, tmp_path: Path) -> None:
    """The records applied before the signal (a benchmark's warm-up) leave the lag counts;
    those after it are counted."""
    copy = copy_settings(pg)
    topics = PostgresReadModel.topics
    copy_log(pg, copy, topics, part=(0.0, 0.5))
    stats = tmp_path / "stats.json"
    env = dict(
        os.environ, TRADEX_TOPIC_PREFIX=copy.topic_prefix, TRADEX_POSTGRES_DB=copy.postgres_db
    )
    live = subprocess.Popen(
        [sys.executable, "-m", "tradex.cli", "run", "projector", NAME, "--stats-json", str(stats)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_caught_up(copy)
        before = ends(copy, PostgresReadModel)
        live.send_signal(signal.SIGUSR1)
        time.sleep(1.0)  # the next step resets the counts
        copy_log(pg, copy, topics, part=(0.5, 1.0))
        _wait_caught_up(copy)
        after = ends(copy, PostgresReadModel)
    finally:
        live.send_signal(signal.SIGTERM)
        _out, err = live.communicate(timeout=60)
    assert live.returncode == 0, err[-2000:]
    report = json.loads(stats.read_text())[NAME]
    offsets_added = sum(after.values()) - sum(before.values())  # records and markers
    # Without the reset the first half's records would be counted too (more than this).
    assert 0 < report["records_timed"] <= offsets_added
