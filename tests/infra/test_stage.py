"""Exactly-once through a crash: kill a stage mid-transaction, restart it, check the log."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tradex.infra.kafka import TopicSpec, ensure_topics, produce_sync
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.source import KafkaLog

pytestmark = pytest.mark.integration

records_per_partition = 400


def _run_stage(settings: Settings, instance: str, batches_max: int, fault: str = "") -> int:
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT=fault)
    result = subprocess.run(
        [sys.executable, "-m", "tests.infra.counting_stage", instance, str(batches_max)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode in (0, 137), result.stderr[-3000:]
    return result.returncode


def _outputs(settings: Settings, partition: int) -> list[tuple[int, int]]:
    with KafkaLog(settings) as log:
        return [
            tuple(int(x) for x in (r.value or b"").split(b":"))  # type: ignore[misc]
            for r in log.read("count-out", partition)
        ]


def _input_offsets(settings: Settings, partition: int) -> list[int]:
    with KafkaLog(settings) as log:
        return [r.offset for r in log.read("count-in", partition)]


@pytest.mark.parametrize("fault", ["after_produce:3", "before_commit:2"])
def test_crash_mid_transaction_loses_and_duplicates_nothing(settings: Settings, fault: str) -> None:
    ensure_topics(settings, {"count-in": TopicSpec(2), "count-out": TopicSpec(2)})
    records = [
        (f"key-{i % 7}".encode(), f"v{i}".encode()) for i in range(2 * records_per_partition)
    ]
    produce_sync(settings, settings.topic("count-in"), records)

    assert _run_stage(settings, "a", batches_max=1_000, fault=fault) == 137
    # Restarted with the same transactional.id: the open transaction is aborted, state rebuilt.
    # Two more lives: one stopped cleanly after a few batches, one that runs until idle.
    assert _run_stage(settings, "a", batches_max=3) == 0
    assert _run_stage(settings, "a", batches_max=1_000) == 0
    for partition in (0, 1):
        out = _outputs(settings, partition)
        in_offsets = _input_offsets(settings, partition)
        assert [offset for offset, _ in out] == in_offsets, "lost, duplicated or reordered effects"
        assert [count for _, count in out] == list(range(1, len(in_offsets) + 1))


def test_a_member_joining_mid_stream_rebalances_without_loss_or_duplicates(
    settings: Settings,
) -> None:
    ensure_topics(settings, {"count-in": TopicSpec(2), "count-out": TopicSpec(2)})
    records = [(f"key-{i % 11}".encode(), f"v{i}".encode()) for i in range(6_000)]
    produce_sync(settings, settings.topic("count-in"), records)
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT="")
    command = [sys.executable, "-m", "tests.infra.counting_stage"]
    first = subprocess.Popen([*command, "a", "100000"], cwd=REPO_ROOT, env=env)
    # Join once the first member is committing: its assignment is revoked mid-stream.
    for _ in range(200):
        if _outputs(settings, 0) or _outputs(settings, 1):
            break
        time.sleep(0.1)
    second = subprocess.Popen([*command, "b", "100000"], cwd=REPO_ROOT, env=env)
    assert first.wait(timeout=240) == 0
    assert second.wait(timeout=240) == 0
    for partition in (0, 1):
        out = _outputs(settings, partition)
        in_offsets = _input_offsets(settings, partition)
        assert [offset for offset, _ in out] == in_offsets, "lost, duplicated or reordered effects"
        assert [count for _, count in out] == list(range(1, len(in_offsets) + 1))
