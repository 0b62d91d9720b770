"""``tradex audit checkpoint``: write one signed checkpoint now, or check them all.

    tradex audit checkpoint                                   # one checkpoint now
    tradex audit checkpoint --check [--archive DIR] [--public-key K]

Checking exits 0 when every checkpoint verifies and the log (or archive) extends them, 1
with one line per violation (the record named), 2 when the archive or key is unreadable.
See :mod:`tradex.audit.checkpoints`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tradex.audit.checkpointer import write_one
from tradex.audit.checkpoints import (
    CheckpointError,
    check_checkpoints,
    key_id,
    load_or_create_key,
    public_bytes,
    read_public_key,
)
from tradex.audit.violations import Violation
from tradex.log.archive import ArchiveError, ArchiveLog, archive_public_key
from tradex.log.source import KafkaLog, LogSource
from tradex.log.topics import CHECKPOINTS


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tradex audit checkpoint", description="sign the chained streams' heads now, or check the checkpoints"
    )  # fmt: skip
    parser.add_argument(
        "--check", action="store_true", help="check every checkpoint instead of writing one"
    )
    parser.add_argument(
        "--archive", metavar="DIR", help="check an archive (tradex export) instead of Kafka"
    )
    parser.add_argument(
        "--public-key", metavar="K", help="PEM file or hex (default: the stack's or the archive's)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    from tradex.infra import settings as settings_module

    args = parse_args(argv)
    settings = settings_module.load()
    if not args.check:
        if args.archive:
            print("tradex audit checkpoint: --archive only with --check", file=sys.stderr)
            return 2
        signed = write_one(settings)
        print(f"checkpoint #{signed.checkpoint.seq} at {CHECKPOINTS}@{signed.offset}: "
              f"{sum(s.records for s in signed.checkpoint.streams):,} new records in "
              f"{len(signed.checkpoint.streams)} streams")  # fmt: skip
        return 0
    try:
        source: LogSource = ArchiveLog(Path(args.archive)) if args.archive else KafkaLog(settings)
        if args.public_key:
            public_key = read_public_key(args.public_key)
        elif args.archive:
            public_key = archive_public_key(Path(args.archive))
        else:
            public_key = public_bytes(load_or_create_key(settings))
        violations: list[Violation] = []
        started = time.monotonic()
        with source:
            check_checkpoints(source, public_key, violations)
    except (ArchiveError, CheckpointError) as exc:
        print(f"tradex audit checkpoint: {exc}", file=sys.stderr)
        return 2
    for violation in violations:
        print(violation)
    print(f"checkpoints {'OK' if not violations else 'VIOLATED'} (key {key_id(public_key)}, "
          f"{time.monotonic() - started:.1f} s)")  # fmt: skip
    return 1 if violations else 0
