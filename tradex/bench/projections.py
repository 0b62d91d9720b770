"""``tradex bench projections``: rebuild speed of every read model, side by side with the
``eventsourcing`` library's projection machinery, and projector lag under live load.

    tradex bench projections                  # >= 1,000,000 events (several minutes)
    tradex bench projections --quick          # smoke run
    tradex bench projections --keep           # keep the log's topics for the next run
    tradex bench projections --prefix P       # reuse a kept log (topic prefix P)

Phases:

1. **log**: a market written to Kafka by the real stages (:mod:`.exchange_log`): reference
   data, funding, a seeded order flow over three instruments through the account processor
   and the matcher, until ``account-events`` + ``engine-events`` hold ``--events`` records.
2. **rebuild**: each read model rebuilt from the start of the log into a fresh store (a
   new PostgreSQL database with ``synchronous_commit = off``, a private Redis logical
   database, a private chdb folder) by the projector's own runner in this process; events
   per second = records consumed / wall time from open to the last commit. Checked: no
   dead letters; the PostgreSQL balances equal the domain's fold of ``account-events``.
   ``clickhouse`` also: **read**, the log's records read and decoded alone, the C path
   (``read_columns`` + the columnar decoder its rebuild uses) against the Python-object
   path (``read_batches`` + ``decode_domain``) (:mod:`.read_columns`).
3. **peer**: the first ``--peer-events`` account events through ``eventsourcing``'s
   ``ProjectionRunner`` into PostgreSQL balance and order tables
   (:mod:`.projections_peer`; same database settings); its balances must equal the fold.
4. **steady state**: a fresh exchange live — reference, account and matching stages and
   every projector as separate processes — fed ``--rate`` orders per second for
   ``--steady-seconds``; each projector reports the lag of every record (its Kafka
   timestamp, stamped when the upstream stage produced it, to the commit that applied it).
   Beside them a process that reads the same topics the same way and applies nothing
   (:mod:`.log_lag`) reports the lag to the moment it read each record: the floor a
   projector's lag cannot go below here at that rate (``log_lag_p99_ms``).

Last line: one JSON object (../shared/bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tradex.bench.exchange_log import (
    PARTITIONS,
    OrderFlow,
    event_count,
    funding,
    reference_commands,
    wait_reference_applied,
    write_market_log,
)
from tradex.bench.ledger import create_peer_database, services_down
from tradex.bench.log_lag import NAME as FLOOR
from tradex.bench.projections_peer import run_peer
from tradex.bench.read_columns import read_speed
from tradex.commands.client import encode_command
from tradex.domain import AccountBook, ReferenceData
from tradex.exchange_services import pipeline_services, wait_idle
from tradex.infra import postgres, redis_client
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.exchange import Exchange, Ready, Service
from tradex.infra.kafka import (
    TopicSpec,
    delete_prefixed_topics,
    ensure_topics,
    produce_sync,
    producer_config,
)
from tradex.infra.settings import Settings
from tradex.log.keys import account_key, account_partition, reference_key
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNT_EVENTS,
    ORDER_REQUESTS,
    REFERENCE_COMMANDS,
    ensure_account_topics,
    ensure_matcher_topics,
    ensure_reference_topics,
)
from tradex.projections import admin
from tradex.projections.catalog import PROJECTORS, projector_class
from tradex.projections.pg_read import PostgresReader
from tradex.schemas.codec import Codec

TARGETS = {"clickhouse": 1_000_000, "postgres": 150_000, "redis": 200_000}
TARGET_RATIO = 20.0
TARGET_LAG_P99_MS = 100
BENCH_REDIS_DB = 15
STEADY_DRAIN_S_MAX = 120.0
STAGE_STOP_S = 60.0


# -- rebuild -----------------------------------------------------------------------------------


def rebuild_one(settings: Settings, name: str) -> dict[str, Any]:
    """``tradex projections rebuild NAME`` from the start of the log, in this process."""
    started = time.perf_counter()
    _projector, stats = admin.rebuild(settings, name)
    elapsed = time.perf_counter() - started
    records = stats.events + stats.dead_letters + stats.skipped
    return {
        "events": records,
        "seconds": round(elapsed, 2),
        "events_per_s": round(records / elapsed),
        "dead_letters": stats.dead_letters,
        "apply_s": round(stats.apply_s, 2),
    }


# the row paths kept as twins of the columnar ones: rebuilt beside them (``--row-twins``)
ROW_TWINS = {
    "postgres": "tradex.projections.postgres:PostgresRowReadModel",
    "redis": "tradex.projections.market:RedisRowReadModel",
}
TWIN_VERSION = 999  # the twin's version beside the rebuilt one (dropped afterwards)


def rebuild_twin(settings: Settings, name: str) -> dict[str, Any]:
    """The row-path twin of ``name`` built from the start of the log as version
    :data:`TWIN_VERSION` of the same store, timed as :func:`rebuild_one` (open to the last
    commit), then dropped."""
    module_name, _, class_name = ROW_TWINS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    codec = Codec.offline()
    until = admin.log_ends(settings, cls.topics)
    started = time.perf_counter()
    stats = admin.build_version(cls(settings, TWIN_VERSION), settings, codec, until)
    elapsed = time.perf_counter() - started
    cls(settings, TWIN_VERSION).drop()
    records = stats.events + stats.dead_letters + stats.skipped
    return {
        "events": records,
        "seconds": round(elapsed, 2),
        "events_per_s": round(records / elapsed),
        "dead_letters": stats.dead_letters,
        "apply_s": round(stats.apply_s, 2),
    }


def account_events(settings: Settings, codec: Codec) -> list[Any]:
    """Every account event of the log, partition by partition (each in log order)."""
    found = []
    with KafkaLog(settings) as log:
        for partition in range(log.partitions(ACCOUNT_EVENTS)):
            for batch in log.read_batches({(ACCOUNT_EVENTS, partition): 0}):
                found += [codec.decode_domain(r.value or b"")[1] for r in batch]
    return found


def fold_balances(events: list[Any]) -> dict[tuple[int, str], tuple[int, int]]:
    book = AccountBook(ReferenceData())
    for event in events:
        book.apply(event)
    return {
        (account.account_id, asset): pair
        for account in book
        for asset, pair in account.balances().items()
        if pair != (0, 0)
    }


def postgres_balances(settings: Settings) -> dict[tuple[int, str], tuple[int, int]]:
    reader = PostgresReader(settings)

    async def read() -> dict[tuple[int, str], tuple[int, int]]:
        async with reader.connect() as conn:
            rows = await conn.fetch(
                f"SELECT account_id, asset, available, held FROM {reader.ns}.balances "
                "WHERE account_id > 0 AND (available <> 0 OR held <> 0)"
            )
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    return asyncio.run(read())


# -- steady state -----------------------------------------------------------------------------


def steady_state(
    settings: Settings, names: list[str], rate: int, seconds: float, accounts: int,
    work_dir: Path,
) -> dict[str, Any]:  # fmt: skip
    """A live exchange fed ``rate`` orders/s for ``seconds``; the projectors' lag."""
    codec = Codec.offline()
    ensure_account_topics(settings, PARTITIONS)
    ensure_topics(settings, {ORDER_REQUESTS: TopicSpec(PARTITIONS)})
    ensure_matcher_topics(settings)
    ensure_reference_topics(settings)
    commands = reference_commands(accounts)
    produce_sync(
        settings, settings.topic(REFERENCE_COMMANDS),
        [(reference_key(c), encode_command(codec, c)) for c in commands],
    )  # fmt: skip
    stats_path = work_dir / "projector-stats.json"
    exchange = Exchange(settings, work_dir, stop_timeout_s=STAGE_STOP_S)
    exchange.start(pipeline_services("bench", ["--partitions", str(PARTITIONS)]))
    exchange.start([
        Service(f"projector-{name}",
                ("run", "projector", name, "--stats-json", f"{stats_path}.{name}"),
                Ready("alive"))
        for name in names
    ] + [Service("log-lag", (f"{stats_path}.{FLOOR}",), Ready("alive"),
                 module="tradex.bench.log_lag")])  # fmt: skip
    sent = 0
    try:
        wait_reference_applied(settings, len(commands), STEADY_DRAIN_S_MAX)
        fund = funding(accounts)
        produce_sync(
            settings, settings.topic(ACCOUNT_COMMANDS),
            [(account_key(c.account_id), encode_command(codec, c)) for c in fund],
        )  # fmt: skip
        offsets = [0] * PARTITIONS
        for command in fund:
            offsets[account_partition(command.account_id, PARTITIONS)] += 1
        flow = OrderFlow(accounts, seed=7, first_offsets=offsets)
        wait_idle(settings, names, STEADY_DRAIN_S_MAX)  # funded and projected: start clean
        for name in names:  # the funding's lag is the warm-up's, not the steady state's
            exchange.processes[f"projector-{name}"].send_signal(signal.SIGUSR1)
        exchange.processes["log-lag"].send_signal(signal.SIGUSR1)
        sent = _feed(settings, codec, flow, rate, seconds)
        wait_idle(settings, names, STEADY_DRAIN_S_MAX)
    finally:
        codes = list(exchange.stop().values())
    report: dict[str, Any] = {"orders_sent": sent, "rate": rate, "seconds": seconds}
    for name in [*names, FLOOR]:
        path = Path(f"{stats_path}.{name}")
        report[name] = json.loads(path.read_text())[name] if path.exists() else None
    report["exit_codes"] = codes
    return report


def _feed(settings: Settings, codec: Codec, flow: OrderFlow, rate: int, seconds: float) -> int:
    """Orders at ``rate`` per second (in 10 ms slices) for ``seconds``."""
    from confluent_kafka import Producer

    producer = Producer(producer_config(settings))
    topic = settings.topic(ACCOUNT_COMMANDS)
    slice_s = 0.01
    per_slice = max(1, round(rate * slice_s))
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        for command in flow.commands(per_slice):
            producer.produce(topic, encode_command(codec, command), account_key(command.account_id))
        sent += per_slice
        producer.poll(0)
        target = started + sent / rate
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush(30)
    return sent


# -- main --------------------------------------------------------------------------------------


def isolated_settings(base: Settings, prefix: str, token: str, work_dir: Path) -> Settings:
    return dataclasses.replace(
        base, topic_prefix=prefix, postgres_db=f"bench_projections_{token}",
        redis_url=redis_client.url(base, BENCH_REDIS_DB),
        clickhouse_path=work_dir / "chdb",
    )  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench projections", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--events", type=positive_int, default=None, help="log size, at least")
    parser.add_argument("--accounts", type=positive_int, default=None)
    parser.add_argument("--peer-events", type=positive_int, default=None)
    parser.add_argument("--rate", type=positive_int, default=None, help="steady orders/s")
    parser.add_argument("--steady-seconds", type=float, default=None)
    parser.add_argument("--prefix", default=None, help="reuse the log on this topic prefix")
    parser.add_argument("--keep", action="store_true", help="keep the log's topics")
    parser.add_argument(
        "--only", default=None, help=f"comma-separated read models (default all: "
        f"{', '.join(sorted(PROJECTORS))})",
    )  # fmt: skip
    parser.add_argument(
        "--row-twins", action="store_true",
        help=f"also rebuild the row paths of {', '.join(ROW_TWINS)} (twins of the columnar "
        "paths: the speed before them)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    names = sorted(PROJECTORS) if args.only is None else args.only.split(",")
    unknown = [n for n in names if n not in PROJECTORS]
    if unknown:
        parser.error(f"unknown read model {', '.join(unknown)}")
    quick = args.quick
    events_min = args.events or (30_000 if quick else 1_000_000)
    accounts = args.accounts or (200 if quick else 10_000)
    peer_events = args.peer_events or (2_000 if quick else 20_000)
    rate = args.rate or (500 if quick else 5_000)
    steady_s = args.steady_seconds or (5.0 if quick else 30.0)

    base = settings_module.load()
    problem = services_down(base)
    if problem:
        print(f"tradex bench projections: {problem} (start it: tradex stack up)", file=sys.stderr)
        return 1
    token = uuid.uuid4().hex[:8]
    work_dir = Path(tempfile.mkdtemp(prefix="tradex-bench-projections-"))
    prefix = args.prefix or f"bench-proj-{token}-"
    settings = isolated_settings(base, prefix, token, work_dir)
    steady = isolated_settings(base, f"bench-proj-{token}-live-", f"{token}_live", work_dir)
    steady = dataclasses.replace(steady, clickhouse_path=work_dir / "chdb-live")
    codec = Codec.offline()
    problems: list[str] = []
    rebuilds: dict[str, dict[str, Any]] = {}
    reading: dict[str, dict[str, Any]] = {}
    peer_per_s = 0.0
    steady_report: dict[str, Any] = {}
    databases = [settings.postgres_db, steady.postgres_db, f"bench_projections_{token}_peer"]
    try:
        for database in databases:
            asyncio.run(create_peer_database(base, database))
        redis_client.client(settings).flushdb()
        have = sum(event_count(settings).values()) if args.prefix else 0
        if have >= events_min:
            print(f"projections: reusing the log on {prefix!r} ({have:,} offsets)")
        else:
            print(f"projections: writing a log of >= {events_min:,} events on {prefix!r}")
            write_market_log(settings, events_min, accounts, seed=1)
        for name in names:
            figures = rebuilds[name] = rebuild_one(settings, name)
            print(f"  {name}: {figures['events']:,} events in {figures['seconds']} s = "
                  f"{figures['events_per_s']:,} events/s")  # fmt: skip
            if figures["dead_letters"]:
                problems.append(f"{name}: {figures['dead_letters']} dead letters")
            if args.row_twins and name in ROW_TWINS:
                twin = rebuilds[f"{name}_row"] = rebuild_twin(settings, name)
                print(f"  {name} row path (the twin): {twin['events']:,} events in "
                      f"{twin['seconds']} s = {twin['events_per_s']:,} events/s")  # fmt: skip
        if "clickhouse" in names:
            reading = read_speed(settings, projector_class("clickhouse"), codec)
            for path, found in reading.items():
                print(f"  read + decode, {path}: {found['records']:,} records, "
                      f"{found['records_per_s']:,}/s, {found['cpu_us_per_record']} us CPU each")  # fmt: skip
        events = account_events(settings, codec)
        if "postgres" in names and postgres_balances(settings) != fold_balances(events):
            problems.append("postgres balances differ from the domain's fold")
        subset = events[:peer_events]
        peer_per_s, peer_balances = run_peer(base, databases[2], subset)
        expected = fold_balances(subset)
        if {k: v for k, v in peer_balances.items() if k[0] > 0 and v != (0, 0)} != expected:
            problems.append("peer balances differ from the domain's fold")
        print(f"  peer eventsourcing ProjectionRunner + PostgreSQL: {peer_per_s:,.0f} events/s "
              f"({len(subset):,} account events)")  # fmt: skip
        redis_client.client(steady).flushdb()
        print(
            f"projections: steady state, {rate:,} orders/s for {steady_s} s, every stage and "
            "projector a process"
        )
        steady_report = steady_state(steady, names, rate, steady_s, accounts, work_dir)
        for name in names:
            entry = steady_report.get(name)
            if entry is None:
                problems.append(f"{name}: no lag report in the steady state")
            else:
                print(f"  {name}: lag p50 {entry['lag_p50_ms']} ms, p99 {entry['lag_p99_ms']} ms "
                      f"({entry['records_timed']:,} records)")  # fmt: skip
        floor = steady_report.get(FLOOR)
        if floor is None or not floor["records_timed"]:
            problems.append("the log reader beside the projectors reported no lag")
        else:
            print(f"  the log alone (a reader that applies nothing): lag p50 "
                  f"{floor['lag_p50_ms']} ms, p99 {floor['lag_p99_ms']} ms "
                  f"({floor['records_timed']:,} records)")  # fmt: skip
    finally:
        for database in databases:
            asyncio.run(postgres.drop_database(base, database))
        redis_client.client(settings).flushdb()
        delete_prefixed_topics(steady)
        if not args.keep and not args.prefix:
            delete_prefixed_topics(settings)
        shutil.rmtree(work_dir, ignore_errors=True)
    headline: dict[str, Any] = {}
    for name, entry in rebuilds.items():
        headline[f"{name}_events_per_s"] = entry["events_per_s"]
        headline[f"{name}_events"] = entry["events"]
    for path, found in reading.items():
        headline[f"read_decode_{path}_records_per_s"] = found["records_per_s"]
        headline[f"read_decode_{path}_cpu_us_per_record"] = found["cpu_us_per_record"]
    lags = [steady_report[n]["lag_p99_ms"] for n in names if steady_report.get(n)]
    headline["lag_p99_ms"] = max(lags) if lags else None
    headline["lag_p99_ms_by_projector"] = {
        n: steady_report[n]["lag_p99_ms"] for n in names if steady_report.get(n)
    }
    if steady_report.get(FLOOR):
        headline["log_lag_p50_ms"] = steady_report[FLOOR]["lag_p50_ms"]
        headline["log_lag_p99_ms"] = steady_report[FLOOR]["lag_p99_ms"]
    ratios = {n: rebuilds[n]["events_per_s"] / peer_per_s for n in rebuilds if n in TARGETS}
    result = {
        "bench": "projections",
        "ok": not problems,
        "figures": headline,
        "targets": {
            **{f"{n}_events_per_s": t for n, t in TARGETS.items()},
            "ratio_min": TARGET_RATIO,
            "lag_p99_ms": TARGET_LAG_P99_MS,
        },
        "peer": {
            "name": "eventsourcing 9.5 ProjectionRunner + PostgresTrackingRecorder",
            "events_per_s": round(peer_per_s),
            "events": min(peer_events, len(events)) if rebuilds else 0,
        },
        "ratio_min": round(min(ratios.values()), 1) if ratios else None,
        "ratios": {n: round(r, 1) for n, r in ratios.items()},
        "cores": os.cpu_count() or 1,
        "notes": (
            f"log of {sum(e['events'] for e in rebuilds.values()) and max(e['events'] for e in rebuilds.values()):,} "
            f"records read by the widest read model; rebuilds in this process into fresh stores; "
            f"peer on the first {peer_events:,} account events (database synchronous_commit=off, "
            f"as ours); steady state {rate}/s for {steady_s}s; problems: {problems[:3]}"
        ),
    }
    print(json.dumps(result))
    return 0 if not problems else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
