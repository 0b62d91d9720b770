"""kill -9 an account processor mid-batch, restart it: no lost, no duplicated effects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer

from tests.commands.support import (
    CODEC,
    check_exactly_once,
    load_reference,
    reference_table,
    run_accounts_process,
    send,
    workload,
)
from tradex.commands.client import encode_command
from tradex.commands.rebuild import rebuild_partition
from tradex.commands.snapshots import account_state
from tradex.infra.kafka import producer_config
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.keys import account_key
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_COMMANDS, ACCOUNT_EVENTS

pytestmark = pytest.mark.integration

PARTITIONS = 2
ACCOUNTS = list(range(1, 41))
SNAPSHOT_EVENTS = 300  # small: snapshots are written (and crash) during the run
OPTIONS = ["--batch-records", "100", "--snapshot-events", str(SNAPSHOT_EVENTS)]
TRICKLE_GAP_S = 0.005  # light load: a transaction per command or two


def _records_in(result: subprocess.CompletedProcess[str]) -> int:
    line = [x for x in result.stdout.splitlines() if x.startswith("accounts/")][-1]
    return int(line.split(" in=")[1].split()[0])


def _events_end(settings: Settings) -> int:
    with KafkaLog(settings) as log:
        return sum(log.ends([ACCOUNT_EVENTS]).values())


def _check_snapshot_restore(settings: Settings) -> None:
    """Snapshot + tail gives the same accounts as a full replay of the log."""
    reference = reference_table(ACCOUNTS)
    restored_any = False
    with KafkaLog(settings) as log:
        for partition in range(PARTITIONS):
            full, folded_full = rebuild_partition(log, CODEC, reference, partition, False)
            fast, folded_tail = rebuild_partition(log, CODEC, reference, partition, True)
            restored_any |= folded_tail < folded_full
            assert (fast.events_next, fast.last_hash) == (full.events_next, full.last_hash)
            assert {a.account_id: account_state(a) for a in fast.book} == {
                a.account_id: account_state(a) for a in full.book
            }
    assert restored_any, "no snapshot was used"


@pytest.mark.parametrize("fault", ["after_produce:4", "before_commit:3"])
def test_injected_crash_mid_transaction(settings: Settings, fault: str) -> None:
    load_reference(settings, ACCOUNTS, PARTITIONS)
    commands = workload(ACCOUNTS, PARTITIONS, 1_500, seed=len(fault))
    send(settings, commands)
    crashed = run_accounts_process(settings, PARTITIONS, "a", fault=fault, extra=OPTIONS)
    assert crashed.returncode == 137, crashed.stderr[-3000:]
    restarted = run_accounts_process(settings, PARTITIONS, "a", extra=OPTIONS)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert 0 < _records_in(restarted) <= len(commands)
    check_exactly_once(settings, PARTITIONS, ACCOUNTS, commands)
    _check_snapshot_restore(settings)


def test_kill_9_while_processing_a_backlog(settings: Settings) -> None:
    load_reference(settings, ACCOUNTS, PARTITIONS)
    commands = workload(ACCOUNTS, PARTITIONS, 4_000, seed=9)
    send(settings, commands)
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix)
    argv = [
        sys.executable, "-m", "tradex.cli", "run", "accounts", "--instance", "k",
        "--partitions", str(PARTITIONS), "--exit-when-idle", "3", *OPTIONS,
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 90
    while _events_end(settings) < 500 and time.monotonic() < deadline:
        assert process.poll() is None, "the processor exited before it was killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    restarted = run_accounts_process(settings, PARTITIONS, "k", extra=OPTIONS)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert _records_in(restarted) > 0, "killed after the backlog was done: nothing tested"
    check_exactly_once(settings, PARTITIONS, ACCOUNTS, commands)
    _check_snapshot_restore(settings)


def test_kill_9_under_light_load(settings: Settings) -> None:
    """Adaptive batches at a trickle (a transaction per command or two): kill -9 while
    commands keep arriving one by one, restart, every effect exactly once."""
    load_reference(settings, ACCOUNTS, PARTITIONS)
    commands = workload(ACCOUNTS, PARTITIONS, 300, seed=11)
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix)
    argv = [
        sys.executable, "-m", "tradex.cli", "run", "accounts", "--instance", "light",
        "--partitions", str(PARTITIONS), *OPTIONS,
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    producer = Producer(producer_config(settings))  # one client for the trickle
    errors: list[object] = []
    try:
        for index, command in enumerate(commands):  # in order: order ids are offsets
            producer.produce(
                settings.topic(ACCOUNT_COMMANDS), key=account_key(command.account_id),
                value=encode_command(CODEC, command),
                on_delivery=lambda error, _m: errors.append(error) if error else None,
            )  # fmt: skip
            assert producer.flush(30) == 0, "a command was not acknowledged"
            assert not errors, errors
            time.sleep(TRICKLE_GAP_S)  # acknowledged one by one, then a gap: ~100/s
            if index == 150:
                deadline = time.monotonic() + 90
                while _events_end(settings) < 50 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert process.poll() is None, "the processor exited before it was killed"
                process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    restarted = run_accounts_process(settings, PARTITIONS, "light", extra=OPTIONS)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert _records_in(restarted) > 0, "nothing left for the restarted processor: not tested"
    check_exactly_once(settings, PARTITIONS, ACCOUNTS, commands)
