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

from tradex.bench.ledger import preload, prepare, services_down, workload
from tradex.commands import service as accounts_service
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.clickhouse import ChdbClickHouse
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, LogRecord, Place
from tradex.matching import service as matcher_service
from tradex.matching.partition import BookConfig
from tradex.projections import admin
from tradex.projections.analytics_model import BookState, ClickHouseReadModel, fold
from tradex.projections.clickhouse_store import INSERT_SETTINGS
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


def _phase(label: str, count: int, seconds: float, cpu_s: float, found: dict[str, Any]) -> None:
    """One phase's figures: per event, wall and process CPU (chdb's threads included)."""
    rate = count / seconds if seconds else float("inf")
    found[f"{label}_events_per_s"] = round(rate)
    found[f"{label}_us"] = round(1e6 * seconds / count, 3)
    found[f"{label}_cpu_us"] = round(1e6 * cpu_s / count, 3)
    print(
        f"  {label:<8} {count:>9,} in {seconds:7.2f} s  {rate:>10,.0f}/s  "
        f"{1e6 * seconds / count:6.2f} µs each ({1e6 * cpu_s / count:6.2f} µs CPU)"
    )


class _Clock:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        elapsed = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return elapsed


def measure(settings: Settings, batch_records: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Phases 1-4: figures, and the rows per table the fold gave."""
    found: dict[str, Any] = {}
    topics = ClickHouseReadModel.topics
    source = KafkaLog(settings)
    starts: dict[Place, int] = {(t, p): 0 for t in topics for p in range(source.partitions(t))}
    records: list[LogRecord] = []
    clock = _Clock()
    for batch in source.read_batches(starts):
        records += batch
    _phase("consume", len(records), *clock.lap(), found)
    source.close()

    codec = Codec.offline()
    decode = codec.decode_domain
    clock.lap()
    events = []
    for record in records:
        envelope, body = decode(record.value or b"")
        events.append(Event(record.topic, record.partition, record.offset, envelope, body))
    _phase("decode", len(events), *clock.lap(), found)
    found["events"] = len(events)

    books = BookState()
    batches = [events[i : i + batch_records] for i in range(0, len(events), batch_records)]
    clock.lap()
    tables = [fold(batch, books) for batch in batches]
    _phase("fold", len(events), *clock.lap(), found)
    rows = {
        name: sum(t[name].num_rows for t in tables if name in t)
        for name in sorted({name for t in tables for name in t})
    }

    projector = ClickHouseReadModel(settings, 1)
    projector.open()
    ch = ChdbClickHouse(settings.clickhouse_path)
    clock.lap()
    for batch_tables in tables:
        for name, data in batch_tables.items():
            if data.num_rows:
                ch.insert_arrow(f"{projector.database}.{name}", data, INSERT_SETTINGS)
    _phase("insert", len(events), *clock.lap(), found)
    projector.close()
    projector.drop()
    return found, rows


def rebuild(settings: Settings, rows: dict[str, int]) -> tuple[dict[str, Any], list[str]]:
    """Phase 5, and what differs between the rebuilt version and the fold's rows or the
    log's ends (empty: nothing)."""
    found: dict[str, Any] = {}
    clock = _Clock()
    projector, stats = admin.rebuild(settings, "clickhouse", show_progress=False)
    _phase("rebuild", stats.events, *clock.lap(), found)
    found["rebuild_apply_us"] = round(1e6 * stats.apply_s / stats.events, 3)
    print(f"           of which fold + insert (apply): {stats.apply_s:.2f} s; "
          f"{stats.batches} batches; v{projector.version}")  # fmt: skip
    problems = []
    with projector.frozen() as view:
        counts = {name: count for name, (count, _digest) in view.digests().items()}
        ends = admin.log_ends(settings, ClickHouseReadModel.topics)
        if {p: o for p, o in view.positions.items() if o} != {p: o for p, o in ends.items() if o}:
            problems.append(f"positions {view.positions} are not the log's ends {ends}")
    if {n: c for n, c in counts.items() if c} != {n: c for n, c in rows.items() if c}:
        problems.append(f"rebuilt rows {counts} differ from the fold's {rows}")
    return found, problems


def chdb_version() -> str:
    import chdb

    return str(chdb.__version__)


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
    figures: dict[str, Any] = {}
    problems: list[str] = []
    try:
        if args.prefix is None:
            print(f"log: {commands:,} commands over {args.accounts:,} accounts ({prefix})")
            started = time.perf_counter()
            build_log(settings, commands, args.accounts, args.partitions)
            print(f"  built in {time.perf_counter() - started:.1f} s")
            figures["commands"] = commands
        print(f"phases (batches of {args.batch_records:,} events, chdb at {folder}):")
        found, rows = measure(settings, args.batch_records)
        figures.update(found)
        found, problems = rebuild(settings, rows)
        figures.update(found)
        figures["rows"] = rows
    finally:
        ChdbClickHouse.close_sessions()
        shutil.rmtree(folder, ignore_errors=True)
        if args.prefix is None and not args.keep_log:
            delete_prefixed_topics(settings)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    load = round(os.getloadavg()[0], 2)
    print(f"rebuild: {figures['rebuild_events_per_s']:,} events/s over {figures['events']:,} "
          f"events (target {TARGET_EVENTS_PER_S:,}); load {load}")  # fmt: skip
    summary = {
        "bench": "clickhouse", "ok": not problems, "figures": figures,
        "target_events_per_s": TARGET_EVENTS_PER_S, "cores": os.cpu_count(),
        "notes": "; ".join(problems) or f"chdb {chdb_version()}; 1-minute load {load} at the end",
    }  # fmt: skip
    print(json.dumps(summary))
    return 0 if not problems else 1
