"""``/metrics`` of a long-running process.

    serve(settings, "accounts", instance="a", port=0)   # port 0: any free port

Serves prometheus-client's default registry on ``127.0.0.1:port`` from a daemon thread
and writes the process's target file (:mod:`tradex.infra.metrics_targets`), so ``tradex
stack status`` / ``tradex projections status`` list the endpoint and the Prometheus of
``tradex stack up --monitoring`` scrapes it. Every endpoint also reports the last
``tradex audit verify`` of its stack and prefix (:class:`AuditCollector`).

``--metrics-port`` (every ``tradex run ...``) and ``TRADEX_METRICS_PORT`` choose the port:
a number (0: any free one) or ``off``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from tradex.infra.metrics_targets import (
    METRICS_HOST,
    Target,
    audit_result_path,
    read_target,
    write_target,
)
from tradex.infra.settings import Settings

METRICS_PORT_ENV = "TRADEX_METRICS_PORT"


def parse_port(raw: str, what: str = METRICS_PORT_ENV) -> int | None:
    """``off`` → None; a port number 0..65535 (0: any free port); anything else: an error."""
    text = raw.strip().lower()
    if text == "off":
        return None
    try:
        port = int(text)
    except ValueError:
        raise ValueError(
            f"{what} must be a port number (0: any free one) or 'off', got {raw!r}"
        ) from None
    if not 0 <= port < 65536:
        raise ValueError(f"{what} must be 0..65535 or 'off', got {port}")
    return port


def default_port() -> int | None:
    """``TRADEX_METRICS_PORT`` (default 0: any free port)."""
    return parse_port(os.environ.get(METRICS_PORT_ENV, "0"))


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port", default=None, metavar="PORT",
        help=f"serve Prometheus /metrics on 127.0.0.1:PORT (0: any free port; 'off': none; "
        f"default {METRICS_PORT_ENV} or 0)",
    )  # fmt: skip


def port_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int | None:
    """The port ``--metrics-port`` or the setting asks for (a bad value: a usage error)."""
    try:
        if args.metrics_port is None:
            return default_port()
        return parse_port(args.metrics_port, "--metrics-port")
    except ValueError as exc:
        parser.error(str(exc))


def serve(settings: Settings, service: str, instance: str, port: int | None) -> Target | None:
    """Serve ``/metrics`` (None: metrics off) and write the target file."""
    if port is None:
        return None
    server, _thread = start_http_server(port, addr=METRICS_HOST)
    bound = int(server.server_port)
    report_audit(settings)
    file = write_target(settings, service, instance, bound)
    found = read_target(file)
    assert found is not None, file
    return found


def record_audit(settings: Settings, violations: int, now_s: float | None = None) -> Path:
    """Record a `tradex audit verify` run's outcome where every metrics endpoint of this
    stack and prefix reports it (tradex_audit_violations: the audit-violations alert)."""
    assert violations >= 0, violations
    path = audit_result_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    stamp = time.time() if now_s is None else now_s
    partial.write_text(json.dumps({"violations": violations, "time_s": stamp}))
    partial.replace(path)
    return path


class AuditCollector(Collector):
    """``tradex_audit_violations`` / ``tradex_audit_last_run_timestamp_seconds`` from the
    last audit's record (read when scraped; absent until an audit has run)."""

    def __init__(self, settings: Settings) -> None:
        self.path = audit_result_path(settings)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            found = json.loads(self.path.read_text())
            violations, time_s = int(found["violations"]), float(found["time_s"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        yield GaugeMetricFamily(
            "tradex_audit_violations", "Violations found by the last `tradex audit verify`",
            value=violations,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "tradex_audit_last_run_timestamp_seconds",
            "Unix time of the last `tradex audit verify`", value=time_s,
        )  # fmt: skip


_audit_registered: list[Path] = []


def report_audit(settings: Settings) -> None:
    """Expose the last audit's result on this process's /metrics (once per process)."""
    if not _audit_registered:
        collector = AuditCollector(settings)
        REGISTRY.register(collector)
        _audit_registered.append(collector.path)
