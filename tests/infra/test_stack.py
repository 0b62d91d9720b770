"""`tradex stack`: health, idempotent up, and bad input that changes nothing."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tradex.infra import clickhouse as clickhouse_module
from tradex.infra import stack as stack_module
from tradex.infra.local_kafka import LocalKafka
from tradex.infra.local_process import StackError, pid_cmdline
from tradex.infra.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.integration


def _tradex(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradex.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=dict(os.environ, **(env or {})),
    )


def test_every_service_is_healthy(stack: Settings) -> None:
    results = stack_module.status(stack)
    names = [h.service for h in results]
    assert names[:5] == ["kafka", "postgres", "redis", "clickhouse", "api"]
    assert len(names) > 5  # a running exchange's services (tradex/infra/exchange.py), or
    assert names[5:] != ["exchange"] or results[5].state == "off"  # one "exchange off" line
    assert all(h.ok for h in results), stack_module.format_health(results)
    assert results[4].state in (None, "off"), results[4]  # the API: running or not started
    at = names.index("metrics")  # after the exchange's lines: /metrics endpoints, some or none
    assert results[at].state in (None, "off"), results[at]
    assert names[at + 1 :] in ([], ["prometheus"])  # listed when `up --monitoring` started it


def test_up_again_is_idempotent_and_keeps_the_cluster(stack: Settings) -> None:
    cluster_before = LocalKafka(stack, 1).cluster_id()
    pids_before = LocalKafka(stack, 1).running_pids()
    results = stack_module.up(stack, timeout_s=60)
    assert all(h.ok for h in results)
    assert LocalKafka(stack, 1).cluster_id() == cluster_before
    assert LocalKafka(stack, 1).running_pids() == pids_before


def test_status_command_from_another_process(stack: Settings) -> None:
    # The tests' chdb path is open in this pytest process: the CLI must see it as held
    # by a live process (embedded ClickHouse), not as down.
    clickhouse_module.connect(stack).query_rows("SELECT 1")
    env = {"TRADEX_CLICKHOUSE_PATH": str(stack.clickhouse_path)}
    done = _tradex("stack", "status", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [
        ["kafka", "up"],
        ["postgres", "up"],
        ["redis", "up"],
        ["clickhouse", "up"],
    ]
    assert lines[4].split()[:2] in (["api", "up"], ["api", "off"])
    assert any(line.split()[:2] in (["metrics", "up"], ["metrics", "off"]) for line in lines)
    assert f"open in process {os.getpid()}" in lines[3]


def test_bad_arguments_fail_clearly_and_change_nothing(stack: Settings) -> None:
    cases = [
        (("stack", "up", "--brokers", "0"), "--brokers must be 1..9"),
        (("stack", "up", "--only", "kafka,mongo"), "unknown service 'mongo'"),
        (("stack", "up", "--only", "api"), "start it with `tradex run api`"),
        (("stack", "down", "--wipe", "--only", "redis"), "cannot be combined"),
        (("stack", "logs", "zookeeper"), "no log for 'zookeeper'"),
        (("stack", "up", "--brokers", "3"), "belongs to a 1-broker cluster"),
    ]
    for args, message in cases:
        done = _tradex(*args)
        assert done.returncode != 0, args
        assert message in done.stderr, (args, done.stderr)
    assert all(h.ok for h in stack_module.status(stack))
    assert LocalKafka.recorded_brokers(stack) == 1


def test_logs_shows_each_service(stack: Settings) -> None:
    done = _tradex("stack", "logs", "kafka", "-n", "5")
    assert done.returncode == 0, done.stderr
    assert "kafka-1.log" in done.stdout


def test_a_port_taken_by_a_stranger_is_a_clear_error(stack: Settings, tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        other = dataclasses.replace(
            stack,
            stack_dir=tmp_path / "stack",
            redis_port=port,
            redis_url=f"redis://127.0.0.1:{port}/0",
        )
        with pytest.raises(StackError, match=f"port {port} is already in use"):
            stack_module.up(other, only=["redis"], timeout_s=5)
    assert not (tmp_path / "stack" / "run" / "redis.pid").exists()


def test_a_second_stack_on_the_same_ports_is_refused_before_starting_anything(
    stack: Settings, tmp_path: Path
) -> None:
    # The session's stack holds the default ports; another stack dir must not touch them.
    other = dataclasses.replace(stack, stack_dir=tmp_path / "other")
    with pytest.raises(StackError, match=f"port {stack.kafka_port_base} is already in use"):
        stack_module.up(other, timeout_s=5)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == [".lock"]
    assert all(h.ok for h in stack_module.status(stack, only=["kafka", "postgres", "redis"]))


def test_an_api_that_does_not_answer_yet_is_starting_then_down(
    stack: Settings, tmp_path: Path
) -> None:
    """An API process whose pid file is fresh and whose port is not bound yet is starting
    (status passes); the same after the start grace is DOWN; a dead one is not listed."""
    settings = dataclasses.replace(stack, stack_dir=tmp_path)
    (tmp_path / "run").mkdir()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a live process whose command line says "run api", never listening
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "run", "api"])
    try:
        # until the child has exec'd, its command line is still this process's
        deadline = time.monotonic() + 10
        while "run api" not in pid_cmdline(fake.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        pid_file = tmp_path / "run" / f"api-{port}.pid"
        pid_file.write_text(f"{fake.pid}\n{port}\n127.0.0.1\nprefix-\n")
        starting = stack_module.api_health(settings)
        assert starting.ok and "starting" in starting.detail, starting
        old = pid_file.stat().st_mtime - stack_module.api_start_grace_s - 1
        os.utime(pid_file, (old, old))
        down = stack_module.api_health(settings)
        assert not down.ok and str(port) in down.detail, down
    finally:
        fake.kill()
        fake.wait()
    gone = stack_module.api_health(settings)
    assert gone.ok and gone.state == "off", gone
