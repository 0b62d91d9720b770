"""``tradex backtest``: re-run the matching engine over a recorded ``order-requests``
stream with changes, and report against history (docs/backtest.md).

    tradex backtest --out OUT                                   # the log of TRADEX_TOPIC_PREFIX
    tradex backtest --prefix demo- --out OUT --band 1=50 --stp CANCEL_TAKER
    tradex backtest --archive ARCHIVE --from offset:1000 --to 2026-12-02T08:00:00Z --out OUT
    tradex backtest --out OUT --strategy examples/market_maker.py:MarketMaker \\
        --strategy-instrument 1 --every 20

Writes OUT/report.html, OUT/summary.json, OUT/trades.parquet, OUT/orders.parquet (and,
with ``--clickhouse DB``, DB.backtest_trades / DB.backtest_orders). Bad arguments, a
missing archive or an empty window: a one-line error, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tradex.audit.timetravel import AsOf, parse_at
from tradex.domain.types import FEE_PPM_MAX, PRICE_BAND_BPS_MAX, StpMode
from tradex.infra.cli_args import positive_int
from tradex.matching.book import CapacityError
from tradex.matching.service import add_book_arguments, book_config

from .metrics import Fees
from .plan import EmptyWindow, Plan, Result, backtest
from .rewrite import Changes, Halt
from .run import Window
from .strategy import Schedule, StrategyError, StrategyFn, load

STRATEGY_ACCOUNT_DEFAULT = 999_000_001
PROG = "tradex backtest"


def _band(text: str) -> tuple[int, int]:
    instrument, sep, bps = text.partition("=")
    try:
        found = int(instrument), int(bps)
    except ValueError:
        found = (0, -1)
    if not sep or found[0] <= 0 or not 0 <= found[1] <= PRICE_BAND_BPS_MAX:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected INSTRUMENT=BPS with BPS 0..{PRICE_BAND_BPS_MAX}"
        )
    return found


def _halt(text: str) -> Halt:
    instrument, sep, span = text.partition("@")
    start, dots, end = span.partition("..")
    try:
        instrument_id = int(instrument)
        if not sep or instrument_id <= 0 or not start:
            raise ValueError("")
        return Halt(instrument_id, parse_at(start), parse_at(end) if dots and end else None)
    except ValueError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected INSTRUMENT@FROM..TO (FROM, TO: offset:N, ISO time or ns; "
            f"TO may be left out){detail}"
        ) from None


def _at(text: str) -> AsOf:
    try:
        return parse_at(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ppm(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= FEE_PPM_MAX:
        raise argparse.ArgumentTypeError(f"{text!r}: a fee rate in ppm, 0..{FEE_PPM_MAX}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prefix", "--topic-prefix", dest="prefix", default=None,
                     help="Kafka topic prefix of the log (default TRADEX_TOPIC_PREFIX)")  # fmt: skip
    src.add_argument("--archive", default=None, metavar="DIR",
                     help="read the log from an archive (tradex export) instead of Kafka")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (created; must not exist or be empty)")  # fmt: skip
    p.add_argument("--from", dest="start", type=_at, default=None, metavar="AT",
                   help="window start: offset:N (per partition), ISO time or ns (request time)")  # fmt: skip
    p.add_argument("--to", dest="end", type=_at, default=None, metavar="AT",
                   help="window end (exclusive), same forms (default: what the matcher ran)")  # fmt: skip
    p.add_argument("--band", type=_band, action="append", default=[], metavar="INSTRUMENT=BPS",
                   help="price band of an instrument's rules in the window (0: none)")  # fmt: skip
    p.add_argument("--halt", type=_halt, action="append", default=[],
                   metavar="INSTRUMENT@FROM..TO", help="halt an instrument over a span")  # fmt: skip
    p.add_argument("--stp", choices=[m.value for m in StpMode], default=None,
                   help="self-trade prevention of every new order in the window")  # fmt: skip
    add_book_arguments(p)
    p.add_argument("--maker-fee-ppm", type=_ppm, default=None, help="recompute fees at this rate")
    p.add_argument("--taker-fee-ppm", type=_ppm, default=None, help="recompute fees at this rate")
    p.add_argument("--strategy", default=None, metavar="MODULE:NAME",
                   help="a strategy to inject: module:function, module:Class or file.py:name")  # fmt: skip
    p.add_argument("--strategy-instrument", type=positive_int, default=None)
    p.add_argument("--strategy-account", type=positive_int, default=STRATEGY_ACCOUNT_DEFAULT)
    p.add_argument("--every", type=positive_int, default=None, metavar="N",
                   help="run the strategy after every N inputs of its partition (default 10)")  # fmt: skip
    p.add_argument("--on-trade", action="store_true",
                   help="run the strategy after each input that traded its instrument")  # fmt: skip
    p.add_argument("--depth", type=positive_int, default=5, help="book levels the strategy sees")
    p.add_argument("--clickhouse", default=None, metavar="DB",
                   help="also write DB.backtest_trades / backtest_orders (the stack's ClickHouse)")  # fmt: skip
    return p


def parse(argv: list[str]) -> tuple[argparse.Namespace, Plan, StrategyFn | None]:
    p = parser()
    args = p.parse_args(argv)
    config = book_config(p, args)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        p.error(f"--out {out}: exists and is not an empty directory")
    if args.archive is not None and not Path(args.archive).is_dir():
        p.error(f"--archive {args.archive}: no such directory")
    if args.depth > 50:
        p.error("--depth: at most 50 levels")
    strategy = None
    schedule = None
    if args.strategy is None:
        if args.strategy_instrument is not None or args.every is not None or args.on_trade:
            p.error("--strategy-instrument, --every and --on-trade need --strategy")
    else:
        if args.strategy_instrument is None:
            p.error("--strategy needs --strategy-instrument")
        try:
            strategy = load(args.strategy)
        except ValueError as exc:
            p.error(str(exc))
        every = args.every if args.every is not None else (0 if args.on_trade else 10)
        schedule = Schedule(args.strategy_instrument, args.strategy_account, every, args.on_trade)
    changes = Changes(dict(args.band), tuple(args.halt),
                      StpMode(args.stp) if args.stp else None)  # fmt: skip
    plan = Plan(Window(args.start, args.end), changes, config,
                Fees(args.maker_fee_ppm, args.taker_fee_ppm), args.strategy or "", schedule,
                args.depth)  # fmt: skip
    return args, plan, strategy


def main(argv: list[str]) -> int:
    args, plan, strategy = parse(argv)
    from tradex.infra import settings as settings_module
    from tradex.log.archive import ArchiveError
    from tradex.log.source import KafkaLog, LogSource

    settings = settings_module.load()
    if args.prefix is not None:
        settings = dataclasses.replace(settings, topic_prefix=args.prefix)
    try:
        source: LogSource
        if args.archive is not None:
            from tradex.audit.replay import archive_codec
            from tradex.log.archive import ArchiveLog

            archive = ArchiveLog(Path(args.archive))
            source, codec = archive, archive_codec(archive)
            where = f"archive {args.archive}"
        else:
            from tradex.schemas.remote import codec_from_settings

            source, codec = KafkaLog(settings), codec_from_settings(settings)
            where = f"Kafka topics {settings.topic('order-requests')}"
        with source:
            try:
                source.partitions("order-requests")
            except Exception as exc:  # no such topic, or the log holds none
                print(f"{PROG}: no order-requests in {where}: {exc}", file=sys.stderr)
                return 2
            started = time.perf_counter()
            result = backtest(source, codec, plan, strategy)
            seconds = time.perf_counter() - started
    except (ArchiveError, EmptyWindow) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except CapacityError as exc:
        print(f"{PROG}: the engine stopped: {exc} (raise --orders-max?)", file=sys.stderr)
        return 1
    except StrategyError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    from tradex.infra.clickhouse import ClickHouseError

    try:
        written = write(result, Path(args.out), where, settings if args.clickhouse else None,
                        args.clickhouse)  # fmt: skip
    except ClickHouseError as exc:
        print(f"{PROG}: ClickHouse refused the tables (nothing written): {exc}", file=sys.stderr)
        return 1
    h, b = result.history, result.backtest
    print(f"{PROG}: {result.inputs:,} inputs; trades history {sum(i.trades for i in h.instruments.values()):,}"
          f" / backtest {sum(i.trades for i in b.instruments.values()):,}; "
          f"{'identical to history' if result.identical else 'differs from history'}; "
          f"{seconds:.1f} s ({result.inputs / max(seconds, 1e-9):,.0f} inputs/s)")  # fmt: skip
    for path in written:
        print(f"  {path}")
    return 0


def write(
    result: Result, out: Path, where: str, settings: object | None, database: str | None
) -> list[str]:
    """Everything into a fresh directory beside ``out``, renamed to ``out`` at the end (a
    failure leaves nothing)."""
    from . import output, report

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would be the output directory's
    try:
        found = output.tables(result)
        output.write_parquet(found, staging)
        (staging / "summary.json").write_text(report.summary_json(result))
        (staging / "report.html").write_text(report.html(result, where, now))
        names: list[str] = []
        if database is not None:
            from tradex.infra.clickhouse import connect

            ch = connect(settings)  # type: ignore[arg-type]
            names = output.write_clickhouse(found, ch, database)
        if out.exists():
            out.rmdir()  # empty (checked by parse)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [str(out / n) for n in ("report.html", "summary.json", "trades.parquet",
                                   "orders.parquet")] + names  # fmt: skip
