"""``tradex bench e2e --brokers 3``: the pipeline on a fresh local 3-broker cluster.

The cluster (RF 3, min ISR 2, C1-only JIT: docs in README) is the bench's own: its own
stack dir under the run's work dir and its own ports (``--port-base``, default 28092; nodes
at +10 and +20), started, used and stopped and wiped after, so the shared 1-broker stack
is never touched. Phases: order→ack and order→trade at ``--rate`` (default 100 orders/s),
then a steady feed at that rate with broker 2 SIGKILLed a third of the way in:
``failover_pause_s`` is the longest time without a completed order after the kill, with
completed orders/s before, during and after. Every order must complete exactly once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tradex.bench.pipeline import Pipeline
from tradex.infra import settings as settings_module

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
