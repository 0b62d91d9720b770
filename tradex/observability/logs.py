"""Structured logs: one JSON object per line, one line per event that matters.

    logs.setup("accounts-0")                      # a service: JSON lines on stderr, which
                                                  # its supervisor writes to its log file
    logs.setup("tradex audit", log_file=path)     # a command: JSON lines to the file (its
                                                  # own warnings also on stderr, as text)
    logs.event(log, "dead letter", logging.WARNING, stage="accounts", partition=3,
               offset=42, trace_id="4bf9...", reason="undecodable")

Every process calls :func:`setup` once (services through
``tradex.infra.stage.configure_service_logging``, every other command through
``tradex.cli``); ``TRADEX_LOG_FILE`` sends a service's lines to a file instead of stderr.
A line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``process``, ``message``,
and the event's fields (``event``, ``stage``, ``topic``, ``partition``, ``offset``,
``trace_id``, ...) when it has them.

librdkafka's own lines (``%3|...|FAIL|...`` when a broker is down) are records of the
:data:`LIBRDKAFKA` logger: every client configuration built by :mod:`tradex.infra.kafka`
names it (confluent-kafka's ``logger`` setting). That logger never prints by itself (a
``NullHandler``: without :func:`setup` its lines go nowhere), so a user's terminal never
shows them; after :func:`setup` they are JSON lines with ``facility`` and ``client``.

Standard library only: ``tradex stack status`` imports this without Kafka or OpenTelemetry.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

LIBRDKAFKA = "tradex.librdkafka"
FIELDS = "tradex_fields"  # the LogRecord attribute holding an event's fields
LOG_FILE_ENV = "TRADEX_LOG_FILE"
OURS = "tradex_handler"  # marks the handlers setup() installed (and replaces)

logging.getLogger(LIBRDKAFKA).addHandler(logging.NullHandler())


class JsonFormatter(logging.Formatter):
    """A LogRecord as one JSON line (see the module doc)."""

    def __init__(self, process: str) -> None:
        super().__init__()
        assert process, "a process name"
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process,
        }
        if record.name == LIBRDKAFKA and isinstance(record.args, tuple) and len(record.args) == 3:
            # confluent-kafka logs librdkafka's (facility, client name, text) as "%s [%s] %s"
            facility, client, text = record.args
            line.update(facility=str(facility), client=str(client), message=str(text))
        else:
            line["message"] = record.getMessage()
        fields = getattr(record, FIELDS, None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)


def _utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def setup(process: str, *, log_file: Path | None = None, level: int = logging.INFO) -> None:
    """This process's logs as JSON lines (replaces the handlers a previous call installed,
    keeps others, e.g. pytest's; idempotent).

    A service (no ``log_file``): to ``TRADEX_LOG_FILE`` if set, else stderr. A command
    (``log_file``): every line to the file; its own warnings also on stderr as plain text
    (what Python printed before any set-up), librdkafka's never."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, OURS, False):
            root.removeHandler(old)
            old.close()
    path = log_file or (Path(os.environ[LOG_FILE_ENV]) if os.environ.get(LOG_FILE_ENV) else None)
    handler: logging.Handler
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    handlers = [handler]
    if log_file is not None:
        terminal = logging.StreamHandler(sys.stderr)
        terminal.setLevel(logging.WARNING)
        terminal.addFilter(lambda record: not record.name.startswith(LIBRDKAFKA))
        handlers.append(terminal)
    for new in handlers:
        setattr(new, OURS, True)
        root.addHandler(new)
    root.setLevel(level)


def command_log_file(stack_dir: Path) -> Path:
    """Where a command's (not a service's) lines go: ``<stack dir>/logs/tradex.log``."""
    return stack_dir / "logs" / "tradex.log"


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """One event line: ``message`` is ``name``, the fields go beside it."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={FIELDS: {"event": name, **fields}})
