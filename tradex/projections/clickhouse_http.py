"""Querying a chdb folder that another process holds: a small read-only HTTP endpoint.

chdb opens a folder in one process at a time, and the ClickHouse projector holds its
folder while it runs. So that process also answers queries (``tradex run projector
clickhouse --http-port PORT``; by default any free port):

    POST /query      body: one SELECT (or WITH ... SELECT), UTF-8
                     200: the result as an Arrow IPC stream; 403: not a SELECT;
                     400: ClickHouse refused it (the message in the body)
    GET  /health     {"pid": ..., "folder": ...}

It listens on 127.0.0.1 only and writes ``tradex_query.json`` (pid, port) into the folder,
removed when it stops. A query is checked to start with SELECT or WITH and runs wrapped,
``SELECT * FROM (<query>) SETTINGS readonly = 1``, so it is one statement that cannot
write; it still runs in the projector's process (table functions such as ``file()`` read
what that process may read) and shares its one chdb session with the writer: statements
take turns, so a long query delays the next batch.

:func:`reading` is how a reader gets a connection, whoever holds the folder: a server
when ``TRADEX_CLICKHOUSE_URL`` is set; this endpoint when another live process holds the
folder and serves it (waiting a few seconds for a starting projector's endpoint); else the
folder itself, borrowed for the read. :func:`administering`
is the same for the few statements that change versions: never through the endpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa

from tradex.infra import clickhouse
from tradex.infra.clickhouse import ChdbClickHouse, ClickHouse, ClickHouseError
from tradex.infra.local_process import pid_alive
from tradex.infra.settings import Settings
from tradex.projections.projector import ProjectorBusy

log = logging.getLogger(__name__)

ENDPOINT_FILE = "tradex_query.json"
HOST = "127.0.0.1"
SQL_BYTES_MAX = 1_000_000
QUERY_TIMEOUT_S = 300.0
ENDPOINT_WAIT_S = 5.0  # a holder without an endpoint yet: how long a reader waits for it
ENDPOINT_POLL_S = 0.05
ARROW_STREAM = "application/vnd.apache.arrow.stream"

_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z]+")


class NotASelect(ValueError):
    """The endpoint answers SELECT queries only."""


def read_only(sql: str) -> str:
    """``sql`` as the one read-only statement the endpoint runs; NotASelect otherwise."""
    text = _LEADING.sub("", sql).rstrip().rstrip(";").rstrip()
    word = _FIRST_WORD.match(text)
    if word is None or word.group(0).upper() not in ("SELECT", "WITH"):
        raise NotASelect(f"only SELECT queries are answered here, not {text[:40]!r}")
    return f"SELECT * FROM (\n{text}\n) SETTINGS readonly = 1"


def to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def held_elsewhere(folder: Path) -> int | None:
    """The pid of another live process holding the chdb ``folder``, if any."""
    pid = clickhouse.holder_pid(folder)
    if pid is None or pid == os.getpid() or not pid_alive(pid):
        return None
    return pid


def endpoint(folder: Path) -> str | None:
    """The URL of the query endpoint of the process holding ``folder``, if it serves one."""
    pid = held_elsewhere(folder)
    if pid is None:
        return None
    try:
        found = json.loads((folder / ENDPOINT_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if found.get("pid") != pid:
        return None  # left by an earlier holder
    return f"http://{HOST}:{int(found['port'])}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("query endpoint: " + format, *args)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != "/health":
            self._reply(404, b"GET /health or POST /query\n", "text/plain")
            return
        info = {"pid": os.getpid(), "folder": str(self.server.folder)}
        self._reply(200, json.dumps(info).encode(), "application/json")

    def do_POST(self) -> None:
        if self.path != "/query":
            self._reply(404, b"POST /query\n", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= SQL_BYTES_MAX:
            self._reply(413, f"a query is 1..{SQL_BYTES_MAX} bytes\n".encode(), "text/plain")
            return
        try:
            sql = read_only(self.rfile.read(length).decode("utf-8"))
        except (NotASelect, UnicodeDecodeError) as exc:
            self._reply(403, f"{exc}\n".encode(), "text/plain")
            return
        try:
            result = self.server.ch.query_arrow(sql)
        except ClickHouseError as exc:
            self._reply(400, f"{exc}\n".encode(), "text/plain")
            return
        self.server.answered += 1
        self._reply(200, to_ipc(result), ARROW_STREAM)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    folder: Path
    ch: ChdbClickHouse
    answered: int = 0


class QueryServer:
    """The endpoint of the process holding a chdb folder (see the module doc)."""

    def __init__(self, settings: Settings, port: int = 0) -> None:
        if settings.clickhouse_url:
            raise ValueError("a ClickHouse server answers its own queries: no endpoint needed")
        assert 0 <= port < 65536, port
        self.folder = settings.clickhouse_path.resolve()
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def answered(self) -> int:
        return self._server.answered if self._server is not None else 0

    def start(self) -> None:
        ch = ChdbClickHouse(self.folder)
        ch.pin()  # the folder stays open (and ours) while we serve it
        try:
            server = _Server((HOST, self.port), _Handler)
        except BaseException:
            ch.unpin()
            raise
        server.folder, server.ch = self.folder, ch
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="clickhouse-query", daemon=True
        )
        self._thread.start()
        port = server.server_address[1]
        found = self.folder / ENDPOINT_FILE
        staged = found.with_suffix(".tmp")
        staged.write_text(json.dumps({"pid": os.getpid(), "port": port}))
        staged.replace(found)
        log.info("answering queries on %s (chdb folder %s)", self.url, self.folder)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.folder / ENDPOINT_FILE).unlink()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        server.ch.unpin()


class HttpClickHouse(ClickHouse):
    """Read-only :class:`ClickHouse` over a query endpoint."""

    backend = "http"

    def __init__(self, url: str) -> None:
        self.url = url

    def command(self, sql: str) -> None:
        raise ClickHouseError(f"{self.url} answers SELECT queries only: {sql[:60]!r}")

    def insert_arrow(
        self, table: str, data: pa.Table, settings: Mapping[str, int | str] | None = None
    ) -> None:
        raise ClickHouseError(f"{self.url} answers SELECT queries only: no insert into {table}")

    def query_arrow(self, sql: str) -> pa.Table:
        request = urllib.request.Request(
            f"{self.url}/query", data=sql.encode(), method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=QUERY_TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise ClickHouseError(exc.read().decode(errors="replace").strip()) from exc
        return pa.ipc.open_stream(body).read_all()

    def close(self) -> None:
        """Nothing to release (one HTTP request per query)."""


@contextlib.contextmanager
def _server(settings: Settings) -> Iterator[ClickHouse]:
    ch = clickhouse.connect(settings)
    try:
        yield ch
    finally:
        ch.close()


@contextlib.contextmanager
def reading(settings: Settings) -> Iterator[ClickHouse]:
    """A connection for reads (see the module doc)."""
    if settings.clickhouse_url:
        with _server(settings) as ch:
            yield ch
        return
    folder = settings.clickhouse_path
    deadline = time.monotonic() + ENDPOINT_WAIT_S
    while (url := endpoint(folder)) is None and (holder := held_elsewhere(folder)) is not None:
        if time.monotonic() > deadline:
            raise ClickHouseError(
                f"process {holder} holds the chdb folder {folder} and answers no queries "
                "(run the projector with its query endpoint, or stop it)"
            )
        time.sleep(ENDPOINT_POLL_S)  # a projector starting: its endpoint comes next
    if url is not None:
        yield HttpClickHouse(url)
        return
    with ChdbClickHouse.borrowed(folder) as ch:
        yield ch


@contextlib.contextmanager
def administering(settings: Settings) -> Iterator[ClickHouse]:
    """A connection for a few statements that write (versions, views, drops): the server,
    or the chdb folder borrowed — :class:`ProjectorBusy` while another process holds it."""
    if settings.clickhouse_url:
        with _server(settings) as ch:
            yield ch
        return
    holder = held_elsewhere(settings.clickhouse_path)
    if holder is not None:
        raise ProjectorBusy(
            f"process {holder} holds the chdb folder {settings.clickhouse_path}: stop it "
            "(or use a ClickHouse server) to change versions"
        )
    with ChdbClickHouse.borrowed(settings.clickhouse_path) as ch:
        yield ch
