"""What the metrics cost the hot path: the per-batch hooks in CPU time, per batch and per record.

    tradex bench metrics [--quick]

The account stage's hooks — :meth:`StageMetrics.committed` (counts, transaction time,
lags of 8 partitions, up to ``latency_samples_max`` latency observations) and the
account processor's (:class:`AccountMetrics`: the compiled path's counts, the Python
path's tally of decisions, outputs) — on real confluent-kafka ``Message`` objects, for
batches of 1 to 5,000 records. CPU time (``process_time``), medians of the repeats: on a
shared machine, wall time measures the neighbours. The reference is the per-record CPU an
order trip costs the account processor's ``process`` alone (11.4 µs, docs/processors.md)
and the floor of a pass-through transactional stage (~5 µs per input, /work/shared NOTES):
the hooks' share of those is ``share_of_order_trip``. ``ok``: under 2 % at the batch sizes
a loaded pipeline runs (1,000-5,000 records; `tradex bench e2e` logs 800-2,600 per batch).
Smaller batches come when the load is light, where the fixed per-batch cost (tens of µs)
sits beside a transaction's ~10-20 ms of broker round trips. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from typing import Any

from confluent_kafka import Message

from tradex.domain.types import REASONS, Reason
from tradex.observability import metrics

ORDER_TRIP_CPU_US = 11.4  # account processor's process() per order trip (docs/processors.md)
SHARE_MAX = 0.02
HEADER = b"\x00\x00\x00\x00\x07"


def messages(count: int) -> list[Any]:
    now_ms = int(time.time() * 1000)
    return [
        Message(
            topic="account-commands" if i % 3 else "settlements",
            partition=i % 4,
            offset=i,
            value=HEADER + bytes(170),
            timestamp=(1, now_ms - i % 50),
        )
        for i in range(count)
    ]


def hooks_cpu_us(batch: list[Any], repeats: int) -> float:
    """CPU µs of one batch's hooks (median of ``repeats`` timings of many batches)."""
    stage = metrics.StageMetrics("accounts", "")
    account = metrics.AccountMetrics(
        frozenset(map(str, REASONS)), Reason.BELOW_MIN_NOTIONAL, Reason.INSUFFICIENT_FUNDS
    )
    lags = [(topic, p, 3) for topic in ("account-commands", "settlements") for p in range(4)]
    python_path: Counter[tuple[type, str, str]] = Counter()
    loops = max(1, 20_000 // len(batch))
    timings = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(loops):
            stage.committed(batch, 2 * len(batch), 0.012, lags)
            account.compiled(len(batch), len(batch) // 2, 1, 1)
            account.decisions(python_path)
            account.produced(len(batch), len(batch) // 2)
        timings.append((time.process_time() - started) / loops * 1e6)
    return statistics.median(timings)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench metrics", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    figures: dict[str, Any] = {}
    for size in (1, 10, 100, 1_000, 5_000):
        per_batch = hooks_cpu_us(messages(size), repeats)
        per_record = per_batch / size
        figures[str(size)] = {
            "per_batch_us": round(per_batch, 2),
            "per_record_us": round(per_record, 4),
            "share_of_order_trip": round(per_record / ORDER_TRIP_CPU_US, 4),
        }
        print(f"batch of {size:>5}: {per_batch:8.1f} µs CPU per batch, "
              f"{per_record:.4f} µs per record ({per_record / ORDER_TRIP_CPU_US:.2%} of an "
              f"order trip's {ORDER_TRIP_CPU_US} µs)", flush=True)  # fmt: skip
    loaded = [figures[s]["share_of_order_trip"] for s in ("1000", "5000")]
    result = {
        "bench": "metrics",
        "ok": max(loaded) < SHARE_MAX,
        "figures": figures,
        "reference": {"order_trip_cpu_us": ORDER_TRIP_CPU_US, "share_max": SHARE_MAX},
        "notes": "CPU time (process_time) of the account stage's per-batch metric hooks",
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1
