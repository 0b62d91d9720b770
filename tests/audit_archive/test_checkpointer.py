"""The checkpointer: exactly once across a crash, every N records, and a removed or
unreadable checkpoint is named."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from prometheus_client import REGISTRY

from tests.audit_archive.conftest import Audited
from tests.audit_archive.tamper import chained, read_log, write_copy
from tests.log.memory_log import MemoryLog
from tradex.audit import checkpointer
from tradex.audit.checkpoints import check_checkpoints, latest, read_all
from tradex.audit.violations import Violation
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.source import KafkaLog
from tradex.log.topics import CHAINED_TOPICS, CHECKPOINTS

pytestmark = pytest.mark.integration


def run_cli(settings: Settings, *args: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT=fault,
        TRADEX_STACK_DIR=str(settings.stack_dir),
    )  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "tradex.cli", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_crash_before_commit_leaves_nothing_and_the_restart_continues(audited: Audited) -> None:
    log = chained(read_log(audited.settings, CHAINED_TOPICS))
    settings = write_copy(audited.settings, log)
    crashed = run_cli(settings, "audit", "checkpoint", fault="before_commit:1")
    assert crashed.returncode == 137, crashed.stderr
    with KafkaLog(settings) as source:
        assert latest(source) is None  # the open transaction was never committed
    done = run_cli(settings, "audit", "checkpoint")
    assert done.returncode == 0, done.stderr
    assert "checkpoint #0" in done.stdout
    # more records arrive; the running checkpointer signs them once there are >= N
    write_copy_into(settings, log)
    stop = threading.Event()
    counted = REGISTRY.get_sample_value("tradex_checkpoints_total") or 0.0
    covered = REGISTRY.get_sample_value("tradex_checkpoint_records_total") or 0.0
    written = checkpointer.run(settings, every_records=1, every_s=3600.0, stop=stop, idle_s_max=1.0)
    assert written == 1
    assert REGISTRY.get_sample_value("tradex_checkpoints_total") == counted + 1
    assert REGISTRY.get_sample_value("tradex_checkpoint_pending_records") == 0
    with KafkaLog(settings) as source:
        signed = [s for _r, s, _w in read_all(source)]
        assert [s.checkpoint.seq for s in signed if s] == [0, 1]
        first, second = signed[0], signed[1]
        assert first is not None and second is not None
        for stream in second.checkpoint.streams:
            before = first.checkpoint.stream(stream.place)
            assert before is not None and stream.start == before.end
        new_records = sum(s.records for s in second.checkpoint.streams)
        assert REGISTRY.get_sample_value("tradex_checkpoint_records_total") == covered + new_records
        assert new_records == sum(len(r) for r in log.values())
        found: list[Violation] = []
        check_checkpoints(source, audited.public_key, found)
        assert found == []
    assert run_cli(settings, "audit", "checkpoint", "--check").returncode == 0


def write_copy_into(settings: Settings, log: dict) -> None:
    """``log``'s records appended again to the copy's topics."""
    from confluent_kafka import Producer

    from tradex.infra.kafka import admin_timeout_s, producer_config

    producer = Producer(producer_config(settings))
    for (topic, partition), records in log.items():
        for record in records:
            producer.produce(settings.topic(topic), record.value, record.key, partition)
    assert producer.flush(admin_timeout_s) == 0


class CopiedLog(MemoryLog):
    """Records in memory with the Kafka log's ends (past its transaction markers)."""

    def __init__(self) -> None:
        super().__init__()
        self.highs: dict[tuple[str, int], int] = {}

    def end(self, place: tuple[str, int]) -> int:
        return self.highs.get(place, super().end(place))


def test_removed_and_unreadable_checkpoints_are_named(audited: Audited) -> None:
    memory = CopiedLog()
    with KafkaLog(audited.settings) as source:
        for topic in (*CHAINED_TOPICS, CHECKPOINTS):
            for partition in range(source.partitions(topic)):
                memory.highs[(topic, partition)] = source.watermarks(topic, partition)[1]
                for record in source.read(topic, partition):
                    memory.records.setdefault((topic, partition), []).append(record)
    found: list[Violation] = []
    check_checkpoints(memory, audited.public_key, found)
    assert found == []
    checkpoints = memory.records[(CHECKPOINTS, 0)]
    memory.records[(CHECKPOINTS, 0)] = [
        checkpoints[1],
        checkpoints[1]._replace(offset=checkpoints[1].offset + 1, value=b"{}"),
    ]
    check_checkpoints(memory, audited.public_key, found)
    assert {(v.check, v.offset) for v in found} == {
        ("checkpoint_sequence", checkpoints[1].offset),
        ("checkpoint_malformed", checkpoints[1].offset + 1),
    }
    memory.records[(CHECKPOINTS, 0)] = []
    found.clear()
    check_checkpoints(memory, audited.public_key, found)
    assert [v.check for v in found] == ["checkpoint_missing"]
