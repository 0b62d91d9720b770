"""``tradex bench archive``: signed checkpoints, export and offline reads of a market's log.

    tradex bench archive                  # a log of >= 300,000 events
    tradex bench archive --quick          # smoke run

On a market log written by the real stages (:mod:`tradex.bench.exchange_log`, a throwaway
topic prefix and key), one command measures: a signed checkpoint of every chained stream
(Merkle roots), ``tradex export`` with and without Parquet, reading every record back
from the archive (``ArchiveLog.read_columns``) against reading it from Kafka
(``KafkaLog.read_columns``, librdkafka in C: the peer), alternated, medians, and
``check_checkpoints`` from both. Figures are records per second of wall time, and of CPU
time (this machine is shared: CPU is the steadier figure). ``ok`` is false when the
archive does not hold exactly the log's records (count and SHA-256 of every value, in
order) or a check finds a violation. The last line is the JSON summary
(/work/shared/bench/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradex.audit.checkpointer import write_one
from tradex.audit.checkpoints import check_checkpoints, load_or_create_key, public_bytes
from tradex.audit.export import DEFAULT_TOPICS, existing_topics, export
from tradex.audit.violations import Violation
from tradex.bench.exchange_log import write_market_log
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.kafka import delete_prefixed_topics
from tradex.infra.settings import Settings
from tradex.log.archive import ArchiveLog
from tradex.log.source import KafkaLog, LogSource

REPEATS = 3


def timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall s, CPU s of this process)."""
    wall, cpu = time.monotonic(), time.process_time()
    result = work()
    return result, time.monotonic() - wall, time.process_time() - cpu


def read_all(source: LogSource, topics: list[str]) -> tuple[int, str]:
    """Records read and a SHA-256 over every value, partition by partition, in order."""
    starts = {(t, p): 0 for t in topics for p in range(source.partitions(t))}
    digests = {place: hashlib.sha256() for place in starts}
    count = 0
    for batch in source.read_columns(starts):
        count += len(batch)
        for i in range(len(batch)):
            digests[batch.place(i)].update(batch.value(i) or b"")
    total = hashlib.sha256()
    for place in sorted(digests):
        total.update(digests[place].digest())
    return count, total.hexdigest()


def read_count(source: LogSource, topics: list[str]) -> int:
    starts = {(t, p): 0 for t in topics for p in range(source.partitions(t))}
    return sum(len(batch) for batch in source.read_columns(starts))


def run(
    settings: Settings, events_min: int, accounts: int, say: Callable[[str], None]
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    notes: list[str] = []
    ok = True
    say(f"writing a market log of >= {events_min:,} events ...")
    write_market_log(settings, events_min, accounts, seed=1, say=say)
    signed, wall, cpu = timed(lambda: write_one(settings))
    chained = sum(s.records for s in signed.checkpoint.streams)
    figures["checkpoint_records"] = chained
    figures["checkpoint_records_per_s"] = round(chained / wall)
    figures["checkpoint_records_per_cpu_s"] = round(chained / cpu)
    say(f"checkpoint: {chained:,} chained records, {wall:.1f} s ({cpu:.1f} s CPU)")
    home = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        lean, full = home / "avro-only", home / "full"
        stats, wall, cpu = timed(lambda: export(settings, lean, show_progress=False, parquet=False))
        figures["export_avro_only_records_per_s"] = round(stats.records / wall)
        figures["export_avro_only_records_per_cpu_s"] = round(stats.records / cpu)
        say(f"export --no-parquet: {stats.records:,} records, {wall:.1f} s ({cpu:.1f} s CPU)")
        stats, wall, cpu = timed(lambda: export(settings, full, show_progress=False))
        figures["export_records_per_s"] = round(stats.records / wall)
        figures["export_records_per_cpu_s"] = round(stats.records / cpu)
        figures["archive_bytes"] = sum(f.stat().st_size for f in full.rglob("*") if f.is_file())
        say(f"export: {stats.records:,} records, {wall:.1f} s ({cpu:.1f} s CPU)")
        archive = ArchiveLog(lean)
        with KafkaLog(settings) as kafka:
            topics = existing_topics(kafka, DEFAULT_TOPICS)
            theirs, ours = read_all(kafka, topics), read_all(archive, topics)
            if theirs != ours:
                ok = False
                notes.append(f"archive {ours} differs from Kafka {theirs}")
            figures["records"] = ours[0]
            rates: dict[str, list[float]] = {"archive": [], "kafka": []}
            for _ in range(REPEATS):  # alternated: the machine is shared
                for name, source in (("archive", archive), ("kafka", kafka)):
                    count, wall, _cpu = timed(lambda s=source: read_count(s, topics))  # type: ignore[misc]
                    rates[name].append(count / wall)
            key = public_bytes(load_or_create_key(settings))
            for name, source in (("kafka", kafka), ("archive", archive)):
                found: list[Violation] = []
                _none, wall, cpu = timed(lambda s=source, f=found: check_checkpoints(s, key, f))  # type: ignore[misc]
                figures[f"check_{name}_records_per_s"] = round(chained / wall)
                figures[f"check_{name}_records_per_cpu_s"] = round(chained / cpu)
                if found:
                    ok = False
                    notes.append(f"check from {name}: {found[:3]}")
        figures["archive_read_records_per_s"] = round(statistics.median(rates["archive"]))
        kafka_rate = statistics.median(rates["kafka"])
        say(f"read: archive {figures['archive_read_records_per_s']:,}/s, Kafka {kafka_rate:,.0f}/s")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    load = os.getloadavg()[0]
    notes.append(f"load average {load:.1f} on {os.cpu_count()} cores")
    return {
        "bench": "archive", "ok": ok, "figures": figures,
        "peer": {"name": "KafkaLog.read_columns (librdkafka, C)", "read_records_per_s": round(kafka_rate)},
        "ratio_min": round(figures["archive_read_records_per_s"] / kafka_rate, 2),
        "cores": os.cpu_count(), "notes": "; ".join(notes),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex bench archive", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument(
        "--events", type=positive_int, default=None, help="events in the log, at least"
    )
    parser.add_argument("--accounts", type=positive_int, default=None)
    args = parser.parse_args(argv)
    events_min = args.events or (20_000 if args.quick else 300_000)
    accounts = args.accounts or (200 if args.quick else 5_000)
    base = settings_module.load()
    prefix = f"benchar{uuid.uuid4().hex[:8]}-"
    home = Path(tempfile.mkdtemp(prefix="bench-archive-key-"))
    settings = dataclasses.replace(base, topic_prefix=prefix, stack_dir=home)
    try:
        summary = run(settings, events_min, accounts, lambda text: print(text, flush=True))
    finally:
        delete_prefixed_topics(settings)
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1
