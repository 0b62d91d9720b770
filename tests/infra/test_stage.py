"""Exactly-once through a crash: kill a stage mid-transaction, restart it, check the log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.infra.counting_stage import CountingProcessor
from tradex.infra import stage as stage_module
from tradex.infra.kafka import TopicSpec, ensure_topics, produce_sync, producer_config
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.infra.stage import TIMING_ENV, BatchClock, TransactionalStage
from tradex.log.source import KafkaLog

pytestmark = pytest.mark.integration

records_per_partition = 400


def _run_stage(
    settings: Settings, instance: str, batches_max: int, fault: str = "", mode: tuple[str, ...] = ()
) -> int:
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT=fault)
    result = subprocess.run(
        [sys.executable, "-m", "tests.infra.counting_stage", instance, str(batches_max), *mode],
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


def _check_exactly_once(settings: Settings) -> None:
    for partition in (0, 1):
        out = _outputs(settings, partition)
        in_offsets = _input_offsets(settings, partition)
        assert [offset for offset, _ in out] == in_offsets, "lost, duplicated or reordered effects"
        assert [count for _, count in out] == list(range(1, len(in_offsets) + 1))


@pytest.mark.parametrize(
    ("fault", "mode"),
    [("after_produce:3", ()), ("before_commit:2", ()), ("before_commit:2", ("20",))],
    ids=["after_produce-adaptive", "before_commit-adaptive", "before_commit-fixed"],
)
def test_crash_mid_transaction_loses_and_duplicates_nothing(
    settings: Settings, fault: str, mode: tuple[str, ...]
) -> None:
    ensure_topics(settings, {"count-in": TopicSpec(2), "count-out": TopicSpec(2)})
    records = [
        (f"key-{i % 7}".encode(), f"v{i}".encode()) for i in range(2 * records_per_partition)
    ]
    produce_sync(settings, settings.topic("count-in"), records)

    assert _run_stage(settings, "a", batches_max=1_000, fault=fault, mode=mode) == 137
    # Restarted with the same transactional.id: the open transaction is aborted, state rebuilt.
    # Two more lives: one stopped cleanly after a few batches, one that runs until idle.
    assert _run_stage(settings, "a", batches_max=3, mode=mode) == 0
    assert _run_stage(settings, "a", batches_max=1_000, mode=mode) == 0
    _check_exactly_once(settings)


class _Trickle:
    """Records into count-in at a steady light rate, on a thread, until stopped."""

    def __init__(self, settings: Settings, per_s: float) -> None:
        self.settings = settings
        self.interval_s = 1.0 / per_s
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        producer = Producer(producer_config(self.settings))
        topic = self.settings.topic("count-in")
        while not self.stop.is_set():
            producer.produce(topic, f"v{self.sent}".encode(), f"key-{self.sent % 5}".encode())
            producer.flush(10)
            self.sent += 1
            time.sleep(self.interval_s)

    def __enter__(self) -> _Trickle:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_adaptive_batches_commit_at_once_when_idle_and_grow_under_load(
    settings: Settings,
) -> None:
    """Light load: (nearly) one transaction per record; a burst: far fewer transactions
    than records (batches grow while a commit runs). Exactly once throughout."""
    with _counting_stage(settings, "counting-inproc") as stage:
        with _Trickle(settings, per_s=10) as trickle:
            while trickle.sent < 30:
                time.sleep(0.05)
        light_sent = trickle.sent
        _wait_for(lambda: stage.stats.records_in >= light_sent, 60)
        light_batches = stage.stats.batches
        # 100 ms apart and commits of ~10-30 ms: nearly every record is its own batch (a
        # commit slowed past 100 ms by a busy machine may merge two).
        assert light_batches >= 0.5 * light_sent, (light_batches, light_sent)
        burst = [(f"key-{i % 7}".encode(), f"b{i}".encode()) for i in range(20_000)]
        produce_sync(settings, settings.topic("count-in"), burst)
        _wait_for(lambda: stage.stats.records_in >= light_sent + len(burst), 120)
        burst_batches = stage.stats.batches - light_batches
        assert burst_batches <= len(burst) / 20, f"{burst_batches} batches for the burst"
    _check_exactly_once(settings)


@contextlib.contextmanager
def _counting_stage(
    settings: Settings,
    transactional_id: str,
    batch_wait_ms: int | None = None,
    before_run: Callable[[TransactionalStage], None] | None = None,
) -> Iterator[TransactionalStage]:
    """The counting stage running in a thread of this process (its topics made), stopped
    after the block."""
    ensure_topics(settings, {"count-in": TopicSpec(2), "count-out": TopicSpec(2)})
    stage = TransactionalStage(
        settings,
        group_id=settings.topic("counting"),
        input_topics=[settings.topic("count-in")],
        processor=CountingProcessor(settings),
        transactional_id=settings.topic(transactional_id),
        batch_wait_ms=batch_wait_ms,
    )
    if before_run is not None:
        before_run(stage)
    stop = threading.Event()
    runner = threading.Thread(target=stage.run, args=(stop,), daemon=True)
    runner.start()
    try:
        yield stage
    finally:
        stop.set()
        runner.join(timeout=60)


@pytest.mark.parametrize("call", ["_send_offsets", "_finish"])
def test_a_transactional_call_that_never_returns_costs_a_producer_not_the_stage(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    """librdkafka's send_offsets_to_transaction can block forever when the group
    coordinator's broker dies (#5456, #5511). A call (offsets; flush + commit) that does not
    return in time is left to itself: a new producer fences the old one's transaction and
    the stage goes on from the committed offsets — every effect exactly once."""
    monkeypatch.setattr(stage_module, "offsets_hung_s", 1.0)
    monkeypatch.setattr(stage_module, "commit_hung_s", 1.0)
    released = threading.Event()
    hung: list[bool] = []

    def hang_once(stage: TransactionalStage) -> None:
        real = getattr(stage, call)

        def once(*args: object) -> None:
            if not hung:
                hung.append(True)
                released.wait(60)  # the stuck library call
                return
            real(*args)

        setattr(stage, call, once)

    ensure_topics(settings, {"count-in": TopicSpec(2), "count-out": TopicSpec(2)})
    records = [(f"key-{i % 7}".encode(), f"v{i}".encode()) for i in range(300)]
    produce_sync(settings, settings.topic("count-in"), records)
    try:
        with _counting_stage(settings, "counting-hung", before_run=hang_once) as stage:
            _wait_for(lambda: stage.stats.records_in >= len(records), 120)
            assert (stage.stats.hung_calls, stage.stats.producer_restarts) == (1, 1)
    finally:
        released.set()
    _check_exactly_once(settings)


def _wait_for(condition: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_under_light_load_loses_and_duplicates_nothing(settings: Settings) -> None:
    """Adaptive batches at a light rate (a transaction per record or two), SIGKILLed
    mid-stream while records keep coming, restarted: every effect exactly once."""
    ensure_topics(settings, {"count-in": TopicSpec(2), "count-out": TopicSpec(2)})
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT="")
    command = [sys.executable, "-m", "tests.infra.counting_stage", "light", "1000000"]
    with _Trickle(settings, per_s=100) as trickle:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)
        _wait_for(lambda: len(_outputs(settings, 0)) + len(_outputs(settings, 1)) >= 60, 90)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        time.sleep(0.3)  # more records arrive while it is down
    assert trickle.sent > 60
    assert _run_stage(settings, "light", batches_max=1_000_000) == 0
    _check_exactly_once(settings)


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
    _check_exactly_once(settings)


@pytest.mark.parametrize("batch_wait_ms", [None, 5], ids=["adaptive", "fixed"])
def test_batch_clock_follows_each_record_through_the_steps_of_its_batch(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_wait_ms: int | None
) -> None:
    """TRADEX_STAGE_TIMING: one line per committed batch, every input offset in exactly one
    line, the stamps in the order of the stage's steps (BatchClock.NAMES)."""
    monkeypatch.setenv(TIMING_ENV, str(tmp_path))
    with _counting_stage(settings, "counting-clock", batch_wait_ms) as stage:
        with _Trickle(settings, per_s=50) as trickle:
            while trickle.sent < 40:
                time.sleep(0.05)
        sent = trickle.sent
        _wait_for(lambda: stage.stats.records_in >= sent, 60)
    (path,) = tmp_path.iterdir()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == stage.stats.batches
    read: dict[str, list[int]] = {}
    for line in lines:
        stamps = line["stamps"]
        named = [stamps[name] for name in BatchClock.NAMES if name in stamps]
        assert named == sorted(named), stamps
        assert set(BatchClock.NAMES) - set(stamps) <= {"settled"}, stamps
        for place, (low, high) in line["ranges"].items():
            read.setdefault(place, []).append(low)
            read.setdefault(place, []).append(high)
    for partition in (0, 1):
        offsets = _input_offsets(settings, partition)
        bounds = read[f"{settings.topic('count-in')}:{partition}"]
        assert bounds == sorted(bounds), "batches out of order"
        assert bounds[0] == offsets[0]
        assert bounds[-1] == offsets[-1]
    assert sum(line["records"] for line in lines) == stage.stats.records_in == sent
    _check_exactly_once(settings)
