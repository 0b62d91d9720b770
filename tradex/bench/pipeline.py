"""The live pipeline of ``tradex bench e2e``: its stages as processes on fresh topics, a
seeded order flow, and a watcher that reads the outcomes back (read_committed).

    pipeline = Pipeline(settings, accounts=1_000, work_dir=d, batch_wait_ms=None)
    pipeline.start()                    # reference data, funding; stages as processes
    pipeline.latency(1_000, 20.0)       # order→ack, order→trade percentiles
    pipeline.throughput(60_000)         # orders at once; orders/s to the last hold released
    pipeline.failover(100, 40.0, 13.0, kill)   # a feed with kill() a third of the way in
    pipeline.shape()                    # records per order and sizes, from the log
    pipeline.close()

The orders come in pairs (:func:`order_pairs`): two accounts, one instrument, one price per
instrument, the same quantity, opposite sides, GTC; whichever reaches the book second
crosses, and at the end every order is FILLED, so every hold is released.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import KafkaError, Message, Producer

from tradex.bench.exchange_log import (
    INSTRUMENTS,
    funding,
    reference_commands,
    wait_reference_applied,
)
from tradex.bench.raw_chain import (
    ChainSpec,
)
from tradex.commands.client import encode_command, span_attributes
from tradex.domain import OrderKind, PlaceOrder, Side
from tradex.domain.ids import ORDER_OFFSET_BITS, order_id
from tradex.exchange_services import pipeline_services
from tradex.infra.exchange import Exchange
from tradex.infra.kafka import (
    COMMAND_LINGER_MS,
    TopicSpec,
    ensure_topics,
    produce_sync,
    producer_config,
)
from tradex.infra.settings import Settings
from tradex.infra.stage import TIMING_ENV
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
from tradex.observability import tracing
from tradex.observability.tracing import Headers, client_span
from tradex.schemas.codec import Codec

PARTITIONS = 4
T0_NS = 1_700_000_000_000_000_000
TARGETS = {"orders_per_s": 12_000, "raw_chain_share": 0.5, "ack_p99_ms": 20, "trade_p99_ms": 40}
READY_S_MAX = 180.0  # stages started, reference data and funding applied
DRAIN_S_MAX = 300.0  # every order of a phase released
WATCH_POLL_S = 0.005


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


def _edge_headers(order: PlaceOrder) -> Headers | None:
    with client_span("PlaceOrder", span_attributes(order)) as headers:
        return headers


class Pipeline:
    """The live pipeline on fresh topics: its stages as processes, the watcher."""

    def __init__(self, settings: Settings, accounts: int, work_dir: Path,
                 batch_wait_ms: int | None) -> None:  # fmt: skip
        self.settings = settings
        self.accounts = accounts
        self.work_dir = work_dir
        self.batch_wait_ms = batch_wait_ms
        self.codec = Codec.offline()
        self.exchange = Exchange(settings, work_dir)
        self.watcher: Watcher | None = None
        self.placed = 0
        self.producer = Producer(producer_config(settings, linger_ms=COMMAND_LINGER_MS))
        self.topic = settings.topic(ACCOUNT_COMMANDS)
        tracing.configure("tradex-bench")  # the stages' processes read the same variables

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
        self.exchange.start(
            pipeline_services("bench", ["--partitions", str(PARTITIONS), *batching], batching)
        )
        # Every stage a member of its group with partitions, before anything is timed: the
        # matcher (Numba kernels loaded) used to join 1–2 s into the latency phase, so the
        # first orders' order→trade included its start (p99 1.1 s at 100 orders/s).
        self.exchange.wait_ready(READY_S_MAX)
        wait_reference_applied(settings, len(reference), READY_S_MAX)
        fund = funding(self.accounts)
        produce_sync(settings, self.topic,
                     [(account_key(c.account_id), encode_command(codec, c)) for c in fund])  # fmt: skip
        self.watcher.wait("Deposited", len(fund), READY_S_MAX)

    def encoded(self, pairs: int, seed: int) -> list[tuple[str, bytes, bytes, Headers | None]]:
        """Each order's (command id, value, key, headers): traced (the OTEL_* variables, as
        the stages read them), the feed is the orders' edge: a client span per order, and
        the sampled ones carry its traceparent (tradex.observability.tracing)."""
        orders = order_pairs(pairs, self.accounts, self.placed, seed)
        self.placed += len(orders)
        return [(o.command_id, encode_command(self.codec, o), account_key(o.account_id),
                 _edge_headers(o)) for o in orders]  # fmt: skip

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
        started = time.perf_counter()
        for index, (command_id, value, key, headers) in enumerate(encoded):
            wait_due(started, index, rate)
            sent[command_id] = time.perf_counter()
            self.producer.produce(
                self.topic, value, key, on_delivery=delivered(command_id), headers=headers
            )
            self.producer.poll(0)
        self.producer.flush(30)
        watcher.wait("HoldReleased", released_before + len(encoded), DRAIN_S_MAX)
        watcher.timing = False
        timing_dir = os.environ.get(TIMING_ENV, "")
        if timing_dir:
            self._write_timing(timing_dir, sent, command_of)
        acks = sorted((watcher.acked[c] - sent[c]) * 1000 for c in sent if c in watcher.acked)
        trades = sorted(
            (at - sent[command_of[oid]]) * 1000
            for oid, at in watcher.traded.items() if oid in command_of
        )  # fmt: skip
        return {
            "orders": len(encoded), "rate": rate, "seconds": seconds,
            "acks": len(acks), "trades": len(trades),
            "ack_p50_ms": percentile(acks, 0.5), "ack_p99_ms": percentile(acks, 0.99),
            "trade_p50_ms": percentile(trades, 0.5), "trade_p99_ms": percentile(trades, 0.99),
        }  # fmt: skip

    def _write_timing(self, directory: str, sent: dict[str, float],
                      command_of: dict[int, str]) -> None:  # fmt: skip
        """With ``TRADEX_STAGE_TIMING`` (tradex.infra.stage.BatchClock): one JSON line per
        order of the latency phase in ``<dir>/orders-<pid>.jsonl`` — its command's
        ``account-commands`` place, its ``order-requests`` place (read back), and when it
        was sent, acknowledged and (a taker) traded, as ``perf_counter_ns`` — so
        ``tradex.bench.latency_report`` can follow it through the stages' batches."""
        watcher = self.watcher
        assert watcher is not None, "start() first"
        requests: dict[int, tuple[int, int]] = {}  # order id -> order-requests place
        with KafkaLog(self.settings) as log:
            for partition in range(log.partitions(ORDER_REQUESTS)):
                for record in log.read(ORDER_REQUESTS, partition):
                    _env, body = self.codec.decode_domain(record.value or b"")
                    order = getattr(body, "order_id", None)
                    if isinstance(order, int):
                        requests.setdefault(order, (record.partition, record.offset))
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"orders-{os.getpid()}.jsonl"), "w") as out:
            for oid, command_id in command_of.items():
                acked, traded = watcher.acked.get(command_id), watcher.traded.get(oid)
                line = {
                    "command": [oid >> ORDER_OFFSET_BITS, oid & ((1 << ORDER_OFFSET_BITS) - 1)],
                    "request": requests.get(oid),
                    "sent": int(sent[command_id] * 1e9),
                    "acked": None if acked is None else int(acked * 1e9),
                    "traded": None if traded is None else int(traded * 1e9),
                }  # fmt: skip
                out.write(json.dumps(line) + "\n")

    def throughput(self, orders: int) -> dict[str, Any]:
        """``orders`` orders at once; orders/s until the last one's hold is released."""
        watcher = self.watcher
        assert watcher is not None, "start() first"
        encoded = self.encoded(max(1, orders // 2), seed=3)
        released_before = watcher.counts["HoldReleased"]
        started = time.perf_counter()
        for _command_id, value, key, headers in encoded:
            self._produce(value, key, headers)
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
        started = time.perf_counter()
        killed_at = 0.0
        for index, (_command_id, value, key, headers) in enumerate(encoded):
            if not killed_at and index / rate >= kill_at_s:
                killed_at = time.perf_counter()
                kill()
            wait_due(started, index, rate)
            self._produce(value, key, headers)
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

    def _produce(self, value: bytes, key: bytes, headers: Headers | None = None) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value, key, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.01)

    def close(self) -> list[int]:
        codes = list(self.exchange.stop().values())
        if self.watcher is not None:
            self.watcher.close()
        self.producer.flush(10)
        return codes


def _places(log: KafkaLog, topic: str) -> Iterable[tuple[str, int]]:
    return [(topic, p) for p in range(log.partitions(topic))]


def wait_due(started: float, index: int, rate: float) -> None:
    """Sleep until order ``index`` of an open loop begun at ``started`` (perf_counter) at
    ``rate``/s is due: ``started + index / rate``, whatever the answers did."""
    due = started + index / rate
    while (now := time.perf_counter()) < due:
        time.sleep(min(due - now, 0.001))


def percentile(sorted_ms: list[float], fraction: float) -> float | None:
    if not sorted_ms:
        return None
    if fraction == 0.5:
        return round(statistics.median(sorted_ms), 1)
    return round(sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * fraction))], 1)
