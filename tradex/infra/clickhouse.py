"""One small ClickHouse interface with two backends: embedded chdb, or a server.

``connect(settings)`` returns the chdb backend (a session at ``settings.clickhouse_path``)
unless ``settings.clickhouse_url`` is set, then a clickhouse-connect client. Both take the
same SQL. Name tables with their database (``db.table``): the chdb session is shared by
everything in the process, so ``USE`` would leak between callers.

chdb is in-process and exclusive: one process may open one path, once. Sessions are
cached per path, and a second path in the same process is a clear error.
"""

from __future__ import annotations

import contextlib
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pyarrow as pa

from tradex.infra.settings import Settings

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class ClickHouseError(RuntimeError):
    """A statement failed in either backend (the message is ClickHouse's)."""


def check_table_name(name: str) -> str:
    """`table` or `db.table`, plain identifiers only (they are spliced into SQL)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain ClickHouse table name: {name!r}")
    return name


class ClickHouse(ABC):
    """What TradeX needs from ClickHouse; every method takes ClickHouse SQL."""

    backend: str

    @abstractmethod
    def command(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL, INSERT ... SELECT, OPTIMIZE)."""

    @abstractmethod
    def query_arrow(self, sql: str) -> pa.Table:
        """Run a SELECT and return its result as an Arrow table."""

    @abstractmethod
    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Insert an Arrow table into `table`; columns match by name."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (the chdb session stays cached for the process)."""

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a SELECT and return its rows as tuples."""
        result = self.query_arrow(sql)
        columns = [column.to_pylist() for column in result.columns]
        rows = list(zip(*columns, strict=True))
        assert len(rows) == result.num_rows, (len(rows), result.num_rows)
        return rows

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert Python rows; values are converted to the table's column types."""
        assert columns, "no columns"
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"row has {len(row)} values for {len(columns)} columns: {row!r}")
        data = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})
        self.insert_arrow(table, data)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Both backends raise ClickHouseError for a failed statement."""
    from clickhouse_connect.driver.exceptions import ClickHouseError as ServerError

    try:
        yield
    except ClickHouseError:
        raise
    except (RuntimeError, ServerError) as exc:  # chdb's ChdbError is a RuntimeError
        raise ClickHouseError(str(exc)) from exc


class ChdbClickHouse(ClickHouse):
    backend = "chdb"
    _sessions: ClassVar[dict[Path, Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        import chdb.session

        self.path = path.resolve()
        with self._lock:
            session = self._sessions.get(self.path)
            if session is None:
                if self._sessions:
                    other = next(iter(self._sessions))
                    raise RuntimeError(
                        f"chdb is already open at {other} in this process; "
                        f"it cannot also open {self.path}"
                    )
                self.path.mkdir(parents=True, exist_ok=True)
                session = chdb.session.Session(str(self.path))
                self._sessions[self.path] = session
        self._session = session

    def command(self, sql: str) -> None:
        with self._lock, _errors():
            self._session.query(sql, "CSV")

    def query_arrow(self, sql: str) -> pa.Table:
        with self._lock, _errors():
            result = self._session.query(sql, "ArrowTable")
        assert isinstance(result, pa.Table), type(result)
        return result

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        check_table_name(table)
        names = ", ".join(f"`{name}`" for name in data.column_names)
        # chdb's Python() table function finds the Arrow table by this local variable name.
        tradex_insert_data = data
        sql = f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(tradex_insert_data)"
        with self._lock, _errors():
            self._session.query(sql, "CSV")
        del tradex_insert_data

    def close(self) -> None:
        """Sessions stay open for the life of the process (a path opens only once)."""

    @classmethod
    def close_sessions(cls) -> None:
        """Close every cached session; call once, at process end (e.g. after a test run).

        Closing explicitly lets chdb shut down while the process is still whole; left to
        interpreter exit it may print shutdown errors after everything else.
        """
        with cls._lock:
            sessions = list(cls._sessions.values())
            cls._sessions.clear()
            for session in sessions:
                session.close()


class ServerClickHouse(ClickHouse):
    backend = "server"

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"TRADEX_CLICKHOUSE_URL must be http(s)://host:port, got {url!r}")
        self._client = clickhouse_connect.get_client(dsn=url)

    def command(self, sql: str) -> None:
        with _errors():
            self._client.command(sql)

    def query_arrow(self, sql: str) -> pa.Table:
        with _errors():
            result = self._client.query_arrow(sql)
        assert isinstance(result, pa.Table), type(result)
        return result

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        database, _, name = check_table_name(table).rpartition(".")
        with _errors():
            self._client.insert_arrow(name, data, database=database or None)

    def close(self) -> None:
        self._client.close()


def connect(settings: Settings) -> ClickHouse:
    """The backend settings ask for: a server when clickhouse_url is set, else chdb."""
    if settings.clickhouse_url:
        return ServerClickHouse(settings.clickhouse_url)
    return ChdbClickHouse(settings.clickhouse_path)


def holder_pid(path: Path) -> int | None:
    """The pid of the process holding a chdb path open (its `status` file), if any."""
    status = path / "status"
    try:
        text = status.read_text()
    except (FileNotFoundError, PermissionError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().upper() == "PID" and value.strip().isdigit():
            return int(value.strip())
    return None
