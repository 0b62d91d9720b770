"""``tradex bench e2e``: whole order trips through the live pipeline, beside the raw Kafka
chain of the same shape, on the local Kafka.

    tradex bench e2e                  # 60k orders + 20 s at 1,000 orders/s + the raw chain
    tradex bench e2e --quick          # smoke run
    tradex bench e2e --batch-wait-ms 5    # the stages in the fixed-batch mode (comparison)

The pipeline is what ``tradex demo`` runs: ``tradex run reference``, ``tradex run
accounts`` and ``tradex run matcher`` as separate processes on fresh topics (4 partitions).
Reference data and funding go first (``--accounts`` accounts, three instruments of
:mod:`.exchange_log`). The orders come in pairs: two accounts, one instrument, one price
per instrument, the same quantity, opposite sides, GTC; whichever reaches the book second
crosses (about half the orders cross) and at the end every order is FILLED, so every hold
is released. An order counts when its last effect — the ``HoldReleased`` of its
``OrderEnded`` — is committed on ``account-events`` (read back read_committed).

Phases:

1. **latency**: ``--rate`` orders/s for ``--latency-seconds``; per order, its send time
   against the moment its ``OrderAccepted`` is read back (order→ack) and, for the order
   that crossed, the moment the ``Trade`` (``engine-events``) naming it as taker is read
   back (order→trade); p50/p99.
2. **throughput**: ``--orders`` orders produced at once into the idle pipeline; orders/s
   = orders / (last HoldReleased read back - first order sent).
3. **raw chain** (:mod:`.raw_chain`): the same shape — partitions, records per order per
   topic and their mean sizes measured on phase 2's log — through two pass-through stages
   on the same stage code (consumer settings, adaptive batches, transactions), no
   decoding or deciding; the same number of orders at once. ``raw_chain_share`` =
   pipeline orders/s ÷ raw chain orders/s.

Last line: one JSON object (../shared/bench/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from tradex.bench.exchange_log import (
    INSTRUMENTS,
    funding,
    reference_commands,
    wait_reference_applied,
)
from tradex.bench.raw_chain import (
    RAW_COMMANDS,
    RAW_EVENTS,
    ChainSpec,
    ensure_raw_topics,
    spec_json,
)
from tradex.commands.client import encode_command
from tradex.domain import OrderKind, PlaceOrder, Side
from tradex.domain.ids import order_id
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import non_negative_int, positive_int
from tradex.infra.kafka import (
    TopicSpec,
    ensure_topics,
    produce_sync,
    producer_config,
)
from tradex.infra.settings import REPO_ROOT, Settings
from tradex.log.keys import account_key, reference_key
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    ENGINE_EVENTS,
    ORDER_REQUESTS,
    REFERENCE_COMMANDS,
    SETTLEMENTS,
    ensure_account_topics,
    ensure_matcher_topics,
    ensure_reference_topics,
)
from tradex.schemas.codec import Codec

PARTITIONS = 4
T0_NS = 1_700_000_000_000_000_000
TARGETS = {"orders_per_s": 12_000, "raw_chain_share": 0.5, "ack_p99_ms": 20, "trade_p99_ms": 40}
READY_S_MAX = 180.0  # stages started, reference data and funding applied
DRAIN_S_MAX = 300.0  # every order of a phase released
STAGE_STOP_S = 30.0
WATCH_POLL_S = 0.005
RAW_WARM_ORDERS = 200


def _spawn(
    settings: Settings, words: Sequence[str], log_path: Path, module: str = "tradex.cli"
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TRADEX_TOPIC_PREFIX=settings.topic_prefix,
               TRADEX_KAFKA_BOOTSTRAP=settings.kafka_bootstrap)  # fmt: skip
    with log_path.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *words], cwd=REPO_ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STAGE_STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _wire_ids(codec: Codec, name: str) -> np.ndarray:
    """The schema ids (as in a record's bytes 1..4) of every version of ``name``."""
    return np.array([int.from_bytes(h[1:5], "big") for h in codec.headers_of(name)], np.int64)


def _schema_ids(values: bytes, offsets: np.ndarray) -> np.ndarray:
    """Per record, the schema id of its wire header (-1 for a value shorter than one)."""
    starts, lengths = offsets[:-1], np.diff(offsets)
    ids = np.full(len(starts), -1, np.int64)
    whole = lengths >= 5
    if not whole.any():
        return ids
    data = np.frombuffer(values, np.uint8)
    at = starts[whole]
    ids[whole] = (
        (data[at + 1].astype(np.int64) << 24) | (data[at + 2].astype(np.int64) << 16)
        | (data[at + 3].astype(np.int64) << 8) | data[at + 4].astype(np.int64)
    )  # fmt: skip
    return ids


class Watcher:
    """Follows ``account-events`` and ``engine-events`` (read_committed) on a thread: counts
    records by type from their headers (no decoding); decodes the ``OrderAccepted`` and
    ``Trade`` records while ``timing`` is on, noting when each was read."""

    COUNTED = ("Deposited", "OrderAccepted", "HoldReleased", "FillSettled", "Trade",
               "OrderRejected", "CommandRejected")  # fmt: skip

    def __init__(self, settings: Settings, codec: Codec, partitions: int, engine_partitions: int):
        self.codec = codec
        self.ids = {name: _wire_ids(codec, name) for name in self.COUNTED}
        self.counts = dict.fromkeys(self.COUNTED, 0)
        self.timing = False
        self.acked: dict[str, float] = {}  # command id -> read back (perf_counter s)
        self.traded: dict[int, float] = {}  # taker order id -> its first trade read back
        self.waits: list[tuple[str, int, threading.Event, list[float]]] = []
        self.releases: list[tuple[float, int]] = []  # (read back, HoldReleased so far)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.log = KafkaLog(settings)
        starts = {(ACCOUNT_EVENTS, p): 0 for p in range(partitions)}
        starts |= {(ENGINE_EVENTS, p): 0 for p in range(engine_partitions)}
        self.tail = self.log.follow_batches(starts)
        self.thread = threading.Thread(target=self._run, name="e2e-watcher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                batch = self.tail.poll_batch(WATCH_POLL_S, 50_000)
                if not len(batch):
                    continue
                now = time.perf_counter()
                ids = _schema_ids(batch.values, batch.value_offsets)
                found = {
                    name: np.flatnonzero(np.isin(ids, self.ids[name])) for name in self.COUNTED
                }
                if self.timing:
                    for i in found["OrderAccepted"].tolist():
                        _env, body = self.codec.decode_domain(batch.value(i) or b"")
                        self.acked.setdefault(body.command_id, now)
                    for i in found["Trade"].tolist():
                        _env, body = self.codec.decode_domain(batch.value(i) or b"")
                        self.traded.setdefault(body.taker_order_id, now)
                with self.lock:
                    for name, rows in found.items():
                        self.counts[name] += len(rows)
                    if len(found["HoldReleased"]):
                        self.releases.append((now, self.counts["HoldReleased"]))
                    for name, target, event, at in self.waits:
                        if not event.is_set() and self.counts[name] >= target:
                            at.append(now)
                            event.set()
        except BaseException as exc:
            self.error = exc

    def wait(self, name: str, target: int, limit_s: float) -> float:
        """Until ``target`` records of type ``name`` are read; when that happened."""
        event, at = threading.Event(), list[float]()
        with self.lock:
            if self.counts[name] >= target:
                return time.perf_counter()
            self.waits.append((name, target, event, at))
        deadline = time.monotonic() + limit_s
        while not event.wait(0.2):
            if self.error is not None:
                raise RuntimeError("the watcher failed") from self.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.counts[name]:,} of {target:,} {name} after {limit_s} s")
        return at[0]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.tail.close()
        self.log.close()


def order_pairs(pairs: int, accounts: int, first: int, seed: int) -> list[PlaceOrder]:
    """``pairs`` pairs of GTC orders (see the module doc); command ids ``e<n>`` from ``first``."""
    assert accounts >= 2, accounts
    rng = np.random.default_rng(seed)
    orders: list[PlaceOrder] = []
    n = first
    for _ in range(pairs):
        instrument_id, _symbol, _base, _scale, mid, _tick, _lot = INSTRUMENTS[
            int(rng.integers(len(INSTRUMENTS)))
        ]
        a, b = (int(x) for x in rng.choice(np.arange(1, accounts + 1), 2, replace=False))
        qty = int(rng.integers(1, 21))
        first_side = Side.BUY if rng.random() < 0.5 else Side.SELL
        second_side = Side.SELL if first_side == Side.BUY else Side.BUY
        for account, side in ((a, first_side), (b, second_side)):
            orders.append(PlaceOrder(f"e{n}", account, T0_NS + n * 1_000, instrument_id, side,
                                     OrderKind.GTC, mid, qty))  # fmt: skip
            n += 1
    return orders


class Pipeline:
    """The live pipeline on fresh topics: its stages as processes, the watcher."""

    def __init__(self, settings: Settings, accounts: int, work_dir: Path,
                 batch_wait_ms: int | None) -> None:  # fmt: skip
        self.settings = settings
        self.accounts = accounts
        self.work_dir = work_dir
        self.batch_wait_ms = batch_wait_ms
        self.codec = Codec.offline()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.watcher: Watcher | None = None
        self.placed = 0
        self.producer = Producer(producer_config(settings))
        self.topic = settings.topic(ACCOUNT_COMMANDS)

    def start(self) -> None:
        settings, codec = self.settings, self.codec
        ensure_account_topics(settings, PARTITIONS)
        ensure_topics(settings, {ORDER_REQUESTS: TopicSpec(PARTITIONS)})
        engine_partitions, _ = ensure_matcher_topics(settings)
        ensure_reference_topics(settings)
        self.watcher = Watcher(settings, codec, PARTITIONS, engine_partitions)
        reference = reference_commands(self.accounts)
        produce_sync(settings, settings.topic(REFERENCE_COMMANDS),
                     [(reference_key(c), encode_command(codec, c)) for c in reference])  # fmt: skip
        batching = (
            [] if self.batch_wait_ms is None else ["--batch-wait-ms", str(self.batch_wait_ms)]
        )
        for words in (
            ["run", "reference", "--instance", "bench"],
            ["run", "accounts", "--instance", "bench", "--partitions", str(PARTITIONS), *batching],
            ["run", "matcher", "--instance", "bench", *batching],
        ):
            self.processes.append(_spawn(settings, words, self.work_dir / f"{words[1]}.log"))
        wait_reference_applied(settings, len(reference), READY_S_MAX)
        fund = funding(self.accounts)
        produce_sync(settings, self.topic,
                     [(account_key(c.account_id), encode_command(codec, c)) for c in fund])  # fmt: skip
        self.watcher.wait("Deposited", len(fund), READY_S_MAX)

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")

    def encoded(self, pairs: int, seed: int) -> list[tuple[str, bytes, bytes]]:
        orders = order_pairs(pairs, self.accounts, self.placed, seed)
        self.placed += len(orders)
        return [(o.command_id, encode_command(self.codec, o), account_key(o.account_id))
                for o in orders]  # fmt: skip

    def latency(self, rate: int, seconds: float) -> dict[str, Any]:
        """Orders at ``rate``/s for ``seconds``: order→ack and order→trade percentiles."""
        watcher = self.watcher
        assert watcher is not None, "start() first"
        encoded = self.encoded(max(1, round(rate * seconds / 2)), seed=2)
        released_before = watcher.counts["HoldReleased"]
        sent: dict[str, float] = {}
        command_of: dict[int, str] = {}  # order id -> command id (delivery reports)

        def delivered(command_id: str) -> Callable[[KafkaError | None, Message], None]:
            def on_delivery(error: KafkaError | None, message: Message) -> None:
                if error is None:
                    command_of[order_id(message.partition() or 0, message.offset() or 0)] = (
                        command_id
                    )

            return on_delivery

        watcher.timing = True
        interval_s = 1.0 / rate
        started = time.perf_counter()
        for index, (command_id, value, key) in enumerate(encoded):
            target = started + index * interval_s
            while (now := time.perf_counter()) < target:
                time.sleep(min(target - now, 0.001))
            sent[command_id] = time.perf_counter()
            self.producer.produce(self.topic, value, key, on_delivery=delivered(command_id))
            self.producer.poll(0)
        self.producer.flush(30)
        watcher.wait("HoldReleased", released_before + len(encoded), DRAIN_S_MAX)
        watcher.timing = False
        acks = sorted((watcher.acked[c] - sent[c]) * 1000 for c in sent if c in watcher.acked)
        trades = sorted(
            (at - sent[command_of[oid]]) * 1000
            for oid, at in watcher.traded.items() if oid in command_of
        )  # fmt: skip
        return {
            "orders": len(encoded), "rate": rate, "seconds": seconds,
            "acks": len(acks), "trades": len(trades),
            "ack_p50_ms": _percentile(acks, 0.5), "ack_p99_ms": _percentile(acks, 0.99),
            "trade_p50_ms": _percentile(trades, 0.5), "trade_p99_ms": _percentile(trades, 0.99),
        }  # fmt: skip

    def throughput(self, orders: int) -> dict[str, Any]:
        """``orders`` orders at once; orders/s until the last one's hold is released."""
        watcher = self.watcher
        assert watcher is not None, "start() first"
        encoded = self.encoded(max(1, orders // 2), seed=3)
        released_before = watcher.counts["HoldReleased"]
        started = time.perf_counter()
        for _command_id, value, key in encoded:
            self._produce(value, key)
        self.producer.flush(60)
        sent_s = time.perf_counter() - started
        done = watcher.wait("HoldReleased", released_before + len(encoded), DRAIN_S_MAX)
        seconds = done - started
        return {"orders": len(encoded), "seconds": round(seconds, 3), "send_s": round(sent_s, 3),
                "orders_per_s": round(len(encoded) / seconds)}  # fmt: skip

    def shape(self) -> ChainSpec:
        """The chain's shape as the log shows it: records per order request per topic and
        mean record sizes."""
        sizes: dict[str, tuple[int, float]] = {}
        with KafkaLog(self.settings) as log:
            for topic in (ACCOUNT_COMMANDS, ACCOUNT_EVENTS, ORDER_REQUESTS, ENGINE_EVENTS,
                          SETTLEMENTS):  # fmt: skip
                count = size = 0
                for batch in log.read_columns(dict.fromkeys(_places(log, topic), 0)):
                    count += len(batch)
                    size += len(batch.values)
                sizes[topic] = (count, size / max(1, count))
        requests = max(1, sizes[ORDER_REQUESTS][0])
        return ChainSpec(
            partitions=PARTITIONS,
            engine_per_order=sizes[ENGINE_EVENTS][0] / requests,
            settlements_per_order=sizes[SETTLEMENTS][0] / requests,
            command_bytes=round(sizes[ACCOUNT_COMMANDS][1]),
            event_bytes=round(sizes[ACCOUNT_EVENTS][1]),
            request_bytes=round(sizes[ORDER_REQUESTS][1]),
            engine_bytes=round(sizes[ENGINE_EVENTS][1]),
            settlement_bytes=round(sizes[SETTLEMENTS][1]),
        )

    def failover(
        self, rate: int, seconds: float, kill_at_s: float, kill: Callable[[], None]
    ) -> dict[str, Any]:
        """Orders at ``rate``/s for ``seconds``; ``kill()`` (a broker) at ``kill_at_s``.
        The pause: the longest time without a completed order (HoldReleased read back)
        after the kill. Throughput (completed orders/s) before the kill, from the kill
        to the end of the pause, and after it to the end of the feed."""
        watcher = self.watcher
        assert watcher is not None, "start() first"
        assert 0 < kill_at_s < seconds, (kill_at_s, seconds)
        encoded = self.encoded(max(1, round(rate * seconds / 2)), seed=4)
        released_before = watcher.counts["HoldReleased"]
        interval_s = 1.0 / rate
        started = time.perf_counter()
        killed_at = 0.0
        for index, (_command_id, value, key) in enumerate(encoded):
            target = started + index * interval_s
            if not killed_at and target - started >= kill_at_s:
                killed_at = time.perf_counter()
                kill()
            while (now := time.perf_counter()) < target:
                time.sleep(min(target - now, 0.001))
            self._produce(value, key)
            self.producer.poll(0)
        feed_end = time.perf_counter()
        self.producer.flush(60)
        done = watcher.wait("HoldReleased", released_before + len(encoded), DRAIN_S_MAX)
        with watcher.lock:
            points = [(t, n - released_before) for t, n in watcher.releases if t >= started]
        times = [killed_at] + [t for t, _n in points if t > killed_at]
        gaps = [(b - a, a) for a, b in itertools.pairwise(times)]
        pause_s, pause_from = max(gaps) if gaps else (done - killed_at, killed_at)
        pause_end = pause_from + pause_s

        def completed(t: float) -> int:
            found = [n for at, n in points if at <= t]
            return found[-1] if found else 0

        def per_s(a: float, b: float) -> float | None:
            return round((completed(b) - completed(a)) / (b - a), 1) if b > a else None

        return {
            "orders": len(encoded), "rate": rate, "seconds": seconds,
            "kill_at_s": round(killed_at - started, 2),
            "failover_pause_s": round(pause_s, 2),
            "pause_began_s_after_kill": round(pause_from - killed_at, 2),
            "orders_per_s_before": per_s(started + 2.0, killed_at),
            "orders_per_s_during": per_s(killed_at, pause_end),
            "orders_per_s_after": per_s(pause_end, max(feed_end, pause_end)),
            "drained_s_after_feed": round(done - feed_end, 2),
        }  # fmt: skip

    def _produce(self, value: bytes, key: bytes) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value, key)
                return
            except BufferError:
                self.producer.poll(0.01)

    def close(self) -> list[int]:
        codes = [_stop(p) for p in self.processes]
        if self.watcher is not None:
            self.watcher.close()
        self.producer.flush(10)
        return codes


def _places(log: KafkaLog, topic: str) -> Iterable[tuple[str, int]]:
    return [(topic, p) for p in range(log.partitions(topic))]


def _percentile(sorted_ms: list[float], fraction: float) -> float | None:
    if not sorted_ms:
        return None
    if fraction == 0.5:
        return round(statistics.median(sorted_ms), 1)
    return round(sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * fraction))], 1)


# -- the raw chain ------------------------------------------------------------------------------


class _RawCounter:
    """Counts committed ``raw-events`` records on a thread."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.log = KafkaLog(settings)
        self.tail = self.log.follow_batches({(RAW_EVENTS, p): 0 for p in range(partitions)})
        self.count = 0
        self.reached: dict[int, float] = {}
        self.targets: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="raw-counter", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            got = len(self.tail.poll_batch(WATCH_POLL_S, 50_000))
            if got:
                now = time.perf_counter()
                self.count += got
                for target in self.targets:
                    if target not in self.reached and self.count >= target:
                        self.reached[target] = now

    def wait(self, target: int, limit_s: float) -> float:
        self.targets.append(target)
        deadline = time.monotonic() + limit_s
        while target not in self.reached:
            if self.count >= target:  # reached before the target was registered
                return time.perf_counter()
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw chain: {self.count:,} of {target:,} events")
            time.sleep(0.01)
        return self.reached[target]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.tail.close()
        self.log.close()


def raw_chain(settings: Settings, spec: ChainSpec, orders: int, work_dir: Path) -> dict[str, Any]:
    """``orders`` raw orders at once through the raw chain (after a warm-up)."""
    ensure_raw_topics(settings, spec.partitions)
    processes = [
        _spawn(settings, [role, spec_json(spec)], work_dir / f"raw-{role}.log",
               module="tradex.bench.raw_chain")
        for role in ("accounts", "matcher")
    ]  # fmt: skip
    counter = _RawCounter(settings, spec.partitions)
    producer = Producer(producer_config(settings))
    topic = settings.topic(RAW_COMMANDS)
    rng = np.random.default_rng(5)
    body = rng.integers(0, 256, max(1, spec.command_bytes - 1) + 4_096, np.uint8).tobytes()

    def send(count: int, first: int) -> None:
        for n in range(first, first + count):
            value = bytes([1 + n % len(INSTRUMENTS)]) + body[n % 4_096 :][: spec.command_bytes - 1]
            while True:
                try:
                    producer.produce(topic, value, account_key(1 + n % 1_000))
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.flush(60)

    try:
        send(RAW_WARM_ORDERS, 0)
        counter.wait(spec.events_for(RAW_WARM_ORDERS), READY_S_MAX)
        started = time.perf_counter()
        send(orders, RAW_WARM_ORDERS)
        done = counter.wait(spec.events_for(RAW_WARM_ORDERS + orders), DRAIN_S_MAX)
    finally:
        codes = [_stop(p) for p in processes]
        counter.close()
    seconds = done - started
    return {"orders": orders, "seconds": round(seconds, 3),
            "orders_per_s": round(orders / seconds), "exit_codes": codes}  # fmt: skip


# -- main ---------------------------------------------------------------------------------------


def delete_topics(settings: Settings) -> None:
    """Every topic under ``settings``' prefix (the run's own)."""
    assert settings.topic_prefix.startswith("bench-e2e-"), settings.topic_prefix
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [
        t for t in admin.list_topics(timeout=30).topics if t.startswith(settings.topic_prefix)
    ]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()


THREE_BROKER_TARGETS = {"ack_p99_ms": 500, "failover_pause_s": 10}


def three_brokers(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """A fresh local 3-broker cluster (RF 3, min ISR 2) of its own (own stack dir, own
    ports, stopped and wiped after): order→ack at ``--rate`` (100/s), then a steady feed
    during which one broker is SIGKILLed."""
    from tradex.infra import stack as stack_module

    base = settings_module.load()
    port_base = args.port_base
    cluster = dataclasses.replace(
        base, stack_dir=work_dir / "stack-3", kafka_port_base=port_base, kafka_brokers=3,
        kafka_bootstrap=",".join(f"127.0.0.1:{port_base + 10 * i}" for i in range(3)),
    )  # fmt: skip
    token = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(
        base, kafka_bootstrap=cluster.kafka_bootstrap, kafka_brokers=3,
        topic_prefix=f"bench-e2e-{token}-",
    )  # fmt: skip
    seconds = args.latency_seconds or (5.0 if args.quick else 30.0)
    failover_s = 12.0 if args.quick else 40.0
    report: dict[str, Any] = {"problems": []}
    pipeline: Pipeline | None = None
    started = time.monotonic()
    try:
        health = stack_module.up(cluster, brokers=3, only=["kafka"], timeout_s=300)
        report["stack_up_s"] = round(time.monotonic() - started, 1)
        report["stack"] = health[0].detail
        print(f"e2e --brokers 3: {health[0].detail}, up in {report['stack_up_s']} s")
        pipeline = Pipeline(settings, args.accounts, work_dir, args.batch_wait_ms)
        pipeline.start()
        lat = report["latency"] = pipeline.latency(args.rate, seconds)
        print(f"  latency at {args.rate:,} orders/s, {lat['orders']:,} orders: order→ack p50 "
              f"{lat['ack_p50_ms']} ms p99 {lat['ack_p99_ms']} ms; order→trade p50 "
              f"{lat['trade_p50_ms']} ms p99 {lat['trade_p99_ms']} ms")  # fmt: skip
        victim = cluster.stack_dir / "run" / "kafka-2.pid"

        def kill() -> None:
            pid = int(victim.read_text().split()[0])
            print(f"  SIGKILL broker 2 (pid {pid})", flush=True)
            os.kill(pid, signal.SIGKILL)

        fail = report["failover"] = pipeline.failover(args.rate, failover_s, failover_s / 3, kill)
        print(f"  failover at {args.rate}/s: pause {fail['failover_pause_s']} s; completed "
              f"orders/s before {fail['orders_per_s_before']}, during "
              f"{fail['orders_per_s_during']}, after {fail['orders_per_s_after']}")  # fmt: skip
        counts = pipeline.watcher.counts if pipeline.watcher else {}
        if counts.get("HoldReleased") != pipeline.placed:
            report["problems"].append(
                f"{counts.get('HoldReleased')} HoldReleased for {pipeline.placed} orders"
            )
    finally:
        if pipeline is not None:
            codes = pipeline.close()
            if any(code not in (0, -signal.SIGTERM) for code in codes):
                report["problems"].append(f"stage exit codes {codes}")
        stack_module.down(cluster, wipe=True)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex bench e2e", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--orders", type=positive_int, default=None, help="throughput orders")
    parser.add_argument("--rate", type=positive_int, default=1_000, help="latency orders/s")
    parser.add_argument("--latency-seconds", type=float, default=None)
    parser.add_argument("--accounts", type=positive_int, default=1_000)
    parser.add_argument(
        "--batch-wait-ms", type=non_negative_int, default=None, metavar="MS",
        help="run the stages with fixed batches (wait up to MS to fill; default adaptive)",
    )  # fmt: skip
    parser.add_argument("--no-raw", action="store_true", help="skip the raw chain")
    parser.add_argument(
        "--brokers", type=int, choices=(1, 3), default=1,
        help="3: on a fresh local 3-broker cluster of its own (latency at 100 orders/s "
        "and a broker SIGKILLed mid-run) instead of the shared 1-broker stack",
    )  # fmt: skip
    parser.add_argument(
        "--port-base", type=positive_int, default=28092,
        help="--brokers 3: the cluster's first client port (nodes at +10, +20)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.brokers == 3:
        if "--rate" not in " ".join(argv):
            args.rate = 100
        return main_three(args)
    orders = args.orders or (4_000 if args.quick else 60_000)
    seconds = args.latency_seconds or (3.0 if args.quick else 20.0)
    if args.accounts < 2:
        parser.error("--accounts must be >= 2 (orders come in pairs of two accounts)")

    base = settings_module.load()
    token = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(base, topic_prefix=f"bench-e2e-{token}-")
    raw_settings = dataclasses.replace(base, topic_prefix=f"bench-e2e-{token}-raw-")
    work_dir = Path(tempfile.mkdtemp(prefix="tradex-bench-e2e-"))
    load_before = os.getloadavg()[0]
    problems: list[str] = []
    pipeline = Pipeline(settings, args.accounts, work_dir, args.batch_wait_ms)
    lat: dict[str, Any] = {}
    thr: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    spec: ChainSpec | None = None
    try:
        print(f"e2e: pipeline on {settings.topic_prefix!r} ({args.accounts} accounts, "
              f"{PARTITIONS} partitions, batches "
              f"{'adaptive' if args.batch_wait_ms is None else f'fixed {args.batch_wait_ms} ms'})")  # fmt: skip
        pipeline.start()
        lat = pipeline.latency(args.rate, seconds)
        print(f"  latency at {args.rate:,} orders/s, {lat['orders']:,} orders: order→ack p50 "
              f"{lat['ack_p50_ms']} ms p99 {lat['ack_p99_ms']} ms; order→trade p50 "
              f"{lat['trade_p50_ms']} ms p99 {lat['trade_p99_ms']} ms ({lat['trades']:,} trades)")  # fmt: skip
        thr = pipeline.throughput(orders)
        print(f"  throughput: {thr['orders']:,} orders in {thr['seconds']} s = "
              f"{thr['orders_per_s']:,} orders/s (sent in {thr['send_s']} s)")  # fmt: skip
        counts = pipeline.watcher.counts if pipeline.watcher else {}
        placed = pipeline.placed
        if counts.get("OrderAccepted") != placed:
            problems.append(f"{counts.get('OrderAccepted')} OrderAccepted for {placed} orders")
        if counts.get("HoldReleased") != placed:
            problems.append(f"{counts.get('HoldReleased')} HoldReleased for {placed} orders")
        for name in ("OrderRejected", "CommandRejected"):
            if counts.get(name):
                problems.append(f"{counts[name]} {name}")
        if lat.get("acks") != lat.get("orders"):
            problems.append(f"{lat.get('acks')} acks timed of {lat.get('orders')} orders")
        spec = pipeline.shape()
        print(f"  shape: {spec}")
    finally:
        codes = pipeline.close()
        if any(code not in (0, -signal.SIGTERM) for code in codes):
            problems.append(f"stage exit codes {codes}")
        delete_topics(settings)
    try:
        if spec is not None and not args.no_raw:
            raw = raw_chain(raw_settings, spec, thr.get("orders", orders), work_dir)
            print(f"  raw chain: {raw['orders']:,} orders in {raw['seconds']} s = "
                  f"{raw['orders_per_s']:,} orders/s")  # fmt: skip
    finally:
        delete_topics(raw_settings)
    share = thr["orders_per_s"] / raw["orders_per_s"] if raw and thr else None
    figures = {
        "orders_per_s": thr.get("orders_per_s"),
        "ack_p50_ms": lat.get("ack_p50_ms"), "ack_p99_ms": lat.get("ack_p99_ms"),
        "trade_p50_ms": lat.get("trade_p50_ms"), "trade_p99_ms": lat.get("trade_p99_ms"),
        "raw_chain_orders_per_s": raw.get("orders_per_s"),
        "raw_chain_share": round(share, 3) if share is not None else None,
    }  # fmt: skip
    result = {
        "bench": "e2e",
        "ok": not problems,
        "figures": figures,
        "targets": TARGETS,
        "peer": {
            "name": "raw Kafka chain (same shape, pass-through stages)",
            "orders_per_s": raw.get("orders_per_s"),
        },
        "ratio_min": figures["raw_chain_share"],
        "shape": dataclasses.asdict(spec) if spec else None,
        "cores": os.cpu_count() or 1,
        "notes": (
            f"1 broker; {thr.get('orders')} orders at once; latency at {args.rate}/s for "
            f"{seconds}s; batches {'adaptive' if args.batch_wait_ms is None else 'fixed'}; "
            f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
            f"problems: {problems[:3]}"
        ),
    }
    print(json.dumps(result))
    return 0 if not problems else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))


def main_three(args: argparse.Namespace) -> int:
    work_dir = Path(tempfile.mkdtemp(prefix="tradex-bench-e2e3-"))
    load_before = os.getloadavg()[0]
    report = three_brokers(args, work_dir)
    lat, fail = report.get("latency", {}), report.get("failover", {})
    problems = report["problems"]
    result = {
        "bench": "e2e",
        "ok": not problems and bool(lat) and bool(fail),
        "figures": {
            "brokers": 3,
            "ack_p50_ms": lat.get("ack_p50_ms"),
            "ack_p99_ms": lat.get("ack_p99_ms"),
            "trade_p99_ms": lat.get("trade_p99_ms"),
            "failover_pause_s": fail.get("failover_pause_s"),
            "orders_per_s_before": fail.get("orders_per_s_before"),
            "orders_per_s_during": fail.get("orders_per_s_during"),
            "orders_per_s_after": fail.get("orders_per_s_after"),
            "stack_up_s": report.get("stack_up_s"),
        },
        "targets": THREE_BROKER_TARGETS,
        "failover": fail,
        "cores": os.cpu_count() or 1,
        "notes": (
            f"fresh local 3-broker cluster (RF 3, min ISR 2; {report.get('stack')}); latency at "
            f"{args.rate}/s; broker 2 SIGKILLed a third into the failover feed; load average "
            f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; problems: {problems[:3]}"
        ),
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1
