"""``tradex run api [--host H] [--port P] [--workers N]``: the REST API under uvicorn.

Each worker is a process with its own connections, command clients (one Kafka tail each)
and caches; they share the auth schema, Redis and the master key. The process writes
``<stack dir>/run/api-<port>.pid`` (pid, port, topic prefix) so ``tradex stack status``
finds it and asks its ``/health``. Its ``/metrics`` (Prometheus) is listed in
``<stack dir>/run/metrics/`` (:mod:`tradex.observability.metrics_server`); with several
workers, each scrape is answered by one of them (each has its own registry).
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import uvicorn
from starlette.applications import Starlette

from tradex.infra import metrics_targets
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import positive_int
from tradex.infra.reachable import require_stack
from tradex.observability import logs, tracing
from tradex.queries import config as config_module
from tradex.queries.app import create_app

WORKERS_MAX = 64
WS_PING_INTERVAL_S = 20.0  # protocol pings to every WebSocket client (heartbeat) ...
WS_PING_TIMEOUT_S = 20.0  # ... closed when no pong comes back within this
WS_MESSAGE_BYTES_MAX = 65_536  # a client frame (the gateway refuses JSON over 4 KiB itself)


def app_factory() -> Starlette:
    """The app as each uvicorn worker builds it (settings from the environment)."""
    settings = settings_module.load()
    logs.setup(_process_name())  # a worker process (spawned) sets its logs up again
    tracing.configure("tradex-api")  # before create_app: it adds the request spans if on
    return create_app(settings, config_module.load(settings))


def _process_name() -> str:
    return f"api-{os.environ.get('TRADEX_API_PORT', '')}".rstrip("-")


def pid_path(stack_dir: os.PathLike[str] | str, port: int) -> str:
    return os.path.join(stack_dir, "run", f"api-{port}.pid")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex run api", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=None, help="default TRADEX_API_HOST or 127.0.0.1")
    parser.add_argument("--port", type=positive_int, default=None, help="default 18080")
    parser.add_argument("--workers", type=positive_int, default=1)
    args = parser.parse_args(argv)
    if args.workers > WORKERS_MAX:
        parser.error(f"--workers must be <= {WORKERS_MAX}")
    if args.port is not None and args.port > 65_535:
        parser.error("--port must be <= 65535")
    settings = settings_module.load()
    require_stack(settings, ("kafka", "postgres", "redis"))  # opened later, in the lifespan
    config = config_module.load(settings)
    config = dataclasses.replace(
        config, host=args.host or config.host, port=args.port or config.port
    )
    os.environ["TRADEX_API_HOST"], os.environ["TRADEX_API_PORT"] = config.host, str(config.port)
    logs.setup(_process_name())
    path = pid_path(settings.stack_dir, config.port)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write(f"{os.getpid()}\n{config.port}\n{config.host}\n{settings.topic_prefix}\n")
    metrics_targets.write_target(settings, "api", str(config.port), config.port, host=config.host)
    try:
        uvicorn.run(
            "tradex.queries.service:app_factory", factory=True, host=config.host,
            port=config.port, workers=args.workers, log_level="warning", access_log=False,
            ws="websockets-sansio", ws_ping_interval=WS_PING_INTERVAL_S,
            ws_ping_timeout=WS_PING_TIMEOUT_S, ws_max_size=WS_MESSAGE_BYTES_MAX,
        )  # fmt: skip
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return 0
