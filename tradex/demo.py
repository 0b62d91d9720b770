"""`tradex demo`: the main job — a live exchange on the local stack, a market on it, the audit.

1. The stack up (Kafka, PostgreSQL, Redis, chdb); a fresh exchange on its own topic prefix.
2. Every service as its own process (:mod:`tradex.infra.exchange`): the reference
   processor, the account processor, the matcher, one projector per read model
   (postgres, timescale, redis, clickhouse) and the API; each is checked ready.
3. The market (:mod:`tradex.sim`): assets, instruments and funded users through the real
   command path, then seeded agents trading for ``--duration`` seconds at ``--rate``
   commands/s, with a live view refreshed every second (:mod:`tradex.demo_view`).
4. The pipeline and the projectors drained; ``tradex audit verify`` of the whole log,
   read models included (each one equal to a rebuild from the log at its positions).
5. A summary: what ran, how fast, the audit's verdict, where to look next (the web
   console, API docs, a ``curl`` that works with the demo user's credentials, the
   WebSocket URL).

``--keep`` leaves the exchange running (``tradex exchange stop`` stops it); otherwise, and
on Ctrl-C, everything the demo started is stopped cleanly. Services' output goes to their
log files; the terminal shows the view and the summary only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tradex import demo_view, exchange_services
from tradex.audit.verify import Report, verify
from tradex.commands.client import CommandClient
from tradex.domain import Deposit
from tradex.infra import settings as settings_module
from tradex.infra import stack
from tradex.infra.cli_args import positive_int
from tradex.infra.exchange import Exchange, Service, free_port
from tradex.infra.local_process import StackError
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog
from tradex.log.topics import ensure_account_topics, ensure_matcher_topics, ensure_reference_topics
from tradex.projections.catalog import PROJECTORS
from tradex.schemas.remote import codec_from_settings
from tradex.sim import ConfigError, SimConfig, SimResult, SimStats, setup_market
from tradex.sim import run as run_market

API_HOST = "127.0.0.1"
API_PORT_DEFAULT = 18080
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password-1"
DEMO_DEPOSIT_USD = 10_000
ready_timeout_s = 180.0
idle_timeout_s = 300.0
QUICK_DURATION_S = 8.0
QUICK_RATE = 50.0
DEFAULT_DURATION_S = 60.0
DEFAULT_RATE = 200.0


@dataclasses.dataclass(frozen=True)
class Options:
    duration_s: float
    rate: float
    seed: int
    keep: bool
    api_port: int
    live: bool = True  # the live view (tests turn it off)


@dataclasses.dataclass
class Outcome:
    """What a demo run did: the market's result, the audit, where the API is."""

    prefix: str
    services: list[str]
    market: SimResult
    report: Report
    api_url: str
    token: str
    account_probe: dict[str, Any]
    ready_s: float
    idle_s: float
    log_dir: Path
    kept: bool

    @property
    def ok(self) -> bool:
        return self.report.ok


def _http(method: str, url: str, body: dict[str, Any] | None = None,
          token: str | None = None) -> dict[str, Any]:  # fmt: skip
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            found: dict[str, Any] = json.loads(answer.read())
            return found
    except urllib.error.HTTPError as exc:
        raise StackError(
            f"{method} {url}: {exc.code} {exc.read().decode(errors='replace')}"
        ) from None


def demo_user(settings: Settings, api_url: str) -> tuple[str, int]:
    """The demo user registered through the API and logged in, its account funded with
    ``DEMO_DEPOSIT_USD`` through the command path; its token and account id."""
    user = _http("POST", f"{api_url}/tradex/v1/auth/register",
                 {"username": DEMO_USER, "password": DEMO_PASSWORD})  # fmt: skip
    account_id = int(user["accountIds"][0])
    tokens = _http("POST", f"{api_url}/tradex/v1/auth/login",
                   {"username": DEMO_USER, "password": DEMO_PASSWORD})  # fmt: skip
    client = CommandClient(settings, name=f"{settings.topic_prefix}demo")
    try:
        deposit = Deposit("demo-user-deposit", account_id, time.time_ns(), "USD",
                          DEMO_DEPOSIT_USD * 100)  # fmt: skip
        outcome = client.execute(deposit, timeout_s=60)
    finally:
        client.close()
    if not any(type(e).__name__ == "Deposited" for e in outcome.events):
        raise StackError(f"the demo user's deposit was not accepted: {outcome.events}")
    return str(tokens["accessToken"]), account_id


def services_of(settings: Settings, api_port: int) -> list[Service]:
    return [
        *exchange_services.pipeline_services("demo"),
        *exchange_services.projector_services(sorted(PROJECTORS)),
        exchange_services.api_service(API_HOST, api_port),
    ]


class Live:
    """The market's per-second snapshots joined with the lag and the books, drawn."""

    def __init__(self, settings: Settings, duration_s: float, draw: bool) -> None:
        self.duration_s = duration_s
        self.draw = draw
        self.screen = demo_view.Screen()
        self.lag = demo_view.LagWatch(settings, sorted(PROJECTORS)) if draw else None
        self.tops = demo_view.Tops(settings) if draw else None
        self.last: demo_view.Figures | None = None

    def __call__(self, stats: SimStats) -> None:
        figures = demo_view.Figures(
            elapsed_s=float(stats.elapsed_s), duration_s=self.duration_s,
            orders_per_s=float(stats.orders_per_s), trades_per_s=float(stats.trades_per_s),
            ack_p99_ms=stats.ack_p99_ms, commands=int(stats.sent), trades=int(stats.trades),
            phase=stats.phase,
        )  # fmt: skip
        if self.lag is not None:
            figures.lag, figures.lag_age_s = dict(self.lag.lag), self.lag.age_s()
            figures.lag_error = self.lag.error
        if self.tops is not None:
            figures.tops = self.tops.read()
        self.last = figures
        if self.draw:
            self.screen.show(figures)

    def close(self) -> None:
        if self.lag is not None:
            self.lag.close()
        if self.tops is not None:
            self.tops.close()
        self.screen.done()


def audit(settings: Settings, exchange: Exchange, keep: bool) -> Report:
    """``tradex audit verify`` of the log, read models included. A chdb read model is
    held by its projector: it is stopped for the check (and started again with ``keep``)."""
    from tradex.audit.cli import check_read_models

    held = [] if settings.clickhouse_url else ["projector-clickhouse"]
    if keep:
        exchange.stop(held)
    else:
        exchange.stop()
    with KafkaLog(settings) as log:
        report = verify(log, codec_from_settings(settings), progress=False,
                        read_models=lambda r: check_read_models(settings, [], r, False))  # fmt: skip
    if keep:
        exchange.start(exchange_services.projector_services(["clickhouse"]) if held else [])
    return report


def run(settings: Settings, log_dir: Path, options: Options) -> Outcome:
    """Start the exchange on ``settings``' prefix, run the market, audit it; stop unless
    ``options.keep`` (and always on an error or Ctrl-C)."""
    say = print if options.live else (lambda *_a, **_k: None)
    ensure_reference_topics(settings)
    ensure_account_topics(settings, settings.topic_partitions)
    ensure_matcher_topics(settings)
    exchange = Exchange(settings, log_dir)
    kept = False
    try:
        exchange.start(services_of(settings, options.api_port))
        started = list(exchange.services)
        say(f"starting {len(exchange.services)} services: {', '.join(exchange.services)} ...")
        ready_s = exchange.wait_ready(ready_timeout_s)
        api_url = f"http://{API_HOST}:{options.api_port}"
        say(f"all ready in {ready_s:.1f} s; API on {api_url}")
        config = SimConfig(seed=options.seed, rate=options.rate, duration_s=options.duration_s)
        config.check()
        live = Live(settings, options.duration_s, options.live)  # lag readings start now
        try:
            market = setup_market(settings, config)  # its users from 90,001; the API's from 1
            token, _account = demo_user(settings, api_url)
            say(f"market set up; trading for {options.duration_s:.0f} s at {options.rate:.0f}/s "
                f"(seed {options.seed})\n")  # fmt: skip
            result = run_market(settings, config, market, on_tick=live)
        finally:
            live.close()
        exchange.check_alive()
        say("\ntrading done; waiting for the pipeline and the read models to catch up ...")
        idle_s = exchange_services.wait_idle(settings, sorted(PROJECTORS), idle_timeout_s)
        probe = _http("GET", f"{api_url}/api/v3/account", token=token)  # the summary's curl
        say(f"caught up in {idle_s:.1f} s; auditing the log and the read models ...")
        report = audit(settings, exchange, options.keep)
        kept = options.keep
        return Outcome(settings.topic_prefix, started, result, report, api_url, token, probe,
                       ready_s, idle_s, log_dir, kept)  # fmt: skip
    finally:
        if kept:
            exchange.detach()
        else:
            exchange.stop()


def summary(outcome: Outcome, options: Options) -> str:
    report, url = outcome.report, outcome.api_url
    m = outcome.market
    balances = ", ".join(
        f"{b['asset']} {b['free']}" for b in outcome.account_probe.get("balances", [])
    )
    verdict = "OK" if outcome.ok else "FAILED"
    lines = [
        "", report.text(), "",
        f"== tradex demo: {verdict}",
        f"what ran     {len(outcome.services)} services, each its own process "
        f"({', '.join(outcome.services)}), on topic prefix {outcome.prefix!r}; ready in "
        f"{outcome.ready_s:.0f} s; logs in {outcome.log_dir}",
        f"how fast     {m.commands:,} commands ({m.orders:,} orders) in {m.send_s:.0f} s "
        f"({m.commands_per_s:,.0f}/s asked {options.rate:,.0f}/s), {m.trades:,} trades; acks "
        f"p50 {_ms(m.ack_p50_ms)}, p99 {_ms(m.ack_p99_ms)}; the read models caught up "
        f"{outcome.idle_s:.1f} s after the market's end",
        f"the market   seed {options.seed}: trades hash {m.trades_hash[:16] or '-'} (the same "
        "seed gives the same trades)",
        f"the ledger   {'proved balanced' if report.ok else 'NOT proved'}: "
        f"{report.records:,} records audited, {len(report.violations)} violations (double entry, "
        f"no negative balance, holds, fees, hash chains, the matching engine re-run byte for byte)",
        f"read models  {read_models_line(report)}",
        f"look next    web console    {url}/console/  (log in as {DEMO_USER} / {DEMO_PASSWORD})",
        f"             API docs       {url}/docs  (OpenAPI: {url}/openapi.json)",
        f"             order book     curl -s '{url}/api/v3/depth?symbol=BTCUSD&limit=5'",
        f"             log in         curl -s -X POST {url}/tradex/v1/auth/login "
        f"-H 'Content-Type: application/json' -d '{{\"username\":\"{DEMO_USER}\","
        f"\"password\":\"{DEMO_PASSWORD}\"}}'",
        f"             your account   curl -s -H 'Authorization: Bearer <accessToken>' "
        f"{url}/api/v3/account   (now: {balances or 'no balances'})",
        f"             WebSocket      ws://{API_HOST}:{url.rsplit(':', 1)[1]}/tradex/v1/ws "
        f"(Binance streams: /ws, /stream)",
        "             the audit      tradex audit verify --topic-prefix " + outcome.prefix,
        "             a past book    tradex audit book --instrument BTC-USD --topic-prefix "
        f"{outcome.prefix} [--at offset:N]   (the engine re-run from the log)",
    ]  # fmt: skip
    if not outcome.kept:
        lines.append("             (the API answered these during the demo; `tradex demo --keep` "
                     "leaves it up for you)")  # fmt: skip
    if outcome.kept:
        lines.append(f"still running `tradex exchange status` lists the services; stop them with "
                     f"`tradex exchange stop --prefix {outcome.prefix}`")  # fmt: skip
    else:
        lines.append("stopped      every service the demo started (`--keep` leaves them up)")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def read_models_line(report: Report) -> str:
    checked = [n for n in report.notes if n.startswith("read model ")]
    bad = report.count("read_model")
    if not checked:
        return "not checked"
    names = ", ".join(n.split()[2].rstrip(":") for n in checked)
    return f"{names}: {'each equal to a rebuild from the log' if not bad else f'{bad} differences'}"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tradex demo", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help=f"seconds of trading (default {DEFAULT_DURATION_S:.0f})")  # fmt: skip
    parser.add_argument("--rate", type=float, default=None,
                        help=f"commands per second (default {DEFAULT_RATE:.0f})")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="the market's seed (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run for CI ({QUICK_DURATION_S:.0f} s at {QUICK_RATE:.0f}/s)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the exchange running")
    parser.add_argument("--prefix", default=None, help="topic prefix (default: a fresh one)")
    parser.add_argument("--api-port", type=positive_int, default=API_PORT_DEFAULT,
                        help=f"default {API_PORT_DEFAULT} (another free one if taken)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = QUICK_DURATION_S if args.quick else DEFAULT_DURATION_S
    if args.rate is None:
        args.rate = QUICK_RATE if args.quick else DEFAULT_RATE
    if not 0 < args.duration <= 86_400:
        parser.error("--duration must be in (0, 86400] seconds")
    if not 0 < args.rate <= 1_000_000:
        parser.error("--rate must be in (0, 1000000] per second")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.api_port > 65_535:
        parser.error("--api-port must be <= 65535")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    logging.getLogger("tradex").setLevel(logging.WARNING)  # the terminal is the view's
    base = settings_module.load()
    started = time.monotonic()
    servers = [name for name in stack.services_all if name != "clickhouse"]
    try:  # chdb is not opened here: its folder is for the clickhouse projector's process
        health = stack.up(base, only=servers)
    except StackError as exc:
        print(f"tradex demo: {exc}", file=sys.stderr)
        return 1
    print(f"stack up: {', '.join(h.service for h in health)} ({base.stack_dir}); ClickHouse "
          f"{base.clickhouse_url or f'embedded at {base.clickhouse_path}'}")  # fmt: skip
    prefix = args.prefix or f"demo-{time.strftime('%m%d-%H%M%S')}-"
    settings = dataclasses.replace(base, topic_prefix=prefix)
    log_dir = settings.stack_dir / "logs" / prefix.rstrip("-")
    options = Options(
        args.duration, args.rate, args.seed, args.keep, free_port(args.api_port, API_HOST)
    )
    print(f"a fresh exchange on topic prefix {prefix!r}; service logs in {log_dir}")
    try:
        outcome = run(settings, log_dir, options)
    except KeyboardInterrupt:
        print("\ntradex demo: interrupted; every service it started is stopped", file=sys.stderr)
        return 130
    except (StackError, TimeoutError, ConfigError) as exc:
        print(f"tradex demo: {exc}", file=sys.stderr)
        return 1
    print(summary(outcome, options))
    print(f"(the whole demo took {time.monotonic() - started:.0f} s)")
    return 0 if outcome.ok else 1
