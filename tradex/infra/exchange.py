"""The exchange's services as processes: one home for starting, watching and stopping them.

    exchange = Exchange(settings, log_dir)
    exchange.start([Service("matcher", ("run", "matcher"), Ready("group", "matcher")), ...])
    exchange.wait_ready(timeout_s=120)      # each service's readiness check, or an error
    exchange.states()                        # name, pid, up | starting | exited N, log
    exchange.stop()                          # SIGTERM, wait, SIGKILL; in reverse order

Each service is ``python -m tradex.cli WORDS`` in its own session (a Ctrl-C on the
terminal reaches the supervisor only, which stops them in order), with the exchange's
settings in its environment (topic prefix, databases, chdb folder) and its output in
``<log_dir>/<name>.log``. A run file ``<stack dir>/run/exchange-<prefix>.json`` lists the
processes, so ``tradex stack status`` shows a running exchange's services and
``tradex exchange stop`` stops one a supervisor left running (``tradex demo --keep``).
Which services make an exchange, and when it is idle, is :mod:`tradex.exchange_services`
(this module, like all of ``tradex.infra``, knows no other TradeX package).

    tradex exchange status [--prefix P]     # every running exchange of the stack dir
    tradex exchange stop [--prefix P]       # stop them (or the one of prefix P)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tradex.infra import settings as settings_module
from tradex.infra.local_process import (
    Health,
    StackError,
    pid_alive,
    pid_cmdline,
    stop_pids,
    tail,
)
from tradex.infra.settings import REPO_ROOT, Settings

services_max = 32  # services of one exchange
stop_timeout_s = 30.0
ready_poll_s = 0.5
http_timeout_s = 2.0
log_lines_on_error = 15


@dataclasses.dataclass(frozen=True)
class Ready:
    """How to tell a service is ready: ``group`` (its consumer group, logical name, has a
    member with partitions), ``http`` (``target`` answers 200), ``log`` (its log file
    contains ``target``), or ``alive`` (running is enough)."""

    kind: str
    target: str = ""

    def __post_init__(self) -> None:
        assert self.kind in ("group", "http", "log", "alive"), self.kind


@dataclasses.dataclass(frozen=True)
class Service:
    name: str  # unique in the exchange; its log is <name>.log
    words: tuple[str, ...]  # after `python -m tradex.cli`
    ready: Ready
    module: str = "tradex.cli"


@dataclasses.dataclass(frozen=True)
class ServiceState:
    name: str
    pid: int
    state: str  # up | starting | exited N | gone
    log_path: Path

    @property
    def running(self) -> bool:
        return self.state in ("up", "starting")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes :func:`tradex.infra.settings.load` give ``settings``."""
    return {
        "TRADEX_STACK_DIR": str(settings.stack_dir),
        "TRADEX_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TRADEX_POSTGRES_HOST": settings.postgres_host,
        "TRADEX_POSTGRES_PORT": str(settings.postgres_port),
        "TRADEX_POSTGRES_USER": settings.postgres_user,
        "TRADEX_POSTGRES_PASSWORD": settings.postgres_password,
        "TRADEX_POSTGRES_DB": settings.postgres_db,
        "TRADEX_REDIS_URL": settings.redis_url,
        "TRADEX_CLICKHOUSE_URL": settings.clickhouse_url,
        "TRADEX_CLICKHOUSE_PATH": str(settings.clickhouse_path),
        "TRADEX_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "TRADEX_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "TRADEX_TOPIC_PREFIX": settings.topic_prefix,
    }


def run_file(settings: Settings) -> Path:
    return settings.stack_dir / "run" / f"exchange-{settings.topic_prefix or 'default'}.json"


def group_ready(admin: Any, settings: Settings, group: str) -> bool:
    """The consumer group (logical name) is stable with a member that holds partitions."""
    from confluent_kafka import ConsumerGroupState

    futures = admin.describe_consumer_groups([settings.topic(group)], request_timeout=5)
    try:
        found = next(iter(futures.values())).result()
    except Exception:  # not known yet: the member has not joined
        return False
    if found.state != ConsumerGroupState.STABLE:
        return False
    return any(member.assignment.topic_partitions for member in found.members)


def free_port(preferred: int = 0, host: str = "127.0.0.1") -> int:
    """``preferred`` when nothing listens there on ``host``, else (or for 0) any free port."""
    with socket.socket() as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=http_timeout_s) as answer:
            return int(answer.status) == 200
    except (OSError, ValueError):
        return False


class Exchange:
    """The services of one exchange (one topic prefix), started by this process."""

    def __init__(self, settings: Settings, log_dir: Path, env: dict[str, str] | None = None,
                 stop_timeout_s: float = stop_timeout_s) -> None:  # fmt: skip
        assert stop_timeout_s > 0, stop_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.settings = settings
        self.log_dir = log_dir
        self.env = dict(os.environ, **settings_env(settings), **(env or {}))
        self.services: dict[str, Service] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ready: set[str] = set()
        self._admin: Any = None  # one admin client for the readiness checks

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, services: Sequence[Service]) -> None:
        """Start each service (not waiting for it); names must be new."""
        assert len(self.services) + len(services) <= services_max, len(services)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in services:
            assert service.name not in self.processes, f"{service.name} already started"
            with self.log_path(service.name).open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", service.module, *service.words], cwd=REPO_ROOT,
                    env=self.env, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            self.services[service.name] = service
            self.processes[service.name] = process
            self.ready.discard(service.name)
        self._write_run_file()

    def is_ready(self, name: str) -> bool:
        service, process = self.services[name], self.processes[name]
        if process.poll() is not None:
            return False
        if name in self.ready:
            return True
        kind, target = service.ready.kind, service.ready.target
        if kind == "group":
            if self._admin is None:
                from tradex.infra.kafka import admin_client

                self._admin = admin_client(self.settings, log_level=0)  # quiet: the terminal
            ok = group_ready(self._admin, self.settings, target)
        elif kind == "http":
            ok = http_ready(target)
        elif kind == "log":
            ok = target in tail(self.log_path(name), 200)
        else:
            ok = True
        if ok:
            self.ready.add(name)
        return ok

    def wait_ready(self, timeout_s: float, names: Iterable[str] | None = None) -> float:
        """Until every service (or those named) is ready; the seconds it took. A service
        that exits or is not ready in time: StackError naming it, with its log's end."""
        chosen = list(self.services) if names is None else list(names)
        started = time.monotonic()
        while True:
            self.check_alive(chosen)
            waiting = [name for name in chosen if not self.is_ready(name)]
            if not waiting:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise StackError(self._explain(waiting[0], f"not ready after {timeout_s:.0f} s"))
            time.sleep(ready_poll_s)

    def check_alive(self, names: Iterable[str] | None = None) -> None:
        for name in self.services if names is None else names:
            code = self.processes[name].poll()
            if code is not None:
                raise StackError(self._explain(name, f"exited with status {code}"))

    def _explain(self, name: str, what: str) -> str:
        path = self.log_path(name)
        return (f"{name} ({' '.join(self.services[name].words)}) {what}; log {path}:\n"
                f"{tail(path, log_lines_on_error)}")  # fmt: skip

    def states(self) -> list[ServiceState]:
        found = []
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                state = f"exited {code}"
            else:
                state = "up" if name in self.ready else "starting"
            found.append(ServiceState(name, process.pid, state, self.log_path(name)))
        return found

    def stop(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Stop the services (all, or those named) in reverse start order: SIGTERM, wait
        up to ``stop_timeout_s``, SIGKILL. Their exit statuses."""
        chosen = list(self.processes) if names is None else list(names)
        codes = {}
        for name in reversed(chosen):
            process = self.processes[name]
            if process.poll() is None:
                stop_pids([process.pid], self.stop_timeout_s)
            codes[name] = process.wait()
            del self.processes[name]
            del self.services[name]
            self.ready.discard(name)
        self._write_run_file()
        return codes

    def detach(self) -> None:
        """Leave the services running (``tradex exchange stop`` stops them later)."""
        self.processes.clear()
        self.services.clear()

    def _write_run_file(self) -> None:
        path = run_file(self.settings)
        if not self.processes:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "prefix": self.settings.topic_prefix,
            "services": [
                {
                    "name": name,
                    "pid": process.pid,
                    "log": str(self.log_path(name)),
                    "module": self.services[name].module,
                }
                for name, process in self.processes.items()
            ],
        }
        path.write_text(json.dumps(body, indent=2))


# -- exchanges left running (read from their run files) ----------------------------------


def recorded(settings: Settings) -> list[tuple[Path, str, list[ServiceState]]]:
    """Each run file of the stack dir: its path, prefix and services as they are now."""
    found = []
    for path in sorted((settings.stack_dir / "run").glob("exchange-*.json")):
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        states = []
        for entry in body.get("services", [])[:services_max]:
            pid = int(entry["pid"])
            marker = str(entry.get("module", "tradex.cli"))  # guards against a reused pid
            alive = pid_alive(pid) and marker in pid_cmdline(pid)
            states.append(ServiceState(entry["name"], pid, "up" if alive else "gone",
                                       Path(entry["log"])))  # fmt: skip
        found.append((path, str(body.get("prefix", "")), states))
    return found


def healths(settings: Settings) -> list[Health]:
    """One line per running exchange service for ``tradex stack status``."""
    lines = []
    for _path, prefix, states in recorded(settings):
        for state in states:
            if state.running:
                lines.append(Health(f"{state.name}", True,
                                    f"pid {state.pid}, prefix {prefix!r}, log {state.log_path}"))  # fmt: skip
    if not lines:
        return [Health("exchange", True, "no services running (`tradex demo --keep` starts "
                       "them)", state="off")]  # fmt: skip
    return lines


def stop_recorded(settings: Settings, prefix: str | None) -> list[str]:
    """Stop the exchanges left running (or the one of ``prefix``); the names stopped."""
    stopped = []
    for path, found_prefix, states in recorded(settings):
        if prefix is not None and found_prefix != prefix:
            continue
        running = [s for s in states if s.running]
        for state in reversed(running):
            stop_pids([state.pid], stop_timeout_s)
            stopped.append(f"{found_prefix}{state.name}")
        path.unlink(missing_ok=True)
    return stopped


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex exchange", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("status", "stop"))
    parser.add_argument("--prefix", default=None, help="only the exchange of this topic prefix")
    args = parser.parse_args(argv)
    settings = settings_module.load()
    if args.action == "stop":
        stopped = stop_recorded(settings, args.prefix)
        print(f"stopped {len(stopped)} services" + (f": {', '.join(stopped)}" if stopped else ""))
        return 0
    exchanges = [e for e in recorded(settings) if args.prefix in (None, e[1])]
    if not exchanges:
        print("no exchange running")
    for _path, prefix, states in exchanges:
        print(f"exchange {prefix!r}:")
        for state in states:
            print(f"  {state.name:<22} {state.state:<6} pid {state.pid}  log {state.log_path}")
    return 0
