"""``tradex run projector NAME [NAME...]``: keep read models current with the log.

    tradex run projector postgres redis      # runs until SIGINT/SIGTERM
    tradex run projector postgres --exit-when-idle 5
    kill -USR1 PID                           # count lag afresh (after a warm-up)

Each named projector runs on its own thread: it opens the live version of its read model
(version 1, made live, on the very first start), resumes from the positions stored in
its sink and follows the log. One process writes a version at a time; a second one waits
for the first to go. When a rebuild switches readers to a new version, the projector
reopens at that version and carries on from its positions.

A projector on embedded ClickHouse (chdb) holds its folder, so this process also answers
read-only queries on it over HTTP (:mod:`tradex.projections.clickhouse_http`), on
``--http-port`` (default: any free port, written into the folder for clients to find).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.kafka import PARKED_FETCH_WAIT_MS
from tradex.infra.reachable import require_stack
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.observability import logs, metrics_server, tracing
from tradex.projections.catalog import PROJECTORS, STORES, projector_class
from tradex.projections.projector import (
    BATCH_RECORDS_MAX,
    COLUMNAR_BATCH_RECORDS_MAX,
    Projector,
    ProjectorBusy,
    SinkReset,
    VersionSwitched,
)
from tradex.projections.runner import DeadLetters, LagHistogram, ProjectorRun, RunStats
from tradex.schemas.codec import Codec
from tradex.schemas.remote import codec_from_settings

if TYPE_CHECKING:
    from tradex.projections.clickhouse_http import QueryServer

log = logging.getLogger("tradex.projector")

busy_retry_s = 1.0  # a version locked by another process: try again after this long
idle_wait_s = 0.05


def open_live(cls: type[Projector], settings: Settings) -> Projector:
    """The live version of ``cls``'s read model, as its live writer (not yet opened)."""
    versions = cls.versions(settings)
    projector = cls(settings, versions.live or 1)
    projector.live_writer = True
    return projector


@dataclass
class Follower:
    """One projector kept current on its own thread."""

    name: str
    settings: Settings
    codec: Codec
    stop: threading.Event
    exit_when_idle_s: float | None = None
    batch_records: int | None = None  # None: the projector's default
    error: BaseException | None = None
    stats: RunStats | None = None
    # Set (by SIGUSR1): count lag afresh from the next batch (a benchmark's warm-up over).
    reset_lag: threading.Event = field(default_factory=threading.Event)

    def _start(self) -> ProjectorRun:
        cls = projector_class(self.name)
        while True:
            projector = open_live(cls, self.settings)
            run = ProjectorRun(
                projector,
                # It acts on records, not on the log's end: its idle fetch is parked (each
                # idle 10 ms wait was a broker request; ~100/s per projector at rest).
                KafkaLog(self.settings, fetch_wait_ms=PARKED_FETCH_WAIT_MS),
                self.codec,
                DeadLetters(self.settings, self.codec, f"projector/{self.name}"),
                batch_records=self.batch_records,
                track_lag=True,
            )
            try:
                run.start()
            except ProjectorBusy as exc:
                projector.close()
                log.info("%s: %s; retrying", self.name, exc)
                if self.stop.wait(busy_retry_s):
                    raise
                continue
            if cls.versions(self.settings).live is None:
                projector.make_live()  # the very first version: readers see it from now on
            log.info("%s: following the log as v%d", self.name, projector.version)
            return run

    def __call__(self) -> None:
        try:
            run = self._start()
            idle_since = time.monotonic()
            interval_s = run.projector.batch_interval_s
            while not self.stop.is_set():
                if self.reset_lag.is_set():
                    self.reset_lag.clear()
                    run.stats.lag = LagHistogram()
                began = time.monotonic()
                try:
                    moved = run.step(idle_wait_s)
                except (VersionSwitched, SinkReset) as exc:
                    log.info("%s: %s; reopening", self.name, exc)
                    run.close()
                    run = self._start()
                    continue
                if moved:
                    idle_since = time.monotonic()
                    rest_s = began + interval_s - idle_since
                    if rest_s > 0 and self.stop.wait(rest_s):
                        break
                elif (
                    self.exit_when_idle_s is not None
                    and time.monotonic() - idle_since > self.exit_when_idle_s
                ):
                    break
            self.stats = run.stats
            run.close()
        except ProjectorBusy:
            pass  # stopped while waiting for the lock
        except BaseException as exc:
            self.error = exc
            log.exception("%s: stopped by an error", self.name)
            self.stop.set()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tradex run projector", description=__doc__.split("\n")[0]
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help=", ".join(sorted(PROJECTORS)))
    parser.add_argument(
        "--exit-when-idle", type=float, default=None, metavar="S",
        help="exit after S seconds without new records (catch-up runs, tests)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-records", type=positive_int, default=None,
        help=f"records per sink transaction, at most (default: the read model's; at most "
        f"{BATCH_RECORDS_MAX:,} for a row projector, {COLUMNAR_BATCH_RECORDS_MAX:,} for a "
        "columnar one)",
    )  # fmt: skip
    parser.add_argument(
        "--http-port", type=int, default=0, metavar="PORT",
        help="chdb read models: answer queries on 127.0.0.1:PORT (default 0: any free port)",
    )  # fmt: skip
    parser.add_argument(
        "--no-http", action="store_true", help="chdb read models: answer no queries"
    )  # fmt: skip
    parser.add_argument(
        "--stats-json", default=None, metavar="FILE",
        help="on exit, write each projector's counts and lag percentiles here",
    )  # fmt: skip
    metrics_server.add_argument(parser)
    args = parser.parse_args(argv)
    args.metrics_port = metrics_server.port_of(parser, args)
    if (args.batch_records or 0) > COLUMNAR_BATCH_RECORDS_MAX:
        parser.error(f"--batch-records must be <= {COLUMNAR_BATCH_RECORDS_MAX}")
    unknown = [name for name in args.names if name not in PROJECTORS]
    if unknown:
        parser.error(
            f"unknown projector {', '.join(unknown)}; known: {', '.join(sorted(PROJECTORS))}"
        )
    if len(set(args.names)) != len(args.names):
        parser.error("a projector is named twice")
    if args.exit_when_idle is not None and args.exit_when_idle <= 0:
        parser.error("--exit-when-idle must be > 0")
    if not 0 <= args.http_port < 65536:
        parser.error("--http-port must be 0..65535")
    return args


def metrics_instance(names: list[str]) -> str:
    """The metrics target's instance name of a process running these projectors."""
    return "-".join(sorted(names))


def query_server(settings: Settings, names: list[str], port: int) -> QueryServer | None:
    """The query endpoint of the chdb folder, when a projector here writes into one."""
    if settings.clickhouse_url:
        return None
    from tradex.projections.clickhouse_store import ClickHouseProjector

    if not any(issubclass(projector_class(n), ClickHouseProjector) for n in names):
        return None
    from tradex.projections.clickhouse_http import QueryServer

    return QueryServer(settings, port)


def main(argv: list[str]) -> int:
    args = parse(argv)
    logs.setup("projector-" + "-".join(args.names))
    tracing.configure("tradex-projector")
    settings = settings_module.load()
    require_stack(settings, ("kafka", *sorted({STORES[n] for n in args.names})))
    codec = codec_from_settings(settings)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    followers = [
        Follower(n, settings, codec, stop, args.exit_when_idle, args.batch_records)
        for n in args.names
    ]

    def on_reset(_signum: int, _frame: FrameType | None) -> None:
        for follower in followers:
            follower.reset_lag.set()

    signal.signal(signal.SIGUSR1, on_reset)
    metrics_server.serve(settings, "projector", metrics_instance(args.names), args.metrics_port)
    server = None if args.no_http else query_server(settings, args.names, args.http_port)
    if server is not None:
        from tradex.projections.clickhouse_http import held_elsewhere

        while (holder := held_elsewhere(server.folder)) is not None:
            log.info("process %d holds the chdb folder %s; waiting", holder, server.folder)
            if stop.wait(busy_retry_s):
                return 0
        server.start()
        print(f"answering queries on {server.url}", flush=True)
    threads = [threading.Thread(target=f, name=f"projector-{f.name}") for f in followers]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    finally:
        if server is not None:
            server.stop()
    report = {}
    for follower in followers:
        stats = follower.stats
        if stats is not None:
            lag = stats.lag
            report[follower.name] = {
                "batches": stats.batches, "events": stats.events,
                "dead_letters": stats.dead_letters, "records_timed": lag.total,
                "lag_p50_ms": lag.percentile(0.5), "lag_p99_ms": lag.percentile(0.99),
                "lag_max_ms": lag.percentile(1.0),
            }  # fmt: skip
            print(
                f"projector/{follower.name}: batches={stats.batches} events={stats.events} "
                f"dead_letters={stats.dead_letters} lag p50={lag.percentile(0.5)} ms "
                f"p99={lag.percentile(0.99)} ms",
                flush=True,
            )
    if args.stats_json:
        Path(args.stats_json).write_text(json.dumps(report, indent=2))
    failed = [f for f in followers if f.error is not None]
    for follower in failed:
        print(f"projector/{follower.name}: {follower.error!r}", file=sys.stderr)
    return 1 if failed else 0
