"""``tradex bench matcher-service``: the matcher alone on Kafka, draining a backlog.

    tradex bench matcher-service             # 200k requests over 4 instruments, 3 runs
    tradex bench matcher-service --quick     # smoke run (5k requests, 1 run)

Each run, on fresh topics under a unique prefix (deleted afterwards):

1. a seeded ``order-requests`` backlog (:mod:`tradex.bench.order_feed`: one rules record
   per instrument, then new orders — about half crossing —, cancels and amends) is
   preloaded;
2. one matcher (``tradex.matching.service.build``, the service's own stage and processor,
   in this process) drains it: the clock runs from its first batch to the commit of its
   last; process CPU (every thread, librdkafka's included) and the main thread's CPU
   inside ``process`` are taken over the same span;
3. ``tradex matching verify`` re-runs every partition and compares the log (engine-events
   and settlements) byte for byte: ``ok`` is false if anything differs or an input is
   missing.

The median of the runs is the headline ``requests_per_s``. Last line: one JSON object
(``../shared/bench/README.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from tradex.bench.order_feed import bench_feed
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.kafka import TopicSpec, delete_prefixed_topics, ensure_topics, produce_sync
from tradex.infra.settings import Settings
from tradex.infra.stage import batch_records_max
from tradex.log.topics import ORDER_REQUESTS, SETTLEMENTS
from tradex.matching import verify
from tradex.matching.partition import BookConfig
from tradex.matching.service import build
from tradex.schemas.codec import Codec

TARGET_REQUESTS_PER_S = 50_000
SEED = 20261201


def _load() -> float:
    return os.getloadavg()[0]


class _Clock:
    """Wraps a processor: time of its first batch and of its last commit, and the main
    thread's CPU seconds inside ``process``."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.thread_first = 0.0  # the stage's thread (consume, process, produce)
        self.thread_last = 0.0
        self.process_cpu_s = 0.0
        self.outputs = 0

    def assign(self, consumer: Any, partitions: Any) -> None:
        self.processor.assign(consumer, partitions)

    def revoke(self, partitions: Any) -> None:
        self.processor.revoke(partitions)

    def process(self, messages: Any) -> Any:
        if not self.first:
            self.first = time.perf_counter()
            self.cpu_first = time.process_time()
            self.thread_first = time.thread_time()
        started = time.thread_time()
        outputs = self.processor.process(messages)
        self.process_cpu_s += time.thread_time() - started
        self.outputs += len(outputs)
        return outputs

    def committed(self, produced: Any) -> Any:
        self.last = time.perf_counter()
        self.cpu_last = time.process_time()
        self.thread_last = time.thread_time()
        return self.processor.committed(produced)


@dataclasses.dataclass
class Run:
    requests_per_s: float
    outputs_per_s: float
    cpu_us_per_request: float  # process CPU (all threads) per request
    stage_us_per_request: float  # the stage thread's CPU per request (consume, fold, produce)
    process_us_per_request: float  # the stage thread's CPU inside process() per request
    load_start: float
    load_end: float
    problems: list[str]


def one_run(
    settings: Settings,
    records: Sequence[tuple[bytes | None, bytes]],
    partitions: int,
    config: BookConfig,
    profile: str | None,
) -> Run:
    ensure_topics(
        settings,
        {ORDER_REQUESTS: TopicSpec(partitions), SETTLEMENTS: TopicSpec(partitions)},
    )
    started = time.perf_counter()
    produce_sync(settings, settings.topic(ORDER_REQUESTS), list(records))
    print(f"  preloaded {len(records):,} requests in {time.perf_counter() - started:.1f}s")
    stage, processor = build(
        settings, instance="bench", config=config, batch_records=batch_records_max
    )
    clock = _Clock(processor)
    stage.processor = clock
    load_start = _load()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        stats = stage.run(idle_s_max=2.0)
    finally:
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
    load_end = _load()
    problems: list[str] = []
    if stats.records_in != len(records):
        problems.append(f"{stats.records_in} requests consumed, {len(records)} sent")
    wall_s = clock.last - clock.first
    cpu_s = clock.cpu_last - clock.cpu_first
    count = len(records)
    run = Run(
        count / wall_s,
        clock.outputs / wall_s,
        cpu_s / count * 1e6,
        (clock.thread_last - clock.thread_first) / count * 1e6,
        clock.process_cpu_s / count * 1e6,
        load_start,
        load_end,
        problems,
    )
    print(
        f"  drained in {wall_s:.2f}s: {run.requests_per_s:,.0f} requests/s, "
        f"{run.outputs_per_s:,.0f} outputs/s ({clock.outputs:,} outputs); CPU per request "
        f"{run.cpu_us_per_request:.1f} µs (process), {run.stage_us_per_request:.1f} µs (stage "
        f"thread), {run.process_us_per_request:.1f} µs (in process()); load {load_start:.2f} -> "
        f"{load_end:.2f}"
    )
    started = time.perf_counter()
    codec = Codec.offline()
    for partition in range(partitions):
        result = verify.verify_partition(settings, partition, config=config, codec=codec)
        if not result.ok:
            problems.append(f"verify: partition {partition} diverges")
    print(f"  verified in {time.perf_counter() - started:.1f}s: {problems or 'identical'}")
    return run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench matcher-service", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--requests", type=positive_int, default=None)
    parser.add_argument("--instruments", type=positive_int, default=4)
    parser.add_argument("--partitions", type=positive_int, default=4)
    parser.add_argument("--repeats", type=positive_int, default=None)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--profile", default=None, help="write a cProfile of the first run here")
    args = parser.parse_args(argv)
    count = args.requests or (5_000 if args.quick else 200_000)
    repeats = args.repeats or (1 if args.quick else 3)
    base = settings_module.load()
    config = BookConfig()
    token = uuid.uuid4().hex[:8]
    print(
        f"matcher-service: {count:,} requests over {args.instruments} instruments, "
        f"{args.partitions} partitions, {repeats} run(s); load {_load():.2f}"
    )
    started = time.perf_counter()
    records = list(bench_feed(args.seed, count, args.instruments))
    print(f"  generated in {time.perf_counter() - started:.1f}s")
    runs: list[Run] = []
    for index in range(repeats):
        settings = dataclasses.replace(base, topic_prefix=f"bench-matcher-{token}-{index}-")
        print(f"run {index + 1}/{repeats}")
        try:
            runs.append(
                one_run(settings, records, args.partitions, config,
                        args.profile if index == 0 else None)
            )  # fmt: skip
        finally:
            delete_prefixed_topics(settings)
    problems = [p for run in runs for p in run.problems]
    median = statistics.median(run.requests_per_s for run in runs)
    result = {
        "bench": "matcher-service",
        "ok": not problems,
        "figures": {
            "requests_per_s": round(median),
            "requests_per_s_runs": [round(run.requests_per_s) for run in runs],
            "outputs_per_s": round(statistics.median(run.outputs_per_s for run in runs)),
            "cpu_us_per_request": round(statistics.median(r.cpu_us_per_request for r in runs), 2),
            "stage_us_per_request": round(
                statistics.median(r.stage_us_per_request for r in runs), 2
            ),
            "process_us_per_request": round(
                statistics.median(r.process_us_per_request for r in runs), 2
            ),
            "load_avg_1m": [[round(r.load_start, 2), round(r.load_end, 2)] for r in runs],
        },
        "target_requests_per_s": TARGET_REQUESTS_PER_S,
        "cores": os.cpu_count() or 1,
        "notes": (
            f"{count} requests (+{args.instruments} rules) over {args.instruments} "
            f"instruments, {args.partitions} partitions, seed {args.seed}; one matcher in this "
            f"process (batches of {batch_records_max}, exactly-once transactions, default book "
            f"dimensions), wall clock from its first batch to its last commit, median of "
            f"{repeats} runs on fresh topics; every run verified byte for byte by tradex "
            f"matching verify; problems: {problems[:3]}"
        ),
    }
    print(json.dumps(result))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
