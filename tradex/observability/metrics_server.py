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
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from tradex.infra import settings as settings_module
from tradex.infra.metrics_targets import (
    Target,
    audit_result_path,
    read_target,
    write_target,
)
from tradex.infra.settings import Settings

METRICS_PORT_UNSET = -1  # no --metrics-port: the setting decides


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port", default=None, metavar="PORT",
        help="serve Prometheus /metrics on PORT (0: any free port; 'off': none; default "
        "TRADEX_METRICS_PORT or 0; the address: TRADEX_METRICS_HOST, default 127.0.0.1)",
    )  # fmt: skip


def port_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int | None:
    """The port ``--metrics-port`` asks for, or the setting's (TRADEX_METRICS_PORT) when
    not given: ``METRICS_PORT_UNSET``. A bad value is a usage error."""
    if args.metrics_port is None:
        return METRICS_PORT_UNSET
    try:
        return settings_module.metrics_port(args.metrics_port, "--metrics-port")
    except ValueError as exc:
        parser.error(str(exc))


def serve(
    settings: Settings, service: str, instance: str, port: int | None = METRICS_PORT_UNSET
) -> Target | None:
    """Serve ``/metrics`` on ``port`` (METRICS_PORT_UNSET: the setting's; None: metrics
    off) and write the target file."""
    if port == METRICS_PORT_UNSET:
        port = settings.metrics_port
    if port is None:
        return None
    server, _thread = start_http_server(port, addr=settings.metrics_host)
    bound = int(server.server_port)
    report_audit(settings)
    file = write_target(settings, service, instance, bound)
    found = read_target(file)
    assert found is not None, file
    return found


def record_audit(
    settings: Settings, violations: int, now_s: float | None = None,
    summary: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Record a `tradex audit verify` run's outcome where every metrics endpoint of this
    stack and prefix reports it (tradex_audit_violations: the audit-violations alert), and
    where the API's auditor status reads it (``summary``: what the run found, bounded:
    :func:`tradex.audit.verify.Report.summary`)."""
    assert violations >= 0, violations
    path = audit_result_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    stamp = time.time() if now_s is None else now_s
    partial.write_text(json.dumps({**(summary or {}), "violations": violations, "time_s": stamp}))
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


_audit_collector: list[AuditCollector] = []  # registered once per process


def report_audit(settings: Settings) -> None:
    """Expose the last audit's result of ``settings``' stack and prefix on this process's
    /metrics (the collector is registered once; a later call points it at its settings)."""
    if _audit_collector:
        _audit_collector[0].path = audit_result_path(settings)
        return
    collector = AuditCollector(settings)
    REGISTRY.register(collector)
    _audit_collector.append(collector)
