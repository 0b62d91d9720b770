"""Prometheus for the local stack (Debian's ``prometheus`` package), scraping TradeX.

``tradex stack up --monitoring`` starts it on ``127.0.0.1:TRADEX_PROMETHEUS_PORT`` (default
19090, the port compose.yaml gives Prometheus) with every file under
``<stack dir>/prometheus``. Its scrape config is generated: job ``tradex`` discovers the
running processes from the target files their metrics servers write
(:mod:`tradex.observability.metrics_server`, Prometheus' file-based service discovery,
re-read by Prometheus itself as processes come and go), and the alert rules are
``deploy/prometheus/alerts.yml``.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import yaml

from tradex.infra.local_process import (
    Health,
    StackError,
    apt_install,
    port_open,
    running_pid,
    spawn_detached,
    stop_pid,
)
from tradex.infra.metrics_targets import prune, targets_dir
from tradex.infra.settings import REPO_ROOT, Settings

PROMETHEUS_PORT_DEFAULT = 19090
RULES_PATH = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
scrape_interval_s_default = 5
health_timeout_s = 2.0


def prometheus_port() -> int:
    raw = os.environ.get("TRADEX_PROMETHEUS_PORT", str(PROMETHEUS_PORT_DEFAULT))
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"TRADEX_PROMETHEUS_PORT must be a port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"TRADEX_PROMETHEUS_PORT must be 1..65535, got {port}")
    return port


def scrape_config(
    targets_glob: str, port: int, rules: Path = RULES_PATH, interval_s: int = 5
) -> dict[str, object]:
    """The prometheus.yml: TradeX's processes from their target files, Prometheus itself."""
    assert interval_s > 0, interval_s
    return {
        "global": {"scrape_interval": f"{interval_s}s", "evaluation_interval": f"{interval_s}s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "tradex",
                "file_sd_configs": [{"files": [targets_glob], "refresh_interval": "5s"}],
            },
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
        ],
    }


class LocalPrometheus:
    """One Prometheus under ``root`` (default ``<stack dir>/prometheus``)."""

    name = "prometheus"

    def __init__(
        self,
        settings: Settings,
        port: int | None = None,
        root: Path | None = None,
        targets_glob: str | None = None,
        interval_s: int = scrape_interval_s_default,
        rules: Path = RULES_PATH,
    ) -> None:
        """``targets_glob``: which target files to scrape (default: every one of the
        stack's; a test narrows it to its topic prefix); ``rules``: the alert rules file."""
        self.settings = settings
        self.port = port or prometheus_port()
        self.root = root or settings.stack_dir / "prometheus"
        self.targets_glob = targets_glob or str(targets_dir(settings) / "*.json")
        self.interval_s = interval_s
        self.rules = rules

    @property
    def config_path(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def log_path(self) -> Path:
        return self.settings.stack_dir / "logs" / f"prometheus-{self.port}.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "prometheus.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_paths(self) -> list[Path]:
        return [self.log_path]

    @staticmethod
    def ensure_installed() -> str:
        binary = shutil.which("prometheus")
        if binary is None or shutil.which("promtool") is None:
            apt_install(["prometheus"])
            binary = shutil.which("prometheus")
        if binary is None:
            raise StackError("prometheus installed but not on PATH")
        return binary

    def running_pid(self) -> int | None:
        return running_pid(self.pid_path, str(self.config_path))

    def check_ports(self) -> None:
        if self.running_pid() is None and port_open("127.0.0.1", self.port):
            raise StackError(
                f"Prometheus: port {self.port} is already in use by a process that is not this "
                f"stack's; stop it or set TRADEX_PROMETHEUS_PORT"
            )

    def write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        targets_dir(self.settings).mkdir(parents=True, exist_ok=True)
        document = scrape_config(self.targets_glob, self.port, self.rules, self.interval_s)
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.config_path

    def start(self) -> None:
        """Prune the target files of processes that are gone, write the config, start
        (a running one re-reads its config on SIGHUP)."""
        binary = self.ensure_installed()
        self.check_ports()
        prune(self.settings)
        self.write_config()
        pid = self.running_pid()
        if pid is not None:
            os.kill(pid, 1)  # SIGHUP: reload the config
            return
        argv = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=7d",
        ]
        spawn_detached(argv, self.log_path, self.pid_path)

    def stop(self) -> None:
        pid = self.running_pid()
        if pid is not None:
            stop_pid(pid, timeout_s=15.0)
        self.pid_path.unlink(missing_ok=True)

    def health(self) -> Health:
        if self.running_pid() is None:
            return Health(self.name, False, "not running", self.log_path, process_dead=True)
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=health_timeout_s) as got:
                got.read()
            with urllib.request.urlopen(
                f"{self.url}/api/v1/targets?state=active", timeout=health_timeout_s
            ) as got:
                active = json.loads(got.read())["data"]["activeTargets"]
        except (OSError, ValueError, KeyError) as exc:
            return Health(self.name, False, f"{self.url}: {exc}", self.log_path)
        tradex = [t for t in active if t.get("labels", {}).get("job") == "tradex"]
        up = sum(1 for t in tradex if t.get("health") == "up")
        return Health(
            self.name, True, f"{self.url} scraping {up}/{len(tradex)} TradeX targets up",
            self.log_path,
        )  # fmt: skip
