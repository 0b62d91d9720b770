"""`tradex sim`: a seeded market simulation against the running exchange.

    tradex sim --seed 7 --rate 500 --duration 60 --instruments 3 --accounts 300

It lays the market (assets, instruments, users, accounts, funds; idempotent), then runs
the agents' order flow through the command path at ``--rate`` commands/s for
``--duration`` s, printing live figures every second and a summary (``--json``: the
summary as one JSON object on stdout). Bad arguments exit 2; an exchange service that is
not running exits 1 with one line saying which and how to start it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from tradex.infra import settings as settings_module
from tradex.infra.cli_args import non_negative_int, positive_int
from tradex.sim.config import ConfigError, SimConfig
from tradex.sim.market import SetupRefused, setup_market
from tradex.sim.runner import run
from tradex.sim.services import service_down
from tradex.sim.stats import SimStats, stats_line


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    defaults = SimConfig()
    p = argparse.ArgumentParser(prog="tradex sim", description=__doc__.split("\n")[0])
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=defaults.seed,
        help="the flow's seed (same seed, same trades on a fresh prefix)",
    )
    p.add_argument(
        "--rate",
        type=positive_float,
        default=defaults.rate,
        help=f"commands per second (default {defaults.rate:g})",
    )
    p.add_argument(
        "--duration",
        type=positive_float,
        default=defaults.duration_s,
        help=f"seconds of flow at --rate (default {defaults.duration_s:g})",
    )
    p.add_argument(
        "--instruments",
        type=positive_int,
        default=defaults.instruments,
        help="instruments, at most 8 and the order-requests partitions (default %(default)s)",
    )
    p.add_argument(
        "--accounts",
        type=positive_int,
        default=defaults.accounts,
        help="trader accounts, split over the instruments",
    )
    p.add_argument(
        "--in-flight",
        type=positive_int,
        default=defaults.in_flight_max,
        help="commands unanswered at most (default %(default)s)",
    )
    p.add_argument(
        "--prefix", default=None, help="topic prefix of the exchange (default: TRADEX_TOPIC_PREFIX)"
    )
    p.add_argument(
        "--tag",
        default=defaults.tag,
        help="command id prefix: another tag to run again on one prefix",
    )
    p.add_argument(
        "--start-ns",
        type=positive_int,
        default=None,
        help="event time of the first command (default: now)",
    )
    p.add_argument("--json", action="store_true", help="the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no live figures")
    return p  # fmt: skip


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    config = SimConfig(
        seed=args.seed, instruments=args.instruments, accounts=args.accounts, rate=args.rate,
        duration_s=args.duration, in_flight_max=args.in_flight, start_ns=args.start_ns,
        tag=args.tag,
    )  # fmt: skip
    try:
        config.check()
    except ConfigError as exc:
        p.error(str(exc))  # exit 2
    settings = settings_module.load()
    if args.prefix is not None:
        settings = dataclasses.replace(settings, topic_prefix=args.prefix)
    down = service_down(settings)
    if down is not None:
        print(f"tradex sim: {down}", file=sys.stderr)
        return 1
    live = sys.stderr if args.json else sys.stdout

    def on_tick(stats: SimStats) -> None:
        if not args.quiet:
            print(stats_line(stats), file=live, flush=True)

    try:
        market = setup_market(settings, config)
    except ConfigError as exc:
        p.error(str(exc))
    except SetupRefused as exc:
        print(f"tradex sim: {exc}", file=sys.stderr)
        return 1
    symbols = ", ".join(f"{i.spec.symbol} (id {i.instrument_id}, {len(i.accounts)} accounts)"
                        for i in market.instruments)  # fmt: skip
    print(f"tradex sim: seed {config.seed}, {config.commands:,} commands at {config.rate:g}/s "
          f"on {symbols}", file=live)  # fmt: skip
    try:
        result = run(settings, config, market, on_tick)
    except KeyboardInterrupt:
        print("tradex sim: interrupted (what was sent stays on the log)", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.summary())
    return 0 if result.timeouts == 0 and result.misplaced == 0 else 1
