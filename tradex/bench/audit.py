"""``tradex bench audit``: ``tradex audit verify`` over a >= 1,000,000-event log.

    tradex bench audit                       # write a market log (~1M events), audit it
    tradex bench audit --prefix bench-x-     # reuse a log written before (--keep kept it)
    tradex bench audit --quick               # a small smoke run

1. **log**: a market written to Kafka by the real stages (:mod:`.exchange_log`: reference
   data, funded accounts, a seeded order flow through ``tradex run accounts`` and
   ``tradex run matcher``), on a fresh topic prefix unless ``--prefix`` names one that
   already holds enough events;
2. **verify**: :func:`tradex.audit.verify.verify` over the whole log, ``--repeat`` times
   (median): records read and checked per second (``events_per_s``, the headline: every
   record of reference-events, account-events, engine-events and settlements, plus the
   order-requests the matching re-run folds, over the wall time of the whole audit), and
   the matching re-run's order-requests per second;
3. **peer**: ``tradex matching verify`` (:func:`tradex.matching.verify.verify_partition`,
   every partition) on the same log in the same run: its order-requests per second
   against the audit's re-run, which does the same comparison and more (the audit's
   ratio is also given for the whole audit against the peer's time).

Last line: one JSON object (/work/shared/bench/README.md conventions).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
import uuid
from typing import Any

from tradex.audit.verify import Report, verify
from tradex.bench.exchange_log import event_count, write_market_log
from tradex.infra import settings as settings_module
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.log.topics import ORDER_REQUESTS
from tradex.matching.verify import verify_partition
from tradex.schemas.codec import Codec


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return value


def run_verify(settings: Settings, codec: Codec) -> Report:
    """As ``tradex audit verify`` runs it (the re-run on a thread beside the scan)."""
    with KafkaLog(settings) as log:
        return verify(log, codec, progress=True)


def run_peer(settings: Settings, codec: Codec, inputs_done: int) -> dict[str, Any]:
    """``tradex matching verify`` of every partition, timed; its ops/s counted on the
    ``inputs_done`` order-requests records the audit's re-run folded (the same inputs: its
    own count is in offsets, transaction markers included)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    ok = True
    with KafkaLog(settings) as log:
        for partition in range(log.partitions(ORDER_REQUESTS)):
            result = verify_partition(settings, partition, codec=codec, source=log)
            ok = ok and result.ok
    seconds = time.perf_counter() - started
    cpu_us = 1e6 * (time.process_time() - cpu_started) / max(inputs_done, 1)
    return {"name": "tradex matching verify", "ok": ok, "inputs": inputs_done,
            "seconds": round(seconds, 3), "ops_per_s": round(inputs_done / seconds),
            "cpu_us_per_input": round(cpu_us, 2)}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex bench audit", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--events", type=positive_int, default=None, help="log size, at least")
    parser.add_argument("--accounts", type=positive_int, default=None)
    parser.add_argument("--repeat", type=positive_int, default=None, help="verify runs (median)")
    parser.add_argument("--prefix", default=None, help="reuse the log on this topic prefix")
    parser.add_argument("--keep", action="store_true", help="keep a log this run writes")
    parser.add_argument("--no-peer", action="store_true", help="skip tradex matching verify")
    args = parser.parse_args(argv)
    events_min = args.events or (20_000 if args.quick else 1_000_000)
    accounts = args.accounts or (200 if args.quick else 10_000)
    repeat = args.repeat or (1 if args.quick else 3)
    base = settings_module.load()
    prefix = args.prefix or f"bench-audit-{uuid.uuid4().hex[:8]}-"
    settings = dataclasses.replace(base, topic_prefix=prefix)
    codec = Codec.offline()
    wrote = False
    try:
        have = sum(event_count(settings).values()) if args.prefix else 0
        if have >= events_min:
            print(f"audit: reusing the log on {prefix!r} ({have:,} offsets)")
        else:
            print(f"audit: writing a log of >= {events_min:,} events on {prefix!r}")
            write_market_log(settings, events_min, accounts, seed=1)
            wrote = True
        reports = []
        peer: dict[str, Any] = {}
        for run in range(repeat):
            report = run_verify(settings, codec)
            reports.append(report)
            rerun = report.rerun
            assert rerun is not None
            print(f"  verify run {run + 1}: {report.records:,} records in {report.seconds:.2f} s "
                  f"= {report.events_per_s:,.0f} events/s, {report.cpu_us_per_event:.1f} us CPU "
                  f"each (scan {report.scan_seconds:.2f} s, "
                  f"re-run {rerun.seconds:.2f} s = {rerun.inputs_per_s:,.0f} ops/s), "
                  f"{'OK' if report.ok else 'VIOLATIONS'}")  # fmt: skip
            if run == 0 and not args.no_peer:
                peer = run_peer(settings, codec, rerun.inputs)
                print(f"  peer {peer['name']}: {peer['inputs']:,} order-requests in "
                      f"{peer['seconds']} s = {peer['ops_per_s']:,} ops/s, "
                      f"{peer['cpu_us_per_input']} us CPU each")  # fmt: skip
        ok = all(r.ok for r in reports) and (not peer or bool(peer["ok"]))
        if not ok:
            for report in reports[:1]:
                print(report.text())
        median = sorted(reports, key=lambda r: r.seconds)[(len(reports) - 1) // 2]
        rerun = median.rerun
        assert rerun is not None
        figures: dict[str, Any] = {
            "events_per_s": round(median.events_per_s),
            "cpu_us_per_event": round(median.cpu_us_per_event, 2),
            "rerun_cpu_us_per_input": round(1e6 * rerun.cpu_seconds / max(rerun.inputs, 1), 2),
            "load_avg_1m": round(os.getloadavg()[0], 1),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "records": median.records,
            "seconds": round(median.seconds, 3),
            "scan_seconds": round(median.scan_seconds, 3),
            "scan_events_per_s": round((median.records - rerun.inputs) / median.scan_seconds),
            "rerun_ops_per_s": round(rerun.inputs_per_s),
            "rerun_inputs": rerun.inputs,
            "rerun_outputs": rerun.outputs,
            "runs_seconds": [round(r.seconds, 3) for r in reports],
        }
        ratio = None
        if peer:
            ratio = round(rerun.inputs_per_s / max(peer["ops_per_s"], 1), 2)
            peer["whole_audit_vs_peer_time"] = round(peer["seconds"] / median.seconds, 2)
            figures["rerun_cpu_ratio_vs_peer"] = round(
                peer["cpu_us_per_input"] / max(figures["rerun_cpu_us_per_input"], 1e-9), 1
            )
        print(json.dumps({
            "bench": "audit", "ok": ok, "figures": figures, "peer": peer or None,
            "ratio_min": ratio, "cores": os.cpu_count(),
            "notes": "events_per_s: every record audited (and every order-request re-run) "
                     "over the whole audit's wall time, median of the runs; cpu_us_per_event: "
                     "CPU of every thread and the re-run's process per record (what the load "
                     "does not change: 500k/s on 2 free cores needs <= 4 us); ratio_min: the "
                     "audit's matching re-run ops/s over tradex matching verify's on the same "
                     "log (wall; rerun_cpu_ratio_vs_peer: by CPU); the re-run runs beside the "
                     "scan, so its wall time (rerun_ops_per_s) is shared with the scan's. "
                     "A shared 2-core machine: "
                     "wall figures move with the load (load_avg_1m).",
        }))  # fmt: skip
        return 0 if ok else 1
    finally:
        if wrote and not args.keep:
            delete_prefixed_topics(settings)
        elif wrote:
            print(f"audit: the log stays on {prefix!r} (--prefix {prefix} reuses it)",
                  file=sys.stderr)  # fmt: skip
