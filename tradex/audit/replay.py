"""``tradex replay DIR``: rebuild read models from an archive, with no Kafka running.

    tradex replay /archive                                  # ClickHouse (chdb) in /archive/replay
    tradex replay /archive --projectors clickhouse postgres --out /tmp/models

Every read model is rebuilt the way ``tradex projections rebuild`` does it — a fresh
version filled from the start of the log, then made live — but reading an
:class:`~tradex.log.archive.ArchiveLog` instead of Kafka. ClickHouse is embedded (chdb)
under ``--out`` (default ``DIR/replay``); the PostgreSQL, Redis and Timescale read models
go to the services the settings name (no Kafka needed either). Records a read model
cannot decode are written to ``--out``/dead-letters.jsonl, as the live projector would
dead-letter them. A truncated, foreign or half-written archive stops the replay with an
error naming the file and the place; the version being built is then left unfinished.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from tradex.infra.settings import Settings
from tradex.log.archive import ArchiveError, ArchiveLog
from tradex.log.records import LogRecord, Place
from tradex.projections.admin import Progress
from tradex.projections.catalog import PROJECTORS, projector_class
from tradex.projections.projector import Projector
from tradex.projections.runner import DeadLetters, ProjectorRun, RunStats, run_to_end
from tradex.schemas.codec import Codec
from tradex.schemas.registry import Registry

DEFAULT_PROJECTORS = ("clickhouse",)
DEAD_LETTERS_NAME = "dead-letters.jsonl"


class FileDeadLetters(DeadLetters):
    """Dead letters of a replay, to a JSON-lines file (there is no Kafka to write them to)."""

    def __init__(self, settings: Settings, codec: Codec, path: Path) -> None:
        super().__init__(settings, codec, "replay")
        self.path = path
        self.count = 0

    def write(self, records: list[tuple[LogRecord, str, str]]) -> None:
        with self.path.open("a") as out:
            for record, reason, error in records:
                self.count += 1
                out.write(json.dumps({
                    "topic": record.topic, "partition": record.partition, "offset": record.offset,
                    "reason": reason, "error": error,
                }) + "\n")  # fmt: skip

    def close(self) -> None:
        pass


def archive_codec(archive: ArchiveLog) -> Codec:
    """A codec for the archive's wire schema ids (those of the registry it was written
    with), from the checked-in registry file: no registry service."""
    registry = Registry.load()
    wire_ids = {i: i for i in registry.by_id}
    for wire, entry in archive.manifest.get("schemas", {}).items():
        local = int(entry["local_id"])
        if local not in registry.by_id:
            raise ArchiveError(
                f"{archive.directory}: schema {entry} is unknown to this TradeX version"
            )
        wire_ids[local] = int(wire)
    return Codec(registry, wire_ids)


def replay_settings(settings: Settings, out: Path) -> Settings:
    """``settings`` with ClickHouse embedded under ``out``."""
    return dataclasses.replace(settings, clickhouse_url="", clickhouse_path=out / "clickhouse")


def replay_one(
    archive: ArchiveLog, settings: Settings, codec: Codec, name: str, out: Path, show_progress: bool
) -> tuple[Projector, RunStats]:
    """Rebuild read model ``name`` from the whole archive into a new version, made live."""
    cls = projector_class(name)
    missing = [t for t in cls.topics if t not in archive.topics()]
    if missing:
        raise ArchiveError(f"{archive.directory}: the {name} read model needs {', '.join(missing)}, "
                           "which the archive does not hold (export them with --topics)")  # fmt: skip
    until: dict[Place, int] = {
        (topic, p): archive.watermarks(topic, p)[1] for topic in cls.topics for p in range(archive.partitions(topic))
    }  # fmt: skip
    versions = cls.versions(settings)
    taken = [v for v in (versions.live, versions.building) if v is not None]
    version = max(taken, default=0) + 1
    projector = cls(settings, version)
    projector.mark_building()
    projector.bulk_load = True
    dead_letters = FileDeadLetters(settings, codec, out / DEAD_LETTERS_NAME)
    progress = Progress(f"replay {name} v{version}", sum(until.values())) if show_progress else None
    run = ProjectorRun(projector, archive, codec, dead_letters, until=until)
    run.start()
    try:
        stats = run_to_end(run, progress)
        projector.finish()
    finally:
        run.close()
    if progress is not None:
        progress(run, final=True)
    projector.make_live()
    if versions.live is not None and versions.live != version:
        cls(settings, versions.live).drop()
    return cls(settings, version), stats


def replay(
    directory: Path,
    settings: Settings,
    names: tuple[str, ...] = DEFAULT_PROJECTORS,
    out: Path | None = None,
    show_progress: bool = True,
) -> dict[str, RunStats]:
    archive = ArchiveLog(directory)
    out = out if out is not None else directory / "replay"
    out.mkdir(parents=True, exist_ok=True)
    settings = replay_settings(settings, out)
    codec = archive_codec(archive)
    return {
        name: replay_one(archive, settings, codec, name, out, show_progress)[1] for name in names
    }


def main(argv: list[str]) -> int:
    from tradex.infra import settings as settings_module

    parser = argparse.ArgumentParser(prog="tradex replay", description=__doc__.split("\n")[0])
    parser.add_argument("archive", metavar="DIR")
    parser.add_argument("--projectors", nargs="+", default=list(DEFAULT_PROJECTORS), metavar="NAME",
                        help=f"read models to rebuild (default: clickhouse; known: {', '.join(sorted(PROJECTORS))})")  # fmt: skip
    parser.add_argument(
        "--out", metavar="DIR", help="where chdb and dead letters go (default: DIR/replay)"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    unknown = [n for n in args.projectors if n not in PROJECTORS]
    if unknown:
        parser.error(
            f"unknown read model {', '.join(unknown)}; known: {', '.join(sorted(PROJECTORS))}"
        )
    started = time.monotonic()
    try:
        results = replay(
            Path(args.archive), settings_module.load(), tuple(args.projectors),
            Path(args.out) if args.out else None, not args.quiet,
        )  # fmt: skip
    except ArchiveError as exc:
        print(f"tradex replay: {exc}", file=sys.stderr)
        return 2
    for name, stats in results.items():
        print(f"{name}: {stats.events:,} events, {stats.dead_letters} dead letters")
    print(f"replayed in {time.monotonic() - started:.1f} s")
    return 0
