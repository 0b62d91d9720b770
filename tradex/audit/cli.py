"""``tradex audit``: the auditor's commands (docs/audit.md).

    tradex audit verify [--from-kafka | --archive DIR] [--json] [--read-models [NAME ...]]
    tradex audit balances --account A --at TIME|offset:N [--format text|csv|json]
    tradex audit statement --account A --from TIME --to TIME [--format text|csv|json]
    tradex audit book --instrument I [--at offset:N] [--format text|json]

Every command reads the log through a LogSource: the live Kafka log of the settings
(``--topic-prefix`` to name another exchange), or an archive (``--archive DIR``). Exit
status: 0 fine, 1 violations found (verify), 2 bad arguments or an unreadable log.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tradex.infra import settings as settings_module
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, LogSource
from tradex.matching.service import add_book_arguments, book_config
from tradex.schemas.remote import codec_from_settings

# Verbs: name -> (module, function, help). ``prove`` / ``check-proof`` belong to the
# archive side (tradex/audit/proofs.py, same ``main(argv) -> int`` shape): they are listed
# here and run when that module is installed.
VERBS: dict[str, tuple[str, str, str]] = {
    "verify": ("tradex.audit.cli", "main_verify", "every check of the log; exit 1 on a violation"),
    "balances": ("tradex.audit.cli", "main_balances", "an account's balances at a time or position"),
    "statement": ("tradex.audit.cli", "main_statement", "an account's postings between two times"),
    "book": ("tradex.audit.cli", "main_book", "an instrument's order book at an input position"),
    "users": ("tradex.audit.cli", "main_users", "users and their roles at a time; --history: who changed them"),
    # -- the archive side's verbs (tradex/audit/proofs.py) ---------------------------------
    "prove": ("tradex.audit.proofs", "main_prove", "an inclusion proof of one event"),
    "check-proof": ("tradex.audit.proofs", "main_check_proof", "check an inclusion proof"),
}  # fmt: skip


def usage() -> str:
    lines = ["usage: tradex audit VERB [ARGS...]", "", "verbs:"]
    lines += [f"  {verb:<12} {help_text}" for verb, (_m, _f, help_text) in VERBS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    found = VERBS.get(argv[0])
    if found is None:
        print(f"tradex audit: unknown verb {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function, _help = found
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        print(f"tradex audit {argv[0]}: not in this build ({module_name})", file=sys.stderr)
        return 2
    run: Callable[[list[str]], int] = getattr(module, function)
    return run(argv[1:])


# -- where the log is --------------------------------------------------------------------------


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--from-kafka", action="store_true",
                       help="the live log on the settings' Kafka (the default)")  # fmt: skip
    where.add_argument("--archive", metavar="DIR", default=None,
                       help="an archive written by tradex export")  # fmt: skip
    parser.add_argument("--topic-prefix", default=None,
                        help="topic prefix of the exchange (default TRADEX_TOPIC_PREFIX)")  # fmt: skip


def open_source(args: argparse.Namespace) -> tuple[LogSource, Settings]:
    """The LogSource the arguments name (ValueError with a clear message if it cannot be)."""
    settings = settings_module.load()
    if args.topic_prefix is not None:
        settings = dataclasses.replace(settings, topic_prefix=args.topic_prefix)
    if args.archive is not None:
        from tradex.audit.archive import open_archive  # ArchiveError is a ValueError

        return open_archive(args.archive), settings
    return KafkaLog(settings), settings


def kafka_and_codec(settings: Settings) -> tuple[LogSource, Any]:
    """The Kafka log and codec of ``settings`` (picklable as a partial: the re-run's child
    process opens its own)."""
    return KafkaLog(settings), codec_from_settings(settings)


T = TypeVar("T")


def _fail(prog: str, exc: BaseException) -> int:
    print(f"{prog}: {exc}", file=sys.stderr)
    return 2


def _read_log(
    parser: argparse.ArgumentParser, args: argparse.Namespace,
    read: Callable[[LogSource, Any], T],
) -> T:  # fmt: skip
    """``read(source, codec)`` on the log the arguments name: a bad source is a usage error
    (exit 2 with the parser's message), an unreadable log one line and exit 2."""
    try:
        source, settings = open_source(args)
    except ValueError as exc:
        parser.error(str(exc))
    with source:
        try:
            return read(source, codec_from_settings(settings))
        except Exception as exc:  # an unreadable log: said, exit 2
            raise SystemExit(_fail(parser.prog, exc)) from exc


# -- verify ------------------------------------------------------------------------------------


def main_verify(argv: list[str]) -> int:
    from tradex.audit.verify import Report, verify

    parser = argparse.ArgumentParser(prog="tradex audit verify",
                                     description="Every check of the log (docs/audit.md).")  # fmt: skip
    add_source_arguments(parser)
    parser.add_argument("--json", action="store_true", help="the report as one JSON document")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    parser.add_argument("--no-rerun", action="store_true", help="skip the matching re-run")
    parser.add_argument(
        "--rerun-process", action="store_true",
        help="the matching re-run in a child process beside the scan (with free cores; on "
        "this 2-core machine it measured slower than the re-run after the checks)",
    )  # fmt: skip
    parser.add_argument(
        "--rerun-after", action="store_true",
        help="the matching re-run after the checks, alone (by default it runs on a thread "
        "beside the scan and the checks)",
    )  # fmt: skip
    parser.add_argument(
        "--read-models", nargs="*", metavar="NAME", default=None,
        help="also check these read models (all live ones if no NAME) against a rebuild "
        "from the log at their positions (tradex projections verify; needs the stores)",
    )  # fmt: skip
    parser.add_argument("--public-key", metavar="FILE", default=None,
                        help="the exchange's checkpoint public key (PEM or hex; default: "
                             "the archive's, with --archive)")  # fmt: skip
    add_book_arguments(parser)
    args = parser.parse_args(argv)
    config = book_config(parser, args)
    public_key = None
    try:
        from tradex.audit.checkpoints import read_public_key
        from tradex.log.archive import PUBLIC_KEY_NAME, archive_public_key

        if args.public_key is not None:
            public_key = read_public_key(args.public_key)
        source, settings = open_source(args)
        if public_key is None and args.archive and (Path(args.archive) / PUBLIC_KEY_NAME).is_file():
            public_key = archive_public_key(Path(args.archive))
    except (OSError, ValueError) as exc:
        return _fail("tradex audit verify", exc)
    read_models = None
    if args.read_models is not None:
        if args.archive is not None:
            return _fail("tradex audit verify", ValueError("--read-models needs the live log"))
        names = list(args.read_models)

        def read_models(report: Report) -> None:
            check_read_models(settings, names, report, not args.no_progress)

    with source:
        try:
            report = verify(source, codec_from_settings(settings), config=config,
                            progress=not args.no_progress, rerun=not args.no_rerun,
                            public_key=public_key, read_models=read_models,
                            overlap=not args.rerun_after,
                            reopen=functools.partial(kafka_and_codec, settings)
                            if args.rerun_process and args.archive is None else None)  # fmt: skip
        except Exception as exc:  # an unreadable log: said, exit 2
            return _fail("tradex audit verify", exc)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(report.text())
    if args.archive is None:  # the live log's audit: reported on the stack's /metrics
        from tradex.observability.metrics_server import record_audit

        record_audit(settings, len(report.violations), summary=report.summary())
    return 0 if report.ok else 1


def check_read_models(settings: Settings, names: list[str], report: Any, progress: bool) -> None:
    """``tradex projections verify`` of each read model: its live version against a rebuild
    from the log at its recorded positions; each difference is a ``read_model`` violation."""
    from tradex.audit.violations import Violation
    from tradex.projections.admin import verify as verify_projection
    from tradex.projections.catalog import PROJECTORS, projector_class

    chosen = names or sorted(PROJECTORS)
    count = 0
    for name in chosen:
        cls = projector_class(name)
        if not names and cls.versions(settings).live is None:
            report.notes.append(f"read model {name}: no live version, not checked")
            continue
        for problem in verify_projection(settings, name, show_progress=progress):
            report.violations.append(Violation("read_model", name, -1, -1, "", problem))
            count += 1
        report.notes.append(f"read model {name}: checked against a rebuild at its positions")
    report.counts["read_model"] = count


# -- time travel -------------------------------------------------------------------------------


def _write(rows: list[dict[str, Any]], form: str, columns: list[str]) -> None:
    if form == "json":
        print(json.dumps(rows))
    elif form == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    else:
        widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
        print("  ".join(c.ljust(widths[c]) for c in columns))
        for row in rows:
            print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


def _time_arg(text: str) -> int:
    from tradex.audit.timetravel import parse_at

    try:
        at = parse_at(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if at.time_ns is None:
        raise argparse.ArgumentTypeError(f"{text!r}: a time here (ISO 8601 or ns), not a position")
    return at.time_ns


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return value


def main_balances(argv: list[str]) -> int:
    from tradex.audit import timetravel

    parser = argparse.ArgumentParser(prog="tradex audit balances",
                                     description="An account's balances at a time or position.")  # fmt: skip
    add_source_arguments(parser)
    parser.add_argument("--account", type=_positive, required=True, metavar="A")
    parser.add_argument("--at", required=True, metavar="TIME|offset:N",
                        help="ISO 8601 or ns (events at or before it), or offset:N (the events "
                        "below offset N of the account's account-events partition)")  # fmt: skip
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        at = timetravel.parse_at(args.at)
    except ValueError as exc:
        parser.error(str(exc))
    ref, rows = _read_log(parser, args, lambda source, codec: (
        timetravel.reference(source, codec),
        timetravel.balances(source, codec, args.account, at),
    ))  # fmt: skip
    _write([{"asset": r.asset,
             "available": timetravel.decimal(r.available, ref.scales.get(r.asset)),
             "held": timetravel.decimal(r.held, ref.scales.get(r.asset)),
             "total": timetravel.decimal(r.available + r.held, ref.scales.get(r.asset))}
            for r in rows], args.format, ["asset", "available", "held", "total"])  # fmt: skip
    return 0


def main_statement(argv: list[str]) -> int:
    from tradex.audit import timetravel

    parser = argparse.ArgumentParser(prog="tradex audit statement",
                                     description="An account's postings between two times.")  # fmt: skip
    add_source_arguments(parser)
    parser.add_argument("--account", type=_positive, required=True, metavar="A")
    parser.add_argument("--from", dest="start", type=_time_arg, required=True, metavar="TIME")
    parser.add_argument("--to", dest="end", type=_time_arg, required=True, metavar="TIME",
                        help="exclusive")  # fmt: skip
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--to is before --from")
    ref, lines = _read_log(parser, args, lambda source, codec: (
        timetravel.reference(source, codec),
        timetravel.statement(source, codec, args.account, args.start, args.end),
    ))  # fmt: skip
    columns = ["event_id", "partition", "offset", "event_time_ns", "asset", "delta",
               "balance_after"]  # fmt: skip
    rows = []
    for line in lines:
        row = line._asdict()
        scale = ref.scales.get(line.asset)
        row["delta"] = timetravel.decimal(line.delta, scale)
        row["balance_after"] = timetravel.decimal(line.balance_after, scale)
        rows.append(row)
    _write(rows, args.format, columns)
    return 0


def main_users(argv: list[str]) -> int:
    from tradex.audit import roles

    parser = argparse.ArgumentParser(prog="tradex audit users",
                                     description="Users and their roles at a time.")  # fmt: skip
    add_source_arguments(parser)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--at", type=_time_arg, default=None, metavar="TIME",
                      help="ISO 8601 or ns (events at or before it; default: now)")  # fmt: skip
    what.add_argument("--history", action="store_true",
                      help="every registration, role change (with who made it) and refused "
                      "role change, in time order")  # fmt: skip
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text")
    args = parser.parse_args(argv)
    history = _read_log(parser, args, roles.role_history)
    if args.history:
        rows = [e._asdict() for e in history]
        _write(rows, args.format, list(roles.RoleEvent._fields))
    else:
        rows = [u._asdict() for u in roles.users_at(history, args.at)]
        _write(rows, args.format, list(roles.UserRoles._fields))
    return 0


def main_book(argv: list[str]) -> int:
    from tradex.audit import timetravel

    parser = argparse.ArgumentParser(prog="tradex audit book",
                                     description="An instrument's book at an input position.")  # fmt: skip
    add_source_arguments(parser)
    parser.add_argument("--instrument", required=True, metavar="I",
                        help="the instrument's id or symbol (e.g. 103 or BTC-USD; one the "
                        "log has no instrument of is an error that lists them)")  # fmt: skip
    parser.add_argument("--at", default=None, metavar="offset:N",
                        help="re-run the inputs below offset N of the instrument's "
                        "order-requests partition (default: all)")  # fmt: skip
    parser.add_argument("--format", choices=("text", "json"), default="text")
    add_book_arguments(parser)
    args = parser.parse_args(argv)
    config = book_config(parser, args)
    position = None
    if args.at is not None:
        try:
            at = timetravel.parse_at(args.at)
        except ValueError as exc:
            parser.error(str(exc))
        if at.offset is None:
            parser.error("--at takes a position here (offset:N)")
        position = at.offset
    named = args.instrument.strip()
    if not named or (named.isdecimal() and int(named) <= 0):
        parser.error(f"--instrument: an instrument id > 0 or a symbol, not {args.instrument!r}")
    view = _read_log(parser, args, lambda source, codec: timetravel.book(
        source, codec, timetravel.instrument_id_of(source, codec, named), position, config))  # fmt: skip
    if args.format == "json":
        print(json.dumps(dataclasses.asdict(view)))
        return 0
    where = (f"instrument {view.instrument_id}: order-requests[{view.partition}] below offset "
             f"{view.position}")  # fmt: skip
    if not view.state_hash:
        print(f"{where}: no book (no InstrumentRules of the instrument below that offset)")
        return 0
    print(f"{where}; {len(view.orders)} resting orders; state {view.state_hash[:16]}")
    print(f"  {'bids (ticks, lots, orders)':<34} asks (ticks, lots, orders)")
    for i in range(min(max(len(view.bids), len(view.asks)), timetravel.LEVELS_SHOWN_MAX)):
        bid = view.bids[i] if i < len(view.bids) else ""
        ask = view.asks[i] if i < len(view.asks) else ""
        print(f"  {bid!s:<34} {ask}")
    return 0
