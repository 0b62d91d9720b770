"""Where each TradeX process's ``/metrics`` endpoint is: one small file per process.

``<stack dir>/run/metrics/<prefix><service>-<instance>.json``, in Prometheus' file-based
service discovery format (one target group; TradeX's own fields as labels, the pid under a
``__`` label that Prometheus drops), written atomically by the process that serves there
and removed at its clean exit. ``tradex stack status`` and ``tradex projections status``
list them; the Prometheus of ``tradex stack up --monitoring`` scrapes them (it re-reads
the folder by itself). A crashed process leaves its file, so its target is down (the
"stage down" alert) until a restart under the same name overwrites it or ``tradex stack
up --monitoring`` prunes the files of processes that are gone.
"""

from __future__ import annotations

import atexit
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tradex.infra.local_process import pid_alive
from tradex.infra.settings import Settings

METRICS_HOST = "127.0.0.1"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def targets_dir(settings: Settings) -> Path:
    """TRADEX_METRICS_TARGETS_DIR, or ``<stack dir>/run/metrics``."""
    return settings.metrics_targets_dir or settings.stack_dir / "run" / "metrics"


@dataclass(frozen=True)
class Target:
    """One process's metrics endpoint, as its target file says."""

    service: str
    instance: str
    prefix: str
    pid: int
    address: str  # host:port
    path: str  # the metrics path (/metrics)
    file: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}{self.path}"


def write_target(
    settings: Settings,
    service: str,
    instance: str,
    port: int,
    path: str = "/metrics",
    host: str | None = None,
) -> Path:
    """Record this process's endpoint (file_sd format + TradeX's own fields); removed at
    exit. ``host``: where it listens (default TRADEX_METRICS_HOST; any address: 127.0.0.1)."""
    assert _NAME_RE.match(service), service
    assert _NAME_RE.match(instance), instance
    assert 0 < port < 65536, port
    folder = targets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{settings.topic_prefix}{service}-{instance}.json"
    labels = {
        "service": service,
        "tradex_instance": instance,
        "prefix": settings.topic_prefix,
        "__tradex_pid": str(os.getpid()),  # "__": dropped by Prometheus, read by TradeX
        "__metrics_path__": path,
    }
    listening = host or settings.metrics_host
    address = METRICS_HOST if listening in ("", "0.0.0.0", "::") else listening
    document = [{"targets": [f"{address}:{port}"], "labels": labels}]
    partial = file.with_name(f".{file.name}.{os.getpid()}")
    partial.write_text(json.dumps(document))
    partial.replace(file)  # atomic: Prometheus never reads half a file
    pid = os.getpid()

    def remove() -> None:
        found = read_target(file)
        if found is not None and found.pid == pid:  # not a successor's
            file.unlink(missing_ok=True)

    atexit.register(remove)
    return file


def read_target(file: Path) -> Target | None:
    """A target file's contents; None if it is gone or not one of ours."""
    try:
        document = json.loads(file.read_text())
        group = document[0]
        labels = group["labels"]
        return Target(
            labels["service"], labels["tradex_instance"], labels["prefix"], int(labels["__tradex_pid"]),
            group["targets"][0], labels["__metrics_path__"], file,
        )  # fmt: skip
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def targets(settings: Settings, *, alive_only: bool = True) -> list[Target]:
    """The endpoints listed in the stack dir (by default: of processes still running)."""
    folder = targets_dir(settings)
    if not folder.is_dir():
        return []
    found = [read_target(file) for file in sorted(folder.glob("*.json"))]
    return [t for t in found if t is not None and (not alive_only or pid_alive(t.pid))]


def prune(settings: Settings) -> list[Path]:
    """Remove the target files of processes that are gone (a crash leaves its file)."""
    removed = []
    for target in targets(settings, alive_only=False):
        if not pid_alive(target.pid):
            target.file.unlink(missing_ok=True)
            removed.append(target.file)
    return removed


# -- the ledger audit's last result (reported by every endpoint of the stack and prefix) ----


def audit_result_path(settings: Settings) -> Path:
    return settings.stack_dir / "run" / "audit" / f"last{settings.topic_prefix or '-'}.json"
