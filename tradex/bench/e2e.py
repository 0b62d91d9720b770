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
   decoding or deciding; the same number of orders at once. ``raw_chain_share`` =
   pipeline orders/s ÷ raw chain orders/s.

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
)
from tradex.bench.raw_chain import (
    RAW_COMMANDS,
    RAW_EVENTS,
    ChainSpec,
    ensure_raw_topics,
    spec_json,
)
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import non_negative_int, positive_int
from tradex.infra.exchange import Exchange, Ready, Service
from tradex.infra.kafka import (
    delete_prefixed_topics,
    producer_config,
)
from tradex.infra.settings import Settings
from tradex.log.keys import account_key
from tradex.log.source import KafkaLog

TARGETS = {"orders_per_s": 12_000, "raw_chain_share": 0.5, "ack_p99_ms": 20, "trade_p99_ms": 40}
RAW_WARM_ORDERS = 200

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
    chain = Exchange(settings, work_dir)
    chain.start([Service(f"raw-{role}", (role, spec_json(spec)), Ready("alive"),
                         module="tradex.bench.raw_chain") for role in ("accounts", "matcher")])  # fmt: skip
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
        codes = list(chain.stop().values())
        counter.close()
    seconds = done - started
    return {"orders": orders, "seconds": round(seconds, 3),
            "orders_per_s": round(orders / seconds), "exit_codes": codes}  # fmt: skip


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
        delete_prefixed_topics(settings)
    try:
        if spec is not None and not args.no_raw:
            raw = raw_chain(raw_settings, spec, thr.get("orders", orders), work_dir)
            print(f"  raw chain: {raw['orders']:,} orders in {raw['seconds']} s = "
                  f"{raw['orders_per_s']:,} orders/s")  # fmt: skip
    finally:
        delete_prefixed_topics(raw_settings)
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
