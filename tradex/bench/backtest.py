"""``tradex bench backtest``: a backtest's replay speed beside the kernel's on one stream.

    tradex bench backtest              # 50k requests over 4 instruments, 2 partitions
    tradex bench backtest --quick      # 3k requests

A seeded ``order-requests`` backlog (:mod:`tradex.bench.order_feed`) is preloaded on fresh
topics and drained by the matcher (the service's stage, in this process) to make history.
Then, timed apart on the same inputs:

- **backtest**: ``tradex.backtest.plan.backtest`` with no change — reading the partitions
  from Kafka, the matcher's fold, decoding every engine event, reading history's beside
  it, the figures; ``ok`` needs it to reproduce history byte for byte;
- **kernel**: the same inputs' command rows (parsed by ``wire.parse_request`` before the
  clock) through one fresh ``Book`` per instrument with ``segments.run_book`` — the
  engine alone, as ``tradex bench replay`` times it.

Last line: one JSON object (``ratio`` = backtest inputs/s ÷ kernel commands/s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import uuid
from typing import Any

import numpy as np

from tradex.backtest.plan import Plan, backtest
from tradex.bench.order_feed import bench_feed
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.kafka import TopicSpec, delete_prefixed_topics, ensure_topics, produce_sync
from tradex.log.source import KafkaLog
from tradex.log.topics import ORDER_REQUESTS, SETTLEMENTS
from tradex.matching import wire
from tradex.matching.book import Book, OutputBuffers
from tradex.matching.dtypes import COMMAND_DTYPE
from tradex.matching.partition import BookConfig
from tradex.matching.segments import run_book
from tradex.matching.service import build
from tradex.schemas.codec import Codec

SEED = 20261202


def kernel_rows(
    codec: Codec, records: list[tuple[bytes | None, bytes]]
) -> dict[int, tuple[np.ndarray, list[int]]]:
    """Per instrument: the command rows of its requests from its first rules on, and the
    rows that are amends (resolved just before they run)."""
    rows: dict[int, list[tuple[int, ...]]] = {}
    amends: dict[int, list[int]] = {}
    for key, value in records:
        req = wire.parse_request(codec, key, value)
        if isinstance(req, wire.Malformed):
            continue
        mine = rows.get(req.instrument_id)
        if mine is None:
            if req.kind != wire.REQ_RULES:
                continue  # the engine rejects it: unknown instrument
            mine = rows[req.instrument_id] = []
            amends[req.instrument_id] = []
        if req.kind == wire.REQ_AMEND:
            amends[req.instrument_id].append(len(mine))
        mine.append(req.row)
    return {i: (np.array(r, dtype=COMMAND_DTYPE), amends[i]) for i, r in sorted(rows.items())}


def time_kernel(
    found: dict[int, tuple[np.ndarray, list[int]]], config: BookConfig
) -> tuple[float, float, int, int]:
    """(wall s, CPU s, commands, trades) of the rows through fresh books."""
    out = OutputBuffers(config.orders_max)
    books = {i: Book(config.orders_max, config.price_levels_max) for i in found}
    commands = sum(cmds.shape[0] for cmds, _a in found.values())
    trades = 0
    started, cpu = time.perf_counter(), time.process_time()
    for instrument_id, (cmds, amends) in found.items():
        trades += run_book(books[instrument_id], cmds.copy(), amends, out).trades.shape[0]
    return time.perf_counter() - started, time.process_time() - cpu, commands, trades


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench backtest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--requests", type=positive_int, default=None)
    parser.add_argument("--instruments", type=positive_int, default=4)
    parser.add_argument("--partitions", type=positive_int, default=2)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    count = args.requests or (3_000 if args.quick else 50_000)
    load_start = os.getloadavg()[0]
    settings = dataclasses.replace(
        settings_module.load(), topic_prefix=f"bench-backtest-{uuid.uuid4().hex[:8]}-"
    )
    config = BookConfig()
    codec = Codec.offline()
    records = list(bench_feed(args.seed, count, args.instruments))
    print(f"backtest: {len(records):,} requests over {args.instruments} instruments, "
          f"{args.partitions} partitions; load {load_start:.2f}")  # fmt: skip
    try:
        ensure_topics(settings, {ORDER_REQUESTS: TopicSpec(args.partitions),
                                 SETTLEMENTS: TopicSpec(args.partitions)})  # fmt: skip
        produce_sync(settings, settings.topic(ORDER_REQUESTS), list(records))
        stage, _processor = build(settings, instance="bench", config=config)
        drained = stage.run(idle_s_max=2.0).records_in
        print(f"  history: the matcher ran {drained:,} requests")
        with KafkaLog(settings) as source:
            backtest(source, codec, Plan(config=config))  # warm: JIT cache, imports, Kafka
            started, cpu = time.perf_counter(), time.process_time()
            result = backtest(source, codec, Plan(config=config))
            bt_wall, bt_cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        delete_prefixed_topics(settings)
    time_kernel(kernel_rows(codec, records[:64]), config)  # warm the JIT
    kernel_wall, kernel_cpu, commands, kernel_trades = time_kernel(
        kernel_rows(codec, records), config
    )
    backtest_trades = sum(i.trades for i in result.backtest.instruments.values())
    inputs = result.inputs
    figures: dict[str, Any] = {
        "backtest_inputs_per_s": round(inputs / bt_wall),
        "backtest_cpu_inputs_per_s": round(inputs / bt_cpu) if bt_cpu else None,
        "kernel_commands_per_s": round(commands / kernel_wall),
        "kernel_cpu_commands_per_s": round(commands / kernel_cpu) if kernel_cpu else None,
        "ratio": round(inputs / bt_wall / (commands / kernel_wall), 4),
        "inputs": inputs,
        "kernel_commands": commands,
        "trades": [backtest_trades, kernel_trades],  # backtest's, kernel's: equal
        "load_avg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    print(f"  backtest: {inputs:,} inputs in {bt_wall:.2f}s ({figures['backtest_inputs_per_s']:,}/s)"
          f", identical to history: {result.identical}")  # fmt: skip
    print(f"  kernel: {commands:,} commands in {kernel_wall:.3f}s "
          f"({figures['kernel_commands_per_s']:,}/s)")  # fmt: skip
    ok = result.identical and drained == len(records) and kernel_trades == backtest_trades
    print(json.dumps({"bench": "backtest", "ok": ok, "figures": figures,
                      "cores": os.cpu_count() or 1,
                      "notes": "backtest = Kafka read + the matcher's fold + decoding every "
                               "engine event + history read + figures; kernel = Book alone"}))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
