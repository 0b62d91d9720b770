"""The matcher on the real Kafka: a scripted session through the service, and exactly-once
through crashes (TRADEX_FAULT and a real kill -9) with snapshot + replay recovery, compared
byte for byte with a clean single run of the same input."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.matching.order_requests import Feed, random_feed
from tests.matching.test_wire import format_1_state
from tradex.infra.kafka import (
    TopicSpec,
    consumer_config,
    ensure_topics,
    partition_count,
    produce_sync,
)
from tradex.infra.partitioner import partition_for
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.snapshot_log import snapshot_outputs
from tradex.log.source import KafkaLog, LogRecord
from tradex.log.topics import (
    DEAD_LETTERS,
    ENGINE_EVENTS,
    MATCHER_GROUP,
    MATCHER_SNAPSHOTS,
    ORDER_REQUESTS,
    SETTLEMENTS,
    ensure_matcher_topics,
)
from tradex.matching import verify
from tradex.matching.book import OutputBuffers
from tradex.matching.partition import BookConfig, PartitionEngine
from tradex.matching.recovery import MAGIC, input_records, rebuild
from tradex.matching.service import build, topics_of
from tradex.schemas.codec import Codec

pytestmark = pytest.mark.integration

CONFIG = BookConfig(orders_max=1 << 12, price_levels_max=1 << 16)
BOOK_ARGS = ["--orders-max", str(CONFIG.orders_max), "--price-levels-max", str(CONFIG.price_levels_max)]  # fmt: skip
INPUT_PARTITIONS = 2
SETTLEMENT_PARTITIONS = 3
CODEC = Codec.offline()


def setup_topics(settings: Settings) -> None:
    ensure_topics(
        settings,
        {
            "order-requests": TopicSpec(INPUT_PARTITIONS),
            "settlements": TopicSpec(SETTLEMENT_PARTITIONS),
        },
    )


def read(settings: Settings, name: str, partition: int) -> list[LogRecord]:
    with KafkaLog(settings) as log:
        return list(log.read(name, partition))


def values(settings: Settings, name: str, partition: int) -> list[bytes]:
    return [r.value or b"" for r in read(settings, name, partition)]


def expected_outputs(
    settings: Settings, partitions: int = INPUT_PARTITIONS
) -> dict[tuple[str, int, str], list[bytes]]:
    """A clean single run, in process, of what is on order-requests: outputs per
    (topic, partition, producer) in log order."""
    topics = topics_of(settings)
    expected: dict[tuple[str, int, str], list[bytes]] = defaultdict(list)
    out = OutputBuffers(CONFIG.orders_max)
    for partition in range(partitions):
        engine = PartitionEngine(partition, CODEC, topics, SETTLEMENT_PARTITIONS, out, CONFIG)
        records = input_records(read(settings, ORDER_REQUESTS, partition))
        for output in engine.apply(records):
            # dead letters are keyed by source topic: compared without their partition
            target = -1 if output.topic == topics.dead_letters else output.partition
            expected[(output.topic, target, engine.producer)].append(output.value)
    return expected


def logged_outputs(settings: Settings) -> dict[tuple[str, int, str], list[bytes]]:
    topics = topics_of(settings)
    found: dict[tuple[str, int, str], list[bytes]] = defaultdict(list)
    names = {ENGINE_EVENTS: topics.engine_events, SETTLEMENTS: topics.settlements,
             DEAD_LETTERS: topics.dead_letters}  # fmt: skip
    for name, topic in names.items():
        for partition in range(partition_count(settings, topic)):
            for value in values(settings, name, partition):
                producer = CODEC.decode(value).record["envelope"]["producer"]
                target = -1 if topic == topics.dead_letters else partition
                found[(topic, target, producer)].append(value)
    return found


# --- a scripted session through the service ----------------------------------------------


def test_scripted_session_through_the_service(settings: Settings) -> None:
    setup_topics(settings)
    feed = Feed(CODEC)
    feed.rules(7, band_bps=1_000)
    feed.new(101, 1, 7, "SELL", 100, 5)  # rests
    feed.new(102, 2, 7, "BUY", 101, 3)  # crosses: trade 3 @ 100, 102 filled
    feed.new(103, 3, 7, "BUY", 95, 4)  # rests
    feed.cancel(103, 3, 7)  # cancelled
    feed.new(104, 3, 7, "BUY", 80, 1)  # outside the 10 % band around 100: rejected
    feed.new(105, 1, 7, "BUY", 100, 1, stp="CANCEL_TAKER")  # would trade with own 101
    feed.rules(7, band_bps=1_000, halted=True)
    feed.new(106, 2, 7, "BUY", 100, 1)  # halted: rejected
    feed.cancel(101, 1, 7)  # halted: cancels still accepted
    feed.new(201, 4, 8, "BUY", 10, 1)  # instrument 8 unknown: rejected
    feed.raw(b"7", b"not avro")  # dead letter
    produce_sync(settings, settings.topic("order-requests"), feed.records)

    stage, _processor = build(settings, instance="a", config=CONFIG, batch_records=4)
    stats = stage.run(idle_s_max=2.0)
    assert stats.records_in == len(feed.records)
    assert stats.aborts == 0

    p7 = partition_for(b"7", INPUT_PARTITIONS)
    events = [CODEC.decode(v).record for v in values(settings, "engine-events", p7)]
    kinds = [(e["envelope"]["type"], e.get("order_id")) for e in events if e["instrument_id"] == 7]
    assert kinds == [
        ("RulesApplied", None),
        ("Accepted", 101), ("Rested", 101), ("L2Delta", None),
        ("Accepted", 102), ("Trade", None), ("L2Delta", None), ("Filled", 102),
        ("Accepted", 103), ("Rested", 103), ("L2Delta", None),
        ("Cancelled", 103), ("L2Delta", None),
        ("Rejected", 104),
        ("Accepted", 105), ("Cancelled", 105),
        ("RulesApplied", None),
        ("Rejected", 106),
        ("Cancelled", 101), ("L2Delta", None),
    ]  # fmt: skip
    by_type = defaultdict(list)
    for e in events:
        by_type[e["envelope"]["type"]].append(e)
    assert [r["reason"] for r in by_type["Rejected"] if r["instrument_id"] == 7] == [
        "OUTSIDE_PRICE_BAND", "INSTRUMENT_HALTED",
    ]  # fmt: skip
    assert by_type["Cancelled"][1]["reason"] == "SELF_TRADE_PREVENTED"
    seqs = [e["envelope"]["seq"] for e in events if e["instrument_id"] == 7]
    assert seqs == list(range(1, len(seqs) + 1))
    (trade,) = by_type["Trade"]
    assert (trade["price"], trade["qty"], trade["maker_order_id"], trade["taker_order_id"]) == (
        100, 3, 101, 102,
    )  # fmt: skip

    settlements = []
    for partition in range(SETTLEMENT_PARTITIONS):
        for logged in read(settings, SETTLEMENTS, partition):
            record = CODEC.decode(logged.value or b"").record
            key = str(record["account_id"]).encode()
            assert logged.key == key
            assert partition == partition_for(key, SETTLEMENT_PARTITIONS)
            settlements.append(record)
    legs = sorted((r["account_id"], r["order_id"], r["side"], r["qty"], r["liquidity"])
                  for r in settlements if r["envelope"]["type"] == "FillLeg")  # fmt: skip
    assert legs == [(1, 101, "SELL", 3, "MAKER"), (2, 102, "BUY", 3, "TAKER")]
    ended = sorted((r["order_id"], r["reason"])
                   for r in settlements if r["envelope"]["type"] == "OrderEnded")  # fmt: skip
    assert ended == [
        (101, "CANCELLED"), (102, "FILLED"), (103, "CANCELLED"), (104, "REJECTED"),
        (105, "CANCELLED"), (106, "REJECTED"), (201, "REJECTED"),
    ]  # fmt: skip

    letters = [CODEC.decode(v).record
               for p in range(partition_count(settings, settings.topic("dead-letters")))
               for v in values(settings, "dead-letters", p)]  # fmt: skip
    assert [(d["reason"], d["source_offset"]) for d in letters] == [
        (
            "undecodable",
            sum(partition_for(k or b"", INPUT_PARTITIONS) == p7 for k, _ in feed.records[:-1]),
        )
    ]
    # The whole log is what a clean in-process run of the same input gives.
    assert logged_outputs(settings) == expected_outputs(settings)
    for partition in range(INPUT_PARTITIONS):
        assert verify.verify_partition(settings, partition, config=CONFIG, codec=CODEC).ok


# --- crashes --------------------------------------------------------------------------------


def _matcher(settings: Settings, fault: str = "", batch_records: int = 60) -> subprocess.Popen[str]:
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT=fault)
    command = [sys.executable, "-m", "tradex.cli", "run", "matcher", "--instance", "a",
               "--exit-when-idle", "2", "--batch-records", str(batch_records),
               "--snapshot-records", "150", *BOOK_ARGS]  # fmt: skip
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=180)
    return process.returncode, stdout, stderr


def _committed_total(settings: Settings) -> int:
    with KafkaLog(settings) as log:
        return sum(
            max(offset, 0) for offset in log.committed(MATCHER_GROUP, ORDER_REQUESTS).values()
        )


def _written_total(settings: Settings) -> int:
    """Records in engine-events, committed or not (its log end, read_uncommitted)."""
    topic = settings.topic("engine-events")
    consumer = Consumer(consumer_config(settings, topic, **{"isolation.level": "read_uncommitted"}))
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1]
            for p in range(partition_count(settings, topic))
        )
    finally:
        consumer.close()


def test_crashes_lose_duplicate_and_reorder_nothing(settings: Settings) -> None:
    setup_topics(settings)
    # on both partitions; request times go back up to 30 ms (the engine clocks hold them)
    feed = random_feed(11, 1_500, instruments=(1, 2, 3, 5, 6), jitter_ms=30)
    feed.raw(b"1", b"\x00garbage")
    produce_sync(settings, settings.topic("order-requests"), feed.records)
    total = len(feed.records)

    # 1. Dies with records in an open transaction.
    code, _out, err = _finish(_matcher(settings, "after_produce:4"))
    assert code == 137, err[-3000:]
    # 2. Dies after sending offsets, before the commit.
    code, _out, err = _finish(_matcher(settings, "before_commit:5"))
    assert code == 137, err[-3000:]
    # 3. kill -9 under load, once it has committed something: its stage produces a batch
    # only after the previous one committed, so ~5 batches of output in engine-events mean
    # some committed. (Asking for the committed offsets instead blocks while a transaction
    # is open, and the pipelined stage nearly always has one.)
    baseline = _committed_total(settings)
    assert 0 < baseline < total
    written = _written_total(settings)
    process = _matcher(settings, batch_records=10)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if _written_total(settings) > written + 50:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    code, _out, err = _finish(process)
    assert code == -signal.SIGKILL, f"not killed mid-run (rc {code}): {err[-2000:]}"
    # 4. A clean life to the end, which restores snapshots and replays their tails.
    code, out, err = _finish(_matcher(settings))
    assert code == 0, err[-3000:]
    consumed = int(re.findall(r" in=(\d+) ", out)[0])
    assert 0 < consumed < total - baseline, f"the killed run committed nothing: {out}"
    rebuilt = [(int(s), int(r)) for s, r in re.findall(r"snapshot=(-?\d+),replayed=(\d+)", out)]
    assert len(rebuilt) == INPUT_PARTITIONS, out
    assert any(snapshot > 0 for snapshot, _ in rebuilt), f"no snapshot restored: {out}"
    assert _committed_total(settings) == total

    logged = logged_outputs(settings)
    expected = expected_outputs(settings)
    assert logged.keys() == expected.keys()
    for key, records in expected.items():
        got = logged[key]
        assert len(got) == len(records), f"{key}: {len(got)} records, expected {len(records)}"
        assert got == records, f"{key}: records differ from a clean run"
    for partition in range(INPUT_PARTITIONS):
        assert verify.verify_partition(settings, partition, config=CONFIG, codec=CODEC).ok


# --- snapshots of an older state format --------------------------------------------------


def test_a_snapshot_of_the_previous_state_format_means_a_full_replay(settings: Settings) -> None:
    """A format-1 matcher state (books without engine clocks and book_seqs) is refused, not
    misread: the rebuild replays the partition from offset 0 and ends in the same state."""
    ensure_topics(
        settings,
        {"order-requests": TopicSpec(1), "settlements": TopicSpec(SETTLEMENT_PARTITIONS)},
    )
    ensure_matcher_topics(settings)  # matcher-snapshots: 1 partition, like order-requests
    topics = topics_of(settings)
    snapshots = settings.topic(MATCHER_SNAPSHOTS)
    feed = random_feed(12, 400, jitter_ms=30)
    produce_sync(settings, topics.order_requests, feed.records)
    records = input_records(read(settings, ORDER_REQUESTS, 0))
    out = OutputBuffers(CONFIG.orders_max)
    clean = PartitionEngine(0, CODEC, topics, SETTLEMENT_PARTITIONS, out, CONFIG)
    clean.apply(records)
    end = clean.next_offset

    def rebuilt() -> tuple[int, int, PartitionEngine]:
        engine = PartitionEngine(0, CODEC, topics, SETTLEMENT_PARTITIONS, out, CONFIG)
        with KafkaLog(settings) as source:
            report = rebuild(source, engine, committed=end)
        return report.snapshot_offset, report.replayed, engine

    old = snapshot_outputs(snapshots, 0, MAGIC, end, format_1_state(clean))
    produce_sync(settings, snapshots, [(o.key, o.value) for o in old])
    snapshot_offset, replayed, engine = rebuilt()
    assert (snapshot_offset, replayed) == (-1, len(records))
    assert engine.state_bytes() == clean.state_bytes()
    assert engine.book_seqs == clean.book_seqs
    assert any(seq > 0 for seq in engine.book_seqs.values())
    # The same snapshot in the current format is used (no replay): the test can tell.
    new = snapshot_outputs(snapshots, 0, MAGIC, end, clean.state_bytes())
    produce_sync(settings, snapshots, [(o.key, o.value) for o in new])
    snapshot_offset, replayed, engine = rebuilt()
    assert (snapshot_offset, replayed) == (end, 0)
    assert engine.state_bytes() == clean.state_bytes()


# --- two members, one killed --------------------------------------------------------------

FAILOVER_PARTITIONS = 4


@contextlib.contextmanager
def _member(settings: Settings, instance: str, logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tradex run matcher --instance <instance>`` until signalled, its stderr (the
    assignment and rebuild log lines) in ``logs/<instance>.err``; stopped (SIGTERM) and
    waited for on exit if still running."""
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix, TRADEX_FAULT="")
    command = [sys.executable, "-m", "tradex.cli", "run", "matcher", "--instance", instance,
               "--batch-records", "10", "--snapshot-records", "150", *BOOK_ARGS]  # fmt: skip
    with (logs / f"{instance}.out").open("w") as out, (logs / f"{instance}.err").open("w") as err:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def _assigned(log_text: str) -> list[int]:
    """The partitions of the member's last assignment (its "partitions assigned" JSON log
    line, tradex.observability.logs; a line still being written is skipped)."""
    found: list[list[list[object]]] = []
    for text in log_text.splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict) and line.get("event") == "partitions assigned":
            found.append(line["partitions"])
    return [int(str(partition)) for _topic, partition in found[-1]] if found else []


def _written(settings: Settings, partitions: list[int]) -> int:
    """Records in engine-events[partitions], committed or not (read_uncommitted ends)."""
    topic = settings.topic("engine-events")
    consumer = Consumer(consumer_config(settings, topic, **{"isolation.level": "read_uncommitted"}))
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1]
            for p in partitions
        )
    finally:
        consumer.close()


def test_two_matchers_share_the_partitions_and_one_takes_over_a_killed_ones(
    settings: Settings, tmp_path: Path
) -> None:
    """Two members of the matcher group split order-requests; one is SIGKILLed under load;
    the other takes over its partitions from their snapshots, and the log is byte for byte
    what one clean run of the same input writes (and verify says so)."""
    ensure_topics(
        settings,
        {"order-requests": TopicSpec(FAILOVER_PARTITIONS),
         "settlements": TopicSpec(SETTLEMENT_PARTITIONS)},
    )  # fmt: skip
    feed = random_feed(31, 6_000, instruments=tuple(range(1, 13)), jitter_ms=30)
    produce_sync(settings, settings.topic("order-requests"), feed.records)
    total = len(feed.records)
    expected = expected_outputs(settings, FAILOVER_PARTITIONS)
    engine_topic = settings.topic("engine-events")
    final = {
        p: len(expected[(engine_topic, p, f"matcher/{p}")]) for p in range(FAILOVER_PARTITIONS)
    }

    with _member(settings, "a", tmp_path) as a, _member(settings, "b", tmp_path) as b:
        # Both members hold partitions and b has written a share of its outputs, not all.
        deadline = time.monotonic() + 120
        mine: list[int] = []
        while time.monotonic() < deadline and b.poll() is None:
            mine = _assigned((tmp_path / "b.err").read_text())
            theirs = _assigned((tmp_path / "a.err").read_text())
            split = len(mine) == 2 and len(theirs) == 2 and not set(mine) & set(theirs)
            # ... and a fifth of each of b's partitions written: past its first snapshots
            if split and all(_written(settings, [p]) > final[p] / 5 for p in mine):
                b.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        assert b.wait(timeout=30) == -signal.SIGKILL, (tmp_path / "b.err").read_text()[-2000:]
        killed_at = _written(settings, mine)
        # b was killed mid-run (how far it got between the check and the signal depends on the
        # machine's speed; a fast machine had written 83% of its share)
        assert killed_at < sum(final[p] for p in mine), "b finished before it was killed"
        # a takes over b's partitions (after the session timeout) and drains everything.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and _committed_total(settings) < total:
            assert a.poll() is None, (tmp_path / "a.err").read_text()[-3000:]
            time.sleep(0.5)
        assert _committed_total(settings) == total
        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=60) == 0, (tmp_path / "a.err").read_text()[-3000:]

    log_a = (tmp_path / "a.err").read_text()
    assert sorted(_assigned(log_a)) == list(range(FAILOVER_PARTITIONS))
    rebuilt = {
        int(p): int(snapshot)
        for p, snapshot in re.findall(r"partition (\d+) rebuilt: snapshot at (-?\d+)", log_a)
    }  # the last rebuild of each partition: after the takeover
    assert all(rebuilt[p] > 0 for p in mine), f"b's partitions {mine} not from snapshots: {rebuilt}"
    logged = logged_outputs(settings)
    assert logged.keys() == expected.keys()
    for key, records in expected.items():
        assert logged[key] == records, f"{key}: records differ from a clean run"
    for partition in range(FAILOVER_PARTITIONS):
        assert verify.verify_partition(settings, partition, config=CONFIG, codec=CODEC).ok
