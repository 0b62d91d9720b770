"""Two account processors in one consumer group share the partitions, exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AdminClient

from tests.commands.support import check_exactly_once, load_reference, send, workload
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.topics import ACCOUNTS_GROUP

pytestmark = pytest.mark.integration

PARTITIONS = 4
ACCOUNTS = list(range(1, 61))


def _start(settings: Settings, instance: str) -> subprocess.Popen[str]:
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix)
    argv = [
        sys.executable, "-m", "tradex.cli", "run", "accounts", "--instance", instance,
        "--partitions", str(PARTITIONS), "--exit-when-idle", "8", "--batch-records", "50",
    ]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _summary(process: subprocess.Popen[str]) -> tuple[int, set[int]]:
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr[-3000:]
    line = [x for x in stdout.splitlines() if x.startswith("accounts/")][-1]
    records_in = int(line.split(" in=")[1].split()[0])
    partitions = line.split("partitions=[")[1].split("]")[0]
    return records_in, {int(p) for p in partitions.split(",") if p.strip()}


def _wait_for_members(settings: Settings, count: int, timeout_s: float = 90.0) -> None:
    """Until the group has ``count`` members with partitions (both joined: sharing starts
    with the first batch, whatever the two processes' start-up times)."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group = settings.topic(ACCOUNTS_GROUP)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        description = admin.describe_consumer_groups([group])[group].result()
        members = [m for m in description.members if m.assignment.topic_partitions]
        if len(members) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"the group never had {count} members with partitions")


def test_two_processors_share_partitions(settings: Settings) -> None:
    load_reference(settings, ACCOUNTS, PARTITIONS)
    first, second = _start(settings, "one"), _start(settings, "two")
    _wait_for_members(settings, 2)
    commands = workload(ACCOUNTS, PARTITIONS, 3_000, seed=4)
    send(settings, commands)
    (in_first, parts_first), (in_second, parts_second) = _summary(first), _summary(second)
    assert in_first > 0, "the first member processed nothing"
    assert in_second > 0, "the second member processed nothing"
    assert parts_first | parts_second == set(range(PARTITIONS))
    # A partition may have moved between them (rebalance): still each effect exactly once.
    check_exactly_once(settings, PARTITIONS, ACCOUNTS, commands)
