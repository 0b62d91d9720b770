"""``tradex bench clickhouse``: how fast the ``clickhouse`` read model rebuilds into chdb,
and where the time goes.

    tradex bench clickhouse                   # ~60k commands -> a log of ~300k events
    tradex bench clickhouse --quick           # smoke run
    tradex bench clickhouse --keep-log        # keep the topics; --prefix P reuses them

A real exchange's log first (fresh topics under a unique prefix): reference data, then
``bench.ledger``'s seeded workload (20 % deposits, 80 % limit orders) through the account
processor, the matcher, and the account processor again to settle every fill. Then, on
that log, in this process and in a fresh chdb folder:

1. **consume**: every record of the projector's topics read from Kafka (bulk settings);
2. **decode**: each record through ``Codec.decode_domain`` (the C codec);
3. **fold**: the decoded events in batches of ``--batch-records`` through the fold
   (Arrow tables per table; the book kept in memory);
4. **insert**: those tables, plus each batch's positions, into a version's tables;
5. **rebuild**: ``tradex projections rebuild clickhouse`` end to end (what a user
   runs), events/s from its own count and clock.

Each phase's time is CPU-bound work on a shared 2-core machine, so figures move with the
load; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.ledger import delete_topics, preload, prepare, services_down, workload
from tradex.commands import service as accounts_service
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.clickhouse import ChdbClickHouse
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, LogRecord, Place
from tradex.matching import service as matcher_service
from tradex.matching.partition import BookConfig
from tradex.projections import admin
from tradex.projections.analytics_model import Book, ClickHouseReadModel, fold
from tradex.projections.projector import Event
from tradex.projections.runner import batch_records_max
from tradex.schemas.codec import Codec

PASSES_MAX = 8
IDLE_S = 1.0
TARGET_EVENTS_PER_S = 1_000_000


def build_log(settings: Settings, commands: int, accounts: int, partitions: int) -> int:
    """The exchange's log on ``settings``' topics; the number of account commands sent."""
    codec = Codec.offline()
    prepare(settings, codec, partitions, accounts)
    preload(settings, codec, workload(commands, accounts, seed=7))
    for _ in range(PASSES_MAX):
        stage, processor = accounts_service.build(settings, instance="bench", partitions=partitions)
        try:
            out = stage.run(idle_s_max=IDLE_S).records_out
        finally:
            processor.follower.close()
        matcher, _ = matcher_service.build(settings, instance="bench", config=BookConfig())
        if matcher.run(idle_s_max=IDLE_S).records_out == 0 and out == 0:
            return commands
    raise RuntimeError(f"the exchange did not settle in {PASSES_MAX} passes")


def _phase(label: str, count: int, seconds: float, found: dict[str, Any]) -> None:
    rate = count / seconds if seconds else float("inf")
    found[label] = {"seconds": round(seconds, 3), "per_s": round(rate), "us": round(1e6 / rate, 3)}
    print(
        f"  {label:<8} {count:>9,} in {seconds:7.2f} s  {rate:>12,.0f}/s  {1e6 / rate:6.2f} µs each"
    )


def measure(settings: Settings, batch_records: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    topics = ClickHouseReadModel.topics
    source = KafkaLog(settings)
    starts: dict[Place, int] = {(t, p): 0 for t in topics for p in range(source.partitions(t))}
    records: list[LogRecord] = []
    started = time.perf_counter()
    for batch in source.read_batches(starts):
        records += batch
    _phase("consume", len(records), time.perf_counter() - started, found)
    source.close()

    codec = Codec.offline()
    decode = codec.decode_domain
    started = time.perf_counter()
    events = []
    for record in records:
        envelope, body = decode(record.value or b"")
        events.append(Event(record.topic, record.partition, record.offset, envelope, body))
    _phase("decode", len(events), time.perf_counter() - started, found)
    found["events"] = len(events)

    books: dict[int, Book] = {}
    batches = [events[i : i + batch_records] for i in range(0, len(events), batch_records)]
    started = time.perf_counter()
    tables = [fold(batch, books) for batch in batches]
    _phase("fold", len(events), time.perf_counter() - started, found)
    found["rows"] = {
        name: sum(t[name].num_rows for t in tables if name in t)
        for name in sorted({name for t in tables for name in t})
    }

    projector = ClickHouseReadModel(settings, 1)
    projector.open()
    ch = ChdbClickHouse(settings.clickhouse_path)
    started = time.perf_counter()
    inserts = 0
    for batch_tables in tables:
        for name, data in batch_tables.items():
            if data.num_rows:
                ch.insert_arrow(f"{projector.database}.{name}", data)
                inserts += 1
    _phase("insert", len(events), time.perf_counter() - started, found)
    found["inserts"] = inserts
    projector.close()
    projector.drop()
    return found


def rebuild(settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    projector, stats = admin.rebuild(settings, "clickhouse", show_progress=False)
    seconds = time.perf_counter() - started
    found: dict[str, Any] = {}
    _phase("rebuild", stats.events, seconds, found)
    found["rebuild"]["apply_s"] = round(stats.apply_s, 3)
    found["rebuild"]["batches"] = stats.batches
    print(f"           of which fold + insert (apply): {stats.apply_s:.2f} s; "
          f"{stats.batches} batches; v{projector.version}")  # fmt: skip
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench clickhouse", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--commands", type=positive_int, default=None)
    parser.add_argument("--accounts", type=positive_int, default=1_000)
    parser.add_argument("--partitions", type=positive_int, default=2)
    parser.add_argument("--batch-records", type=positive_int, default=batch_records_max)
    parser.add_argument("--prefix", default=None, help="reuse the log under this topic prefix")
    parser.add_argument("--keep-log", action="store_true", help="do not delete the topics")
    args = parser.parse_args(argv)
    commands = args.commands or (3_000 if args.quick else 60_000)
    base = settings_module.load()
    problem = services_down(base)
    if problem:
        print(f"tradex bench clickhouse: {problem} (start it: tradex stack up)")
        return 1
    prefix = args.prefix or f"bench-ch-{uuid.uuid4().hex[:8]}-"
    folder = Path(tempfile.mkdtemp(prefix="tradex-bench-chdb-"))
    settings = dataclasses.replace(base, topic_prefix=prefix, clickhouse_path=folder)
    result: dict[str, Any] = {"bench": "clickhouse", "prefix": prefix}
    try:
        if args.prefix is None:
            print(f"log: {commands:,} commands over {args.accounts:,} accounts ({prefix})")
            started = time.perf_counter()
            build_log(settings, commands, args.accounts, args.partitions)
            print(f"  built in {time.perf_counter() - started:.1f} s")
            result["commands"] = commands
        print(f"phases (batches of {args.batch_records:,} events, chdb at {folder}):")
        result.update(measure(settings, args.batch_records))
        result.update(rebuild(settings))
    finally:
        ChdbClickHouse.close_sessions()
        shutil.rmtree(folder, ignore_errors=True)
        if args.prefix is None and not args.keep_log:
            delete_topics(settings)
    events = result["events"]
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    result["target_events_per_s"] = TARGET_EVENTS_PER_S
    print(f"rebuild: {result['rebuild']['per_s']:,} events/s over {events:,} events "
          f"(target {TARGET_EVENTS_PER_S:,}); load {result['load_avg_1m']}")  # fmt: skip
    print(json.dumps(result))
    return 0
