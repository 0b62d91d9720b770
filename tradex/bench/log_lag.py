"""The floor of a projector's lag: a reader that follows the projectors' topics and does
nothing with what it reads.

``tradex bench projections`` runs it as a process of its own beside the projectors in the
steady state. It reads as a live projector does (the same C batch reader, the same parked
fetch, read_committed) and counts each record's lag the same way — from the record's Kafka
timestamp (stamped when the upstream stage produced it, inside its transaction) — but to
the moment the record was read, with no fold and no store. What a projector's lag cannot
go below on this machine at that rate: the upstream transaction's commit, the broker's
answer, and a core to run on.

    python -m tradex.bench.log_lag STATS_JSON     # SIGUSR1: count afresh; SIGTERM: write, exit
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from tradex.infra import settings as settings_module
from tradex.infra.kafka import PARKED_FETCH_WAIT_MS
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS
from tradex.projections.runner import LagHistogram

NAME = "floor"  # its entry in the stats file, beside the projectors' names
TOPICS = (ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS)
POLL_S = 0.1
BATCH_RECORDS_MAX = 50_000


def follow(stop: threading.Event, reset: threading.Event) -> tuple[LagHistogram, int]:
    """Read the topics' new records until ``stop``; their lag histogram (counted afresh
    whenever ``reset`` is set) and the records read."""
    settings = settings_module.load()
    lag = LagHistogram()
    read = 0
    with KafkaLog(settings, fetch_wait_ms=PARKED_FETCH_WAIT_MS) as log:
        starts = {(t, p): 0 for t in TOPICS for p in range(log.partitions(t))}
        tail = log.follow_batches(starts)
        try:
            while not stop.is_set():
                batch = tail.poll_batch(POLL_S, BATCH_RECORDS_MAX)
                if not len(batch):
                    continue
                now_ms = time.time_ns() // 1_000_000
                if reset.is_set():
                    reset.clear()
                    lag = LagHistogram()
                lag.add_stamps(batch.timestamp_ms, now_ms)
                read += len(batch)
        finally:
            tail.close()
    return lag, read


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tradex.bench.log_lag STATS_JSON", file=sys.stderr)
        return 2
    stop, reset = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        (reset if signum == signal.SIGUSR1 else stop).set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, on_signal)
    lag, read = follow(stop, reset)
    report = {
        NAME: {
            "events": read, "records_timed": lag.total,
            "lag_p50_ms": lag.percentile(0.5), "lag_p99_ms": lag.percentile(0.99),
            "lag_max_ms": lag.percentile(1.0),
        }
    }  # fmt: skip
    Path(argv[0]).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
