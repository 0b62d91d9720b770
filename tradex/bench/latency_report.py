"""Where an order's time goes: ``tradex bench e2e`` run with ``TRADEX_STAGE_TIMING``, joined.

    TRADEX_STAGE_TIMING=/tmp/t tradex bench e2e --rate 100 --latency-seconds 10 --no-raw
    python -m tradex.bench.latency_report /tmp/t

The stages write one line per committed batch (:class:`tradex.infra.stage.BatchClock`:
``perf_counter_ns`` stamps and the input offsets the batch covers); the bench writes one
line per order of its latency phase (``Pipeline._write_timing``: its ``account-commands``
and ``order-requests`` places, when it was sent, acknowledged and, a taker, traded). Each
order is followed into the account stage's batch holding its command and the matcher's
batch holding its request; printed: per segment (``A.`` account stage, ``M.`` matcher,
consecutive stamps in the order they happened) the percentiles over the orders, in ms.

``sent->first`` and ``first->gathered`` are per batch, not per order: an order that
arrived after its batch's first record shows a negative first part and a longer second.
"""

from __future__ import annotations

import bisect
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tradex.infra.stage import BatchClock

Batch = dict[str, Any]
ORDERS_MAX = 10_000_000  # lines read from one timing directory


def _lines(directory: Path, pattern: str) -> list[Batch]:
    found: list[Batch] = []
    for path in sorted(directory.glob(pattern)):
        with path.open() as lines:
            for line in lines:
                found.append(json.loads(line))
                assert len(found) <= ORDERS_MAX, f"more than {ORDERS_MAX} lines in {directory}"
    return found


class BatchIndex:
    """The batches of one stage by the input partition and offsets they cover."""

    def __init__(self, batches: Iterable[Batch], topic_suffix: str) -> None:
        self.by_partition: dict[int, list[tuple[int, int, Batch]]] = {}
        for batch in batches:
            for place, (low, high) in batch["ranges"].items():
                topic, partition = place.rsplit(":", 1)
                if topic.endswith(topic_suffix):
                    assert low <= high, place
                    self.by_partition.setdefault(int(partition), []).append((low, high, batch))
        self.lows: dict[int, list[int]] = {}
        for partition, spans in self.by_partition.items():
            spans.sort(key=lambda span: span[0])
            self.lows[partition] = [low for low, _high, _batch in spans]

    def find(self, partition: int, offset: int) -> Batch | None:
        spans = self.by_partition.get(partition, [])
        at = bisect.bisect_right(self.lows.get(partition, []), offset) - 1
        if at >= 0 and spans[at][0] <= offset <= spans[at][1]:
            return spans[at][2]
        return None


def _segments(start_ns: int, start_name: str, stamps: dict[str, int], label: str
              ) -> list[tuple[str, float]]:  # fmt: skip
    """Consecutive stamps from ``start_ns`` on, in the order they happened, in ms."""
    order = sorted(stamps, key=lambda name: (stamps[name], BatchClock.NAMES.index(name)))
    found, previous_name, previous_ns = [], start_name, start_ns
    for name in order:
        found.append((f"{label}.{previous_name}->{name}", (stamps[name] - previous_ns) / 1e6))
        previous_name, previous_ns = name, stamps[name]
    return found


def segments(directory: Path) -> dict[str, list[float]]:
    """Per segment name, the durations (ms) of every order that crossed it."""
    orders = _lines(directory, "orders-*.jsonl")
    accounts = BatchIndex(_lines(directory, "*-accounts-*.jsonl"), "account-commands")
    matcher = BatchIndex(_lines(directory, "*-matcher-*.jsonl"), "order-requests")
    rows: dict[str, list[float]] = {}

    def add(name: str, ms: float) -> None:
        rows.setdefault(name, []).append(ms)

    for order in orders:
        account_batch = accounts.find(*order["command"])
        if account_batch is None or order["acked"] is None:
            continue
        stamps = account_batch["stamps"]
        for name, ms in _segments(order["sent"], "sent", stamps, "A"):
            add(name, ms)
        add("A.committed->acked (watcher)", (order["acked"] - stamps["committed"]) / 1e6)
        add("order->ack", (order["acked"] - order["sent"]) / 1e6)
        if order["traded"] is None or order["request"] is None:
            continue
        matcher_batch = matcher.find(*order["request"])
        if matcher_batch is None:
            continue
        engine = matcher_batch["stamps"]
        for name, ms in _segments(stamps["committed"], "A.committed", engine, "M"):
            add(name, ms)
        add("M.committed->traded (watcher)", (order["traded"] - engine["committed"]) / 1e6)
        add("order->trade", (order["traded"] - order["sent"]) / 1e6)
    return rows


def _rank(segment: str) -> tuple[int, int]:
    """Account stage, ack, matcher, trade; within a stage, by the step a segment ends at."""
    stage = {"A": 0, "order->ack": 1, "M": 2, "order->trade": 3}
    if segment in stage:
        return stage[segment], 0
    label, steps = segment.split(".", 1)
    end = steps.rsplit("->", 1)[1].split(" ")[0]
    names = BatchClock.NAMES
    return stage[label], names.index(end) if end in names else len(names)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m tradex.bench.latency_report TIMING_DIR", file=sys.stderr)
        return 2
    rows = segments(Path(argv[0]))
    if not rows:
        print(f"no order found in a batch under {argv[0]}", file=sys.stderr)
        return 1
    print(f"{'segment (ms)':36s} {'orders':>6s} {'p50':>7s} {'p90':>7s} {'p99':>7s}")
    for name, values in sorted(rows.items(), key=lambda row: _rank(row[0])):
        print(f"{name:36s} {len(values):6d} {percentile(values, 0.5):7.2f} "
              f"{percentile(values, 0.9):7.2f} {percentile(values, 0.99):7.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
