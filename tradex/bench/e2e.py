"""``tradex bench e2e``: order trips through the live pipeline beside the raw Kafka chain.

On the local Kafka: the pipeline and, in the same run, the raw chain of the same shape.

    tradex bench e2e                  # 60k orders + 20 s at 1,000 orders/s + the raw chain
    tradex bench e2e --quick          # smoke run
    tradex bench e2e --batch-wait-ms 5    # the stages in the fixed-batch mode (comparison)
    TRADEX_STAGE_TIMING=/tmp/t tradex bench e2e --no-raw   # stamps per batch and order
    python -m tradex.bench.latency_report /tmp/t          # where each order's time went

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
   decoding or deciding; first at ``--rate`` for ``--latency-seconds`` (its order→ack:
   the command's ``raw-events`` record read back; its order→trade: the request's first
   ``raw-engine`` record — the same two transactions as the pipeline's), then the same
   number of orders at once. ``raw_chain_share`` = pipeline orders/s ÷ raw chain
   orders/s; the raw chain's latency percentiles are the peer's, under ``peer``: what
   Kafka's transactions alone give here at that rate, the floor of the pipeline's.
4. **plain loop**: the raw chain's two roles as confluent-kafka's exactly-once example
   loop instead of the stage code (:func:`.raw_chain.run_plain_loop`; one transaction per
   poll, the same consumer settings), the latency phase alone, under
   ``peer.plain_loop``: so the floor is not an artefact of TradeX's stage.

Last line: one JSON object (../shared/bench/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer

from tradex.bench.exchange_log import (
    INSTRUMENTS,
)
from tradex.bench.pipeline import (
    DRAIN_S_MAX,
    PARTITIONS,
    READY_S_MAX,
    WATCH_POLL_S,
    Pipeline,
    percentile,
    wait_due,
)
from tradex.bench.raw_chain import (
    RAW_COMMANDS,
    RAW_ENGINE,
    RAW_EVENTS,
    STAMP_BYTES,
    ChainSpec,
    ensure_raw_topics,
    spec_json,
)
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import non_negative_int, positive_int
from tradex.infra.exchange import Exchange, Ready, Service
from tradex.infra.kafka import (
    COMMAND_LINGER_MS,
    delete_prefixed_topics,
    producer_config,
)
from tradex.infra.settings import Settings
from tradex.log.batch import RecordBatch
from tradex.log.keys import account_key
from tradex.log.source import KafkaLog

TARGETS = {"orders_per_s": 12_000, "raw_chain_share": 0.5, "ack_p99_ms": 20, "trade_p99_ms": 40}
RAW_WARM_ORDERS = 200

# -- the raw chain ------------------------------------------------------------------------------


class _RawWatcher:
    """Follows what the raw chain commits (read_committed) on a thread, as the pipeline's
    :class:`~tradex.bench.pipeline.Watcher` does: counts ``raw-events`` records and, while
    ``timing`` is on, notes when the first record carrying each send stamp was read back
    from ``raw-events`` (the order's acknowledgement) and from ``raw-engine`` (its trade)."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.log = KafkaLog(settings)
        starts = {(RAW_EVENTS, p): 0 for p in range(partitions)}
        starts |= {(RAW_ENGINE, p): 0 for p in range(partitions)}
        self.tail = self.log.follow_batches(starts)
        self.count = 0
        self.reached: dict[int, float] = {}
        self.targets: list[int] = []
        # while timing: stamps in [since_ns, now] are send times (perf_counter_ns); any
        # other leading bytes (a settlement's event, the throughput phase's) are filler
        self.timing = False
        self.since_ns = 0
        self.acked: dict[int, float] = {}
        self.traded: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="raw-watcher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            batch = self.tail.poll_batch(WATCH_POLL_S, 50_000)
            if not len(batch):
                continue
            now = time.perf_counter()
            events = batch.topics.index(RAW_EVENTS) if RAW_EVENTS in batch.topics else -1
            is_event = batch.topic_index == events
            if self.timing:
                self._note_stamps(batch, is_event, now)
            self.count += int(np.count_nonzero(is_event))
            for target in self.targets:
                if target not in self.reached and self.count >= target:
                    self.reached[target] = now

    def _note_stamps(self, batch: RecordBatch, is_event: np.ndarray, now: float) -> None:
        values, starts = batch.values, batch.value_offsets[:-1].tolist()
        since, until = self.since_ns, time.perf_counter_ns()
        for start, event in zip(starts, is_event.tolist(), strict=True):
            stamp = int.from_bytes(values[start : start + STAMP_BYTES], "little")
            if since <= stamp <= until:
                (self.acked if event else self.traded).setdefault(stamp, now)

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


class RawChain:
    """The raw chain's two stages as processes (``loop``: see :data:`.raw_chain.LOOPS`),
    their watcher and a command producer."""

    def __init__(self, settings: Settings, spec: ChainSpec, work_dir: Path, loop: str) -> None:
        ensure_raw_topics(settings, spec.partitions)
        self.spec = spec
        self.chain = Exchange(settings, work_dir)
        self.chain.start([Service(f"raw-{role}", (role, spec_json(spec), loop), Ready("alive"),
                                  module="tradex.bench.raw_chain") for role in ("accounts", "matcher")])  # fmt: skip
        self.watcher = _RawWatcher(settings, spec.partitions)
        # as the pipeline's commands are sent (a command client's linger)
        self.producer = Producer(producer_config(settings, linger_ms=COMMAND_LINGER_MS))
        self.topic = settings.topic(RAW_COMMANDS)
        rng = np.random.default_rng(5)
        self.filler = spec.command_bytes - 1 - STAMP_BYTES
        self.body = rng.integers(0, 256, self.filler + 4_096, np.uint8).tobytes()
        self.sent = 0  # commands of the chain's life (the watcher's targets count them all)

    def _produce(self, stamp: bytes) -> None:
        n = self.sent
        at = n % 4_096
        value = bytes([1 + n % len(INSTRUMENTS)]) + stamp + self.body[at : at + self.filler]
        while True:
            try:
                self.producer.produce(self.topic, value, account_key(1 + n % 1_000))
                break
            except BufferError:
                self.producer.poll(0.01)
        self.sent += 1

    def burst(self, orders: int, limit_s: float = DRAIN_S_MAX) -> float:
        """``orders`` commands at once; the seconds until the last one's events are read."""
        started = time.perf_counter()
        for n in range(orders):
            at = n % 4_096
            self._produce(self.body[at : at + STAMP_BYTES])  # filler, not a send time
        self.producer.flush(60)
        done = self.watcher.wait(self.spec.events_for(self.sent), limit_s)
        return done - started

    def latency(self, rate: int, seconds: float) -> dict[str, Any]:
        """Commands at ``rate``/s for ``seconds``, paced as the pipeline's latency phase:
        send → acknowledgement and send → trade percentiles."""
        watcher = self.watcher
        count = max(1, round(rate * seconds))
        sent: list[int] = []
        watcher.acked.clear()
        watcher.traded.clear()
        watcher.since_ns = time.perf_counter_ns()
        watcher.timing = True
        started = time.perf_counter()
        for index in range(count):
            wait_due(started, index, rate)
            stamp = time.perf_counter_ns()
            sent.append(stamp)
            self._produce(stamp.to_bytes(STAMP_BYTES, "little"))
            self.producer.poll(0)
        self.producer.flush(30)
        watcher.wait(self.spec.events_for(self.sent), DRAIN_S_MAX)
        deadline = time.monotonic() + DRAIN_S_MAX
        while len(watcher.traded) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        watcher.timing = False
        acks = sorted((watcher.acked[s] - s / 1e9) * 1000 for s in sent if s in watcher.acked)
        trades = sorted((watcher.traded[s] - s / 1e9) * 1000 for s in sent if s in watcher.traded)
        return {
            "orders": count, "acks": len(acks), "trades": len(trades),
            "ack_p50_ms": percentile(acks, 0.5), "ack_p99_ms": percentile(acks, 0.99),
            "trade_p50_ms": percentile(trades, 0.5), "trade_p99_ms": percentile(trades, 0.99),
        }  # fmt: skip

    def close(self) -> list[int | None]:
        try:
            return list(self.chain.stop().values())
        finally:
            self.watcher.close()


def raw_chain(
    settings: Settings, spec: ChainSpec, loop: str, rate: int, seconds: float, work_dir: Path,
    orders: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """The raw chain on ``loop`` after a warm-up: at ``rate``/s for ``seconds`` (its
    latency figures), then, if ``orders``, that many at once (throughput) — the pipeline's
    two phases, in the same order."""
    chain = RawChain(settings, spec, work_dir, loop)
    found: dict[str, Any] = {}
    try:
        chain.burst(RAW_WARM_ORDERS, READY_S_MAX)  # the stages' start included
        found |= chain.latency(rate, seconds)
        if orders:
            taken = chain.burst(orders)
            found |= {"burst_orders": orders, "seconds": round(taken, 3),
                      "orders_per_s": round(orders / taken)}  # fmt: skip
    finally:
        found["exit_codes"] = chain.close()
    return found


# -- main ---------------------------------------------------------------------------------------


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
        from tradex.bench.e2e_three import main_three

        return main_three(args)
    orders = args.orders or (4_000 if args.quick else 60_000)
    seconds = args.latency_seconds or (3.0 if args.quick else 20.0)
    if args.accounts < 2:
        parser.error("--accounts must be >= 2 (orders come in pairs of two accounts)")

    base = settings_module.load()
    token = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(base, topic_prefix=f"bench-e2e-{token}-")
    raw_settings = dataclasses.replace(base, topic_prefix=f"bench-e2e-{token}-raw-")
    plain_settings = dataclasses.replace(base, topic_prefix=f"bench-e2e-{token}-plain-")
    work_dir = Path(tempfile.mkdtemp(prefix="tradex-bench-e2e-"))
    load_before = os.getloadavg()[0]
    problems: list[str] = []
    pipeline = Pipeline(settings, args.accounts, work_dir, args.batch_wait_ms)
    lat: dict[str, Any] = {}
    thr: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    plain: dict[str, Any] = {}
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
        delete_prefixed_topics(settings)
    try:
        if spec is not None and not args.no_raw:
            raw = raw_chain(raw_settings, spec, "stage", args.rate, seconds, work_dir,
                            orders=thr.get("orders", orders))  # fmt: skip
            print(f"  raw chain: {raw['burst_orders']:,} orders in {raw['seconds']} s = "
                  f"{raw['orders_per_s']:,} orders/s")  # fmt: skip
            plain = raw_chain(plain_settings, spec, "plain", args.rate, seconds, work_dir)
            for name, timed in (("raw chain", raw), ("plain loop", plain)):
                print(f"  {name} latency at {args.rate:,} orders/s, {timed['orders']:,} "
                      f"orders: order→ack p50 {timed['ack_p50_ms']} ms p99 "
                      f"{timed['ack_p99_ms']} ms; order→trade p50 {timed['trade_p50_ms']} ms "
                      f"p99 {timed['trade_p99_ms']} ms")  # fmt: skip
                if any(code not in (0, -signal.SIGTERM) for code in timed["exit_codes"]):
                    problems.append(f"{name}: exit codes {timed['exit_codes']}")
                if timed["acks"] != timed["orders"] or timed["trades"] != timed["orders"]:
                    problems.append(f"{name}: {timed['acks']} acks, {timed['trades']} "
                                    f"trades timed of {timed['orders']} orders")  # fmt: skip
    finally:
        delete_prefixed_topics(raw_settings)
        delete_prefixed_topics(plain_settings)
    share = thr["orders_per_s"] / raw["orders_per_s"] if raw and thr else None
    latencies = ("ack_p50_ms", "ack_p99_ms", "trade_p50_ms", "trade_p99_ms")
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
            **{name: raw.get(name) for name in latencies},
            "plain_loop": {
                "name": "the raw chain's roles as confluent-kafka's exactly-once example loop "
                "(one transaction per poll)",
                **{name: plain.get(name) for name in latencies},
            },
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
