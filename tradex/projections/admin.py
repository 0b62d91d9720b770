"""``tradex projections status | rebuild | verify``: operate the read models.

    tradex projections status [NAME...] [--json]   # versions, positions and lag
    tradex projections rebuild NAME [--to-position TOPIC:PARTITION:OFFSET ...]
    tradex projections verify NAME                 # the live version equals a rebuild

**rebuild** fills a fresh version beside the live one from the start of the log (or
resumes the version an interrupted rebuild was filling) up to the end of the log as it
stood when the rebuild began, with a progress line (events/s, ETA), then makes it live in
one atomic step and drops the old version. A running ``tradex run projector`` notices the
switch and carries on with the new version. With ``--to-position`` the version stops at
the given positions (every other partition at the end) and is *not* made live: a copy of
the read model as of that point, left beside the live one.

**verify** reads the live version consistently at its positions, rebuilds a scratch
version to exactly those positions, compares a digest per table, names the rows that
differ, and drops the scratch version. Exit 0 when equal, 1 when not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from tradex.infra import metrics_targets
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, LogSource, Place
from tradex.projections.catalog import PROJECTORS, projector_class
from tradex.projections.projector import (
    BATCH_RECORDS_MAX,
    COLUMNAR_BATCH_RECORDS_MAX,
    VERSION_MAX,
    Projector,
    ProjectorBusy,
)
from tradex.projections.runner import (
    DeadLetters,
    ProjectorRun,
    RunStats,
    run_to_end,
)
from tradex.schemas.codec import Codec
from tradex.schemas.remote import codec_from_settings

VERIFY_VERSION = VERSION_MAX  # the scratch version verify builds and drops
AS_OF_VERSION = VERSION_MAX - 1  # where `rebuild --to-position` leaves its copy
ROWS_SHOWN_MAX = 10  # differing rows named per table
progress_interval_s = 1.0


# -- status ------------------------------------------------------------------------------


def lag_seconds(source: LogSource, place: Place, position: int, end: int, now_ms: int) -> float:
    """How old the oldest record not yet applied is (0 when there is none)."""
    if position >= end:
        return 0.0
    for record in source.read(place[0], place[1], position, end):
        return max(0.0, (now_ms - record.timestamp_ms) / 1000)
    return 0.0  # only transaction markers were left


def metrics_urls(settings: Settings, name: str) -> list[str]:
    """The /metrics of the running projector processes of this stack that run ``name``."""
    return [
        target.url
        for target in metrics_targets.targets(settings)
        if target.service == "projector"
        and target.prefix == settings.topic_prefix
        and name in target.instance.split("-")
    ]


def status(settings: Settings, names: list[str]) -> list[dict[str, Any]]:
    source = KafkaLog(settings, bulk=False)
    report = []
    try:
        now_ms = time.time_ns() // 1_000_000
        for name in names:
            cls = projector_class(name)
            versions = cls.versions(settings)
            entry: dict[str, Any] = {
                "name": name, "live": versions.live, "building": versions.building,
                "partitions": [], "metrics": metrics_urls(settings, name),
            }  # fmt: skip
            if versions.live is not None:
                stored = cls(settings, versions.live).positions()
                for topic in cls.topics:
                    for partition in range(source.partitions(topic)):
                        place = (topic, partition)
                        position = stored.get(place, 0)
                        end = source.watermarks(topic, partition)[1]
                        entry["partitions"].append({
                            "topic": topic, "partition": partition, "position": position,
                            "end": end, "lag_records": max(0, end - position),
                            "lag_s": round(lag_seconds(source, place, position, end, now_ms), 3),
                        })  # fmt: skip
            report.append(entry)
    finally:
        source.close()
    return report


def print_status(report: list[dict[str, Any]]) -> None:
    for entry in report:
        building = f", rebuilding v{entry['building']}" if entry["building"] else ""
        live = f"v{entry['live']}" if entry["live"] else "never run"
        lag = sum(p["lag_records"] for p in entry["partitions"])
        lag_s = max((p["lag_s"] for p in entry["partitions"]), default=0.0)
        print(f"{entry['name']}: {live}{building}; lag {lag} records, {lag_s:.3f} s")
        for url in entry["metrics"]:
            print(f"  metrics: {url}")
        for p in entry["partitions"]:
            print(
                f"  {p['topic']}[{p['partition']}]: at {p['position']} of {p['end']} "
                f"(lag {p['lag_records']} records, {p['lag_s']:.3f} s)"
            )


# -- rebuild -----------------------------------------------------------------------------


class Progress:
    """One line on stderr, redrawn at most every ``progress_interval_s``: events/s, ETA."""

    def __init__(self, label: str, total_records: int, stream: Any = sys.stderr) -> None:
        self.label = label
        self.total = max(total_records, 1)
        self.stream = stream
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, run: ProjectorRun, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < progress_interval_s:
            return
        self.shown = now
        assert run.until is not None
        left = run.lag(run.until)
        done = max(self.total - left, 0)
        elapsed = max(now - self.started, 1e-9)
        stats = run.stats
        records = stats.events + stats.skipped + stats.dead_letters
        rate = records / elapsed
        eta = left / (done / elapsed) if done else float("inf")
        width = 30
        filled = int(width * done / self.total)
        eta_text = f"{eta:,.0f} s" if eta != float("inf") else "?"
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {100 * done / self.total:5.1f}% "
            f"{records:,} events, {rate:,.0f} events/s, ETA {eta_text}   "
        )
        if final:
            self.stream.write("\n")
        self.stream.flush()


def build_version(
    projector: Projector,
    settings: Settings,
    codec: Codec,
    until: Mapping[Place, int],
    progress: Callable[[ProjectorRun], None] | None = None,
    batch_records: int | None = None,
) -> RunStats:
    """Fill ``projector``'s version from its positions to ``until`` as a bulk load, then
    finish it (deferred indexes) and close it."""
    source = KafkaLog(settings)
    projector.bulk_load = True
    run = ProjectorRun(
        projector, source, codec, DeadLetters(settings, codec, f"projector/{projector.name}"),
        until=until, batch_records=batch_records,
    )  # fmt: skip
    run.start()
    try:
        stats = run_to_end(run, progress)
        projector.finish()
    finally:
        run.close()
        source.close()
    return stats


def log_ends(settings: Settings, topics: tuple[str, ...]) -> dict[Place, int]:
    source = KafkaLog(settings, bulk=False)
    try:
        return source.ends(list(topics))
    finally:
        source.close()


def rebuild(
    settings: Settings,
    name: str,
    to_position: Mapping[Place, int] | None = None,
    *,
    show_progress: bool = True,
    batch_records: int | None = None,
) -> tuple[Projector, RunStats]:
    """Rebuild ``name`` (see the module doc); return the built version and its stats."""
    cls = projector_class(name)
    codec = codec_from_settings(settings)
    versions = cls.versions(settings)
    until = log_ends(settings, cls.topics)
    if to_position:
        unknown = set(to_position) - set(until)
        if unknown:
            raise ValueError(f"{name} does not read {sorted(unknown)}")
        until.update(to_position)
    if to_position:
        version = AS_OF_VERSION
        cls(settings, version).drop()  # an earlier copy, or a run interrupted on the way
    elif versions.building is not None:
        version = versions.building  # an interrupted rebuild: resume it
    else:
        taken = [v for v in (versions.live, versions.building) if v is not None]
        version = max(taken, default=0) + 1
    projector = cls(settings, version)
    if not to_position:
        projector.mark_building()
    stored = projector.positions()
    ahead = {p for p, at in stored.items() if at > until.get(p, at)}
    if ahead:
        raise ValueError(f"v{version} is already past the requested positions at {sorted(ahead)}")
    left = sum(max(0, end - stored.get(place, 0)) for place, end in until.items())
    progress = Progress(f"{name} v{version}", left) if show_progress else None
    stats = build_version(projector, settings, codec, until, progress, batch_records)
    if progress is not None:
        progress.stream.write("\n")
    if not to_position:
        projector.make_live()
        if versions.live is not None and versions.live != version:
            cls(settings, versions.live).drop()
    return projector, stats


# -- verify ------------------------------------------------------------------------------


def verify(settings: Settings, name: str, *, show_progress: bool = True) -> list[str]:
    """The differences between the live version and a rebuild at its positions (empty:
    equal)."""
    cls = projector_class(name)
    live_version = cls.versions(settings).live
    if live_version is None:
        return [f"{name} has no live version (it never ran)"]
    codec = codec_from_settings(settings)
    problems: list[str] = []
    scratch = cls(settings, VERIFY_VERSION)
    scratch.drop()
    with cls(settings, live_version).frozen() as live:
        ends = log_ends(settings, cls.topics)
        until = {place: live.positions.get(place, 0) for place in ends}
        left = sum(until.values())
        progress = Progress(f"{name} verify", left) if show_progress else None
        build_version(scratch, settings, codec, until, progress)
        if progress is not None:
            progress.stream.write("\n")
        with cls(settings, VERIFY_VERSION).frozen() as fresh:
            rebuilt = {p: o for p, o in fresh.positions.items() if o}
            if rebuilt != {p: o for p, o in until.items() if o}:
                problems.append(f"positions differ: live {until}, rebuilt {rebuilt}")
            theirs, ours = live.digests(), fresh.digests()
            for table in sorted(set(theirs) | set(ours)):
                if theirs.get(table) == ours.get(table):
                    continue
                live_rows, fresh_rows = set(live.rows(table)), set(fresh.rows(table))
                only_live = sorted(live_rows - fresh_rows, key=repr)[:ROWS_SHOWN_MAX]
                only_fresh = sorted(fresh_rows - live_rows, key=repr)[:ROWS_SHOWN_MAX]
                problems.append(
                    f"{table}: live {theirs.get(table)} vs rebuilt {ours.get(table)} "
                    f"(rows, digest); only live: {only_live}; only rebuilt: {only_fresh}"
                )
    scratch.drop()
    return problems


# -- the command -------------------------------------------------------------------------


def parse_position(text: str) -> tuple[Place, int]:
    topic, _, rest = text.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    try:
        place, offset = (topic, int(partition)), int(rest)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not TOPIC:PARTITION:OFFSET (e.g. account-events:0:1500)"
        ) from None
    if not topic or place[1] < 0 or offset < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not TOPIC:PARTITION:OFFSET")
    return place, offset


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tradex projections", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser("status", help="versions, positions and lag of each read model")
    show.add_argument("names", nargs="*", metavar="NAME")
    show.add_argument("--json", action="store_true", help="one JSON document")
    again = verbs.add_parser("rebuild", help="replay the log into a fresh version, switch")
    again.add_argument("name", metavar="NAME")
    again.add_argument(
        "--to-position", type=parse_position, action="append", default=[],
        metavar="TOPIC:PARTITION:OFFSET", help="stop there (not made live); repeatable",
    )  # fmt: skip
    again.add_argument(
        "--batch-records", type=positive_int, default=None,
        help=f"records per sink transaction, at most (default: the read model's; at most "
        f"{BATCH_RECORDS_MAX:,} for a row projector, {COLUMNAR_BATCH_RECORDS_MAX:,} for a "
        "columnar one)",
    )  # fmt: skip
    check = verbs.add_parser("verify", help="the live version equals a rebuild")
    check.add_argument("name", metavar="NAME")
    args = parser.parse_args(argv)
    if args.verb == "rebuild" and (args.batch_records or 0) > COLUMNAR_BATCH_RECORDS_MAX:
        parser.error(f"--batch-records must be <= {COLUMNAR_BATCH_RECORDS_MAX}")
    names = args.names if args.verb == "status" else [args.name]
    unknown = [n for n in names if n not in PROJECTORS]
    if unknown:
        parser.error(
            f"unknown projector {', '.join(unknown)}; known: {', '.join(sorted(PROJECTORS))}"
        )
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    settings = settings_module.load()
    if args.verb == "status":
        report = status(settings, args.names or sorted(PROJECTORS))
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_status(report)
        return 0
    if args.verb == "rebuild":
        positions = dict(args.to_position)
        try:
            projector, stats = rebuild(
                settings, args.name, positions or None, batch_records=args.batch_records
            )
        except (ValueError, ProjectorBusy) as exc:
            print(f"tradex projections rebuild: {exc}", file=sys.stderr)
            return 2
        where = "made live" if not positions else "left beside the live version (not live)"
        print(f"{args.name} v{projector.version}: {stats.events:,} events, "
              f"{stats.dead_letters} dead letters; {where}")  # fmt: skip
        return 0
    try:
        problems = verify(settings, args.name)
    except ProjectorBusy as exc:
        print(f"tradex projections verify: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    print(f"{args.name}: {'live version equals a rebuild' if not problems else 'DIFFERS'}")
    return 1 if problems else 0
