"""`tradex stack up | down | status | logs`: the local stack, no Docker.

Kafka (KRaft, official jars via Maven), PostgreSQL and Redis (Debian packages) run as
detached processes with every file under ``settings.stack_dir`` (default ``.stack/``);
ClickHouse is embedded through chdb (or a server when TRADEX_CLICKHOUSE_URL is set).
``up`` is idempotent: it installs what is missing, starts what is not running and waits
until every service answers. ``down`` stops the processes and keeps the data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tradex.infra import clickhouse, metrics_targets
from tradex.infra import settings as settings_module
from tradex.infra.local_kafka import LocalKafka, brokers_max
from tradex.infra.local_postgres import LocalPostgres
from tradex.infra.local_process import (
    Health,
    StackError,
    file_lock,
    pid_alive,
    pid_cmdline,
    read_pid,
    tail,
)
from tradex.infra.local_prometheus import LocalPrometheus
from tradex.infra.local_redis import LocalRedis
from tradex.infra.settings import Settings

services_all = ("kafka", "postgres", "redis", "clickhouse")
processes_all = ("api", "exchange", "metrics")  # what `status` also reports (`tradex run`, `demo`)
monitoring_all = ("prometheus",)  # started by `up --monitoring`
up_timeout_s_default = 120.0
api_health_timeout_s = 3.0
# An API whose pid file is younger than this and does not answer yet is starting (its pid
# file is written before the server binds; imports and the lifespan's connections come first).
api_start_grace_s = 60.0
health_poll_s = 0.5
log_lines_on_error = 25


def _brokers(settings: Settings, requested: int | None) -> int:
    if requested is not None:
        return requested
    recorded = LocalKafka.recorded_brokers(settings)
    return recorded if recorded is not None else settings.kafka_brokers


def _select(only: Sequence[str] | None, known: Sequence[str] = services_all) -> list[str]:
    chosen = list(known) if not only else list(dict.fromkeys(only))
    for name in chosen:
        if name == "metrics" and name not in known:
            raise ValueError("'metrics' lists the /metrics of `tradex run ...` processes: "
                             "start those; `up --monitoring` starts Prometheus")  # fmt: skip
        if name in processes_all and name not in known:
            raise ValueError(
                f"{name!r} is a process, not a service: start it with `tradex run {name}`"
            )
        if name not in known:
            raise ValueError(f"unknown service {name!r}; choose from {', '.join(known)}")
    return chosen


def api_health(settings: Settings) -> Health:
    """The API processes of this stack dir (``run/api-<port>.pid``), each asked for its
    ``/health``; none running is not a failure (state ``off``), nor one that does not answer
    yet within ``api_start_grace_s`` of its start, or that exits as it is asked."""
    found = []
    for pid_file in sorted((settings.stack_dir / "run").glob("api-*.pid")):
        lines = pid_file.read_text().split("\n")
        pid = read_pid(pid_file)
        if pid is None or not pid_alive(pid) or "run api" not in pid_cmdline(pid):
            continue
        port, host, prefix = lines[1], lines[2], lines[3] if len(lines) > 3 else ""
        url = f"http://{host}:{port}/health"
        try:
            with urllib.request.urlopen(url, timeout=api_health_timeout_s) as answer:
                body = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            if time.time() - pid_file.stat().st_mtime < api_start_grace_s:
                found.append(f"{url} (pid {pid}, prefix {prefix!r}) starting: {exc}")
                continue
            time.sleep(0.5)
            if not pid_alive(pid):  # it was stopping
                continue
            return Health("api", False, f"{url}: {exc}")
        found.append(f"{url} (pid {pid}, prefix {prefix!r}, instruments {body.get('instruments')})")
    if not found:
        return Health("api", True, "not running (start it with `tradex run api`)", state="off")
    return Health("api", True, "; ".join(found))


def metrics_health(settings: Settings) -> Health:
    """The /metrics endpoints of the running TradeX processes (their target files)."""
    found = metrics_targets.targets(settings)
    stale = len(metrics_targets.targets(settings, alive_only=False)) - len(found)
    if not found:
        return Health("metrics", True, "no TradeX process serves /metrics", state="off")
    listed = "; ".join(f"{t.prefix}{t.service}/{t.instance} {t.url} (pid {t.pid})" for t in found)
    if stale:
        listed += f"; {stale} file(s) of exited processes (pruned by `up --monitoring`)"
    return Health("metrics", True, listed)


def clickhouse_health(settings: Settings) -> Health:
    if settings.clickhouse_url:
        where = settings.clickhouse_url
    else:
        where = f"chdb at {settings.clickhouse_path}"
        holder = clickhouse.holder_pid(settings.clickhouse_path)
        opened_here = settings.clickhouse_path.resolve() in clickhouse.ChdbClickHouse._sessions
        if holder is not None and holder != os.getpid() and pid_alive(holder) and not opened_here:
            return Health("clickhouse", True, f"{where} (embedded, open in process {holder})")
    try:
        client = clickhouse.connect(settings)
        try:
            rows = client.query_rows("SELECT 1, version()")
        finally:
            client.close()
    except Exception as exc:  # chdb/clickhouse-connect errors: report, don't crash status
        return Health("clickhouse", False, f"{where}: {exc}")
    if rows[0][0] != 1:
        return Health("clickhouse", False, f"{where}: SELECT 1 returned {rows!r}")
    return Health("clickhouse", True, f"ClickHouse {rows[0][1]} {where}")


class Stack:
    """The four services of one stack dir."""

    def __init__(self, settings: Settings, brokers: int | None = None) -> None:
        self.settings = settings
        self.kafka = LocalKafka(settings, _brokers(settings, brokers))
        self.postgres = LocalPostgres(settings)
        self.redis = LocalRedis(settings)
        self.prometheus = LocalPrometheus(settings)

    def health(self, name: str) -> Health:
        if name == "kafka":
            return self.kafka.health()
        if name == "postgres":
            return self.postgres.health()
        if name == "redis":
            return self.redis.health()
        if name == "api":
            return api_health(self.settings)
        if name == "metrics":
            return metrics_health(self.settings)
        if name == "prometheus":
            return self.prometheus.health()
        assert name == "clickhouse", name
        return clickhouse_health(self.settings)

    def log_paths(self, name: str) -> list[Path]:
        if name == "kafka":
            return self.kafka.log_paths()
        if name == "postgres":
            return self.postgres.log_paths()
        if name == "redis":
            return self.redis.log_paths()
        if name == "prometheus":
            return self.prometheus.log_paths()
        return []


def up(
    settings: Settings | None = None,
    brokers: int | None = None,
    only: Sequence[str] | None = None,
    timeout_s: float = up_timeout_s_default,
    monitoring: bool = False,
) -> list[Health]:
    """Start what is not running and wait until every chosen service answers;
    ``monitoring``: also Prometheus, scraping the TradeX processes (re-configured if running).

    Raises StackError naming the service and its log when one does not come up in time.
    """
    settings = settings or settings_module.load()
    chosen = _select(only)
    assert timeout_s > 0, timeout_s
    if brokers is not None and not 1 <= brokers <= brokers_max:
        raise ValueError(f"--brokers must be 1..{brokers_max}, got {brokers}")
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(settings.stack_dir / ".lock"):
        stack = Stack(settings, brokers)
        # Refuse a port held by a stranger before starting anything.
        for name in chosen:
            if name == "kafka":
                stack.kafka.check_ports()
            elif name == "postgres":
                stack.postgres.check_ports()
            elif name == "redis":
                stack.redis.check_ports()
        if "kafka" in chosen:
            stack.kafka.ensure_installed()
            stack.kafka.start()  # does not wait: the JVMs boot while the rest starts
        if "postgres" in chosen:
            stack.postgres.start()
        if "redis" in chosen:
            stack.redis.start()
        if monitoring:
            stack.prometheus.check_ports()
            stack.prometheus.start()
            chosen.append("prometheus")
        return _wait_healthy(stack, chosen, timeout_s)


def _wait_healthy(stack: Stack, chosen: list[str], timeout_s: float) -> list[Health]:
    deadline = time.monotonic() + timeout_s
    results: dict[str, Health] = {}
    while True:
        for name in chosen:
            if name not in results or not results[name].ok:
                results[name] = stack.health(name)
        failing = [results[name] for name in chosen if not results[name].ok]
        if not failing:
            return [results[name] for name in chosen]
        if any(h.process_dead for h in failing) or time.monotonic() >= deadline:
            break
        time.sleep(health_poll_s)
    dead = any(h.process_dead for h in failing)
    lines = [
        "stack up: a process exited:" if dead else f"stack up: not healthy after {timeout_s:.0f} s:"
    ]
    for health in failing:
        lines.append(f"  {health.service}: {health.detail}")
        for path in stack.log_paths(health.service):
            lines.append(f"  --- last lines of {path} ---")
            lines.append(tail(path, log_lines_on_error))
    raise StackError("\n".join(lines))


def status(settings: Settings | None = None, only: Sequence[str] | None = None) -> list[Health]:
    """The services' health, then the stack's processes' (the API, /metrics endpoints),
    and Prometheus when `up --monitoring` started it."""
    settings = settings or settings_module.load()
    stack = Stack(settings)
    known = (*services_all, *processes_all, *monitoring_all)
    chosen = _select(only, known)
    if not only and stack.prometheus.running_pid() is None:
        chosen.remove("prometheus")
    found = []
    for name in chosen:
        if name == "exchange":  # one line per service of a running exchange
            from tradex.infra import exchange

            found += exchange.healths(settings)
        else:
            found.append(stack.health(name))
    return found


def down(
    settings: Settings | None = None, wipe: bool = False, only: Sequence[str] | None = None
) -> None:
    """Stop the chosen services (data kept unless wipe)."""
    settings = settings or settings_module.load()
    chosen = _select(only)
    if wipe and len(chosen) != len(services_all):
        raise ValueError("--wipe removes the whole stack dir: it cannot be combined with --only")
    if not settings.stack_dir.exists():
        return
    with file_lock(settings.stack_dir / ".lock"):
        stack = Stack(settings)
        if "kafka" in chosen:
            stack.kafka.stop()
        if "postgres" in chosen:
            stack.postgres.stop()
        if "redis" in chosen:
            stack.redis.stop()
        if len(chosen) == len(services_all):  # a whole `down`: monitoring too
            stack.prometheus.stop()
        if wipe:
            stack.postgres.wipe()
            for child in settings.stack_dir.iterdir():
                if child.name == ".lock":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def format_health(results: Sequence[Health]) -> str:
    lines = []
    for health in results:
        state = health.state or ("up" if health.ok else "DOWN")
        line = f"{health.service:<11} {state:<5} {health.detail}"
        if not health.ok and health.log_path is not None:
            line += f"  (log: {health.log_path})"
        lines.append(line)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradex stack", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    only_help = f"comma-separated subset of {','.join(services_all)}"
    p_up = sub.add_parser("up", help="start what is not running, wait until healthy")
    p_up.add_argument("--brokers", type=int, default=None, help="Kafka nodes (default 1)")
    p_up.add_argument("--only", default="", help=only_help)
    p_up.add_argument("--timeout", type=float, default=up_timeout_s_default, help="seconds")
    p_up.add_argument("--quiet", action="store_true", help="print nothing when all is well")
    p_up.add_argument(
        "--monitoring", action="store_true",
        help="also start Prometheus (Debian's package) scraping the TradeX processes' /metrics",
    )  # fmt: skip
    p_down = sub.add_parser("down", help="stop the processes (keeps data)")
    p_down.add_argument("--wipe", action="store_true", help="also delete the stack's data")
    p_down.add_argument("--only", default="", help=only_help)
    p_status = sub.add_parser("status", help="health of each service; exit 1 if any is down")
    p_status.add_argument("--only", default="", help=only_help)
    p_logs = sub.add_parser("logs", help="last lines of a service's log")
    p_logs.add_argument("service", nargs="?", default=None, help="kafka, kafka-N, postgres, redis")
    p_logs.add_argument("-n", "--lines", type=int, default=50)
    return parser


def _only(raw: str) -> list[str] | None:
    return [part.strip() for part in raw.split(",") if part.strip()] or None


def _logs(settings: Settings, service: str | None, lines: int) -> int:
    stack = Stack(settings)
    paths: list[Path] = []
    if service is None:
        for name in services_all:
            paths += stack.log_paths(name)
    elif service.startswith("kafka-") and service[6:].isdigit():
        paths = [p for p in stack.kafka.log_paths() if p.name == f"{service}.log"]
    elif service in services_all:
        paths = stack.log_paths(service)
    if not paths:
        print(f"tradex stack logs: no log for {service!r}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"==> {path} <==")
        print(tail(path, lines) if path.exists() else "(no log yet)")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = settings_module.load()
    try:
        if args.action == "up":
            results = up(settings, args.brokers, _only(args.only), args.timeout, args.monitoring)
            if not args.quiet:
                print(format_health(results))
            return 0
        if args.action == "down":
            down(settings, args.wipe, _only(args.only))
            print(
                f"stack down ({'data wiped' if args.wipe else 'data kept'}): {settings.stack_dir}"
            )
            return 0
        if args.action == "status":
            results = status(settings, _only(args.only))
            print(format_health(results))
            return 0 if all(h.ok for h in results) else 1
        assert args.action == "logs", args.action
        if args.lines < 0:
            print("tradex stack logs: --lines must be >= 0", file=sys.stderr)
            return 2
        return _logs(settings, args.service, args.lines)
    except (StackError, ValueError) as exc:
        print(f"tradex stack {args.action}: {exc}", file=sys.stderr)
        return 1
