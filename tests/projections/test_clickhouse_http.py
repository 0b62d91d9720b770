"""Querying the chdb folder the projector holds: its read-only HTTP endpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.projections.chdb_folder import private_folder
from tests.projections.contract import ends
from tests.projections.exchange import Exchange
from tradex.infra.clickhouse import ChdbClickHouse, ClickHouseError
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.projections.analytics import Analytics
from tradex.projections.analytics_model import ClickHouseReadModel
from tradex.projections.clickhouse_http import (
    ENDPOINT_FILE,
    HttpClickHouse,
    NotASelect,
    endpoint,
    read_only,
)
from tradex.projections.projector import Versions

ENDPOINT_WAIT_S = 60.0
SAMPLES_MIN = 3


def test_read_only_lets_one_select_through_and_refuses_the_rest() -> None:
    assert read_only("SELECT 1") == "SELECT * FROM (\nSELECT 1\n) SETTINGS readonly = 1"
    assert read_only("  -- why\n/* what */ with x AS (SELECT 1 AS a) select a FROM x;\n") == (
        "SELECT * FROM (\nwith x AS (SELECT 1 AS a) select a FROM x\n) SETTINGS readonly = 1"
    )
    for refused in (
        "INSERT INTO t VALUES (1)", "DROP DATABASE x", "", "-- only a comment",
        "SYSTEM STOP MERGES", "CREATE TABLE t (a Int64) ENGINE = Memory", "OPTIMIZE TABLE t",
    ):  # fmt: skip
        with pytest.raises(NotASelect):
            read_only(refused)


@pytest.fixture
def store(exchange: Exchange, tmp_path: Path) -> Iterator[Settings]:
    yield from private_folder(exchange.settings, tmp_path / "chdb")


def projector_process(settings: Settings) -> subprocess.Popen[str]:
    """``tradex run projector clickhouse`` in small batches (slow enough to be caught
    writing), answering queries on a free port, until SIGTERM."""
    env = dict(
        os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix,
        TRADEX_CLICKHOUSE_PATH=str(settings.clickhouse_path), TRADEX_FAULT="",
    )  # fmt: skip
    argv = [sys.executable, "-m", "tradex.cli", "run", "projector", "clickhouse",
            "--batch-records", "20", "--http-port", "0"]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def tradex(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix,
        TRADEX_CLICKHOUSE_PATH=str(settings.clickhouse_path),
    )  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "tradex.cli", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.integration
def test_a_quant_queries_while_the_projector_writes(store: Settings) -> None:
    folder = store.clickhouse_path
    total = sum(ends(store, ClickHouseReadModel).values())
    process = projector_process(store)
    try:
        deadline = time.monotonic() + ENDPOINT_WAIT_S
        while endpoint(folder) is None or ClickHouseReadModel.versions(store).live is None:
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the projector serves no live read model"
            time.sleep(0.05)
        analytics = Analytics(store)
        samples: list[tuple[int, int]] = []
        while len(samples) < SAMPLES_MIN or not any(0 < s[0] < total for s in samples):
            assert process.poll() is None, "the projector finished before a query met it"
            (row,) = (
                analytics.sql(
                    f"SELECT (SELECT sum(next_offset) FROM {analytics.db}.log_positions) AS at, "
                    f"(SELECT count() FROM {analytics.db}.order_events) AS order_events"
                )
                .arrow()
                .to_pylist()
            )
            samples.append((row["at"], row["order_events"]))
        positions = [at for at, _rows in samples]
        assert positions == sorted(positions), "answers went back in the log"
        assert any(0 < at < total for at in positions), "no answer while writing"
        assert ClickHouseReadModel.versions(store) == Versions(1, None)  # through the endpoint
        with pytest.raises(ClickHouseError, match="only SELECT"):
            analytics.sql(f"DROP DATABASE {analytics.db}").arrow()
        url = endpoint(folder)
        assert url is not None
        with pytest.raises(ClickHouseError, match="SELECT queries only"):
            HttpClickHouse(url).command(f"DROP DATABASE {analytics.db}")
        status = tradex(store, "projections", "status", "clickhouse", "--json")
        assert status.returncode == 0, status.stderr[-2000:]
        assert json.loads(status.stdout)[0]["live"] == 1
        rebuild = tradex(store, "projections", "rebuild", "clickhouse")  # needs the folder
        assert rebuild.returncode == 2, rebuild.stderr[-2000:]
        assert "holds the chdb folder" in rebuild.stderr
        assert ClickHouseReadModel.versions(store) == Versions(1, None), "the refusal changed it"
        while sum(ClickHouseReadModel(store, 1).positions().values()) < total:
            assert process.poll() is None, "the projector stopped before the log's end"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err[-2000:]
    assert not (folder / ENDPOINT_FILE).exists(), "the endpoint file outlived the projector"
    assert endpoint(folder) is None
    done = ClickHouseReadModel(store, 1).positions()  # the folder itself, borrowed now
    assert sum(done.values()) == total
    assert ChdbClickHouse.release(folder) is False, "a borrow kept the folder open"
