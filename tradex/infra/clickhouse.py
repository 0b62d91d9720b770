"""One small ClickHouse interface with two backends: embedded chdb, or a server.

``connect(settings)`` returns the chdb backend (a session at ``settings.clickhouse_path``)
unless ``settings.clickhouse_url`` is set, then a clickhouse-connect client. Both take the
same SQL. Name tables with their database (``db.table``): the chdb session is shared by
everything in the process, so ``USE`` would leak between callers.

chdb is in-process and exclusive: a folder opens in one process at a time, and a process
has one folder open at a time (see :class:`ChdbClickHouse` for how a folder is handed over).
"""

from __future__ import annotations

import contextlib
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
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
    def insert_arrow(
        self, table: str, data: pa.Table, settings: Mapping[str, int | str] | None = None
    ) -> None:
        """Insert an Arrow table into `table`; columns match by name. ``settings``: the
        insert's ClickHouse settings (e.g. ``optimize_on_insert``)."""

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
    """The embedded backend. One chdb folder is open per process at a time, and a folder
    open in one process cannot be opened by another (chdb locks it).

    The folder is opened on first use and stays open (cached for the process), except:

    - a *pinned* folder (a writer between :meth:`pin` and :meth:`unpin`) stays open, and
      asking this process for another folder meanwhile is a clear error;
    - an unpinned folder is closed when this process asks for another one (tests switch
      between private folders), and :meth:`release` / :meth:`borrowed` close it so another
      process can take it (a projector subprocess, then a check in this one).
    """

    backend = "chdb"
    _sessions: ClassVar[dict[Path, Any]] = {}  # the open folder (at most one entry)
    _pins: ClassVar[dict[Path, int]] = {}
    _lock: ClassVar[threading.RLock] = threading.RLock()

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        with self._lock:
            self._session()  # fail here, not at the first statement, if it cannot open

    def _session(self) -> Any:
        """The open session of this folder, opened now if needed (lock held)."""
        import chdb.session

        session = self._sessions.get(self.path)
        if session is not None:
            return session
        for other in list(self._sessions):
            if self._pins.get(other, 0) > 0:
                raise RuntimeError(
                    f"chdb is already open at {other} in this process; "
                    f"it cannot also open {self.path}"
                )
            self._sessions.pop(other).close()
        assert not self._sessions, "two chdb folders open at once"
        self.path.mkdir(parents=True, exist_ok=True)
        session = chdb.session.Session(str(self.path))
        self._sessions[self.path] = session
        return session

    def command(self, sql: str) -> None:
        with self._lock, _errors():
            self._session().query(sql, "CSV")

    def query_arrow(self, sql: str) -> pa.Table:
        # the Arrow file chdb writes, read here: its "ArrowTable" format does the same but
        # imports pandas first (~0.8 s of a process's first query)
        with self._lock, _errors():
            result = self._session().query(sql, "Arrow")
            if len(result) == 0:
                return pa.table({})
            table = pa.RecordBatchFileReader(result.get_memview().view()).read_all()
        assert isinstance(table, pa.Table), type(table)
        return table

    def insert_arrow(
        self, table: str, data: pa.Table, settings: Mapping[str, int | str] | None = None
    ) -> None:
        check_table_name(table)
        names = ", ".join(f"`{name}`" for name in data.column_names)
        # chdb's Python() table function finds the Arrow table by this local variable name.
        tradex_insert_data = data
        sql = f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(tradex_insert_data)"
        if settings:
            sql += f" SETTINGS {_settings_sql(settings)}"
        with self._lock, _errors():
            self._session().query(sql, "CSV")
        del tradex_insert_data

    def close(self) -> None:
        """Sessions stay open for the process (see the class doc for what closes them)."""

    def pin(self) -> None:
        """Keep this folder open until :meth:`unpin` (a writer holds it)."""
        with self._lock:
            self._session()
            self._pins[self.path] = self._pins.get(self.path, 0) + 1

    def unpin(self) -> None:
        """Undo one :meth:`pin`; the last one closes the folder (another process may take
        it from then on)."""
        with self._lock:
            pins = self._pins.get(self.path, 0)
            assert pins > 0, f"{self.path} is not pinned"
            if pins > 1:
                self._pins[self.path] = pins - 1
                return
            del self._pins[self.path]
            session = self._sessions.pop(self.path, None)
            if session is not None:
                session.close()

    @classmethod
    def release(cls, path: Path) -> bool:
        """Close ``path`` if this process has it open and unpinned, so another process can
        open it; whether it was open."""
        path = path.resolve()
        with cls._lock:
            if cls._pins.get(path, 0) > 0:
                raise RuntimeError(f"chdb folder {path} is pinned by a writer in this process")
            session = cls._sessions.pop(path, None)
            if session is None:
                return False
            session.close()
            return True

    @classmethod
    @contextlib.contextmanager
    def borrowed(cls, path: Path) -> Iterator[ChdbClickHouse]:
        """This folder for a few statements; closed after unless it was open before (or got
        pinned meanwhile), so a short read does not keep the folder from other processes."""
        path = path.resolve()
        with cls._lock:
            was_open = path in cls._sessions
        try:
            yield cls(path)
        finally:
            if not was_open:
                with cls._lock:
                    if cls._pins.get(path, 0) == 0 and path in cls._sessions:
                        cls._sessions.pop(path).close()

    @classmethod
    def close_sessions(cls) -> None:
        """Close every cached session; call once, at process end (e.g. after a test run).

        Closing explicitly lets chdb shut down while the process is still whole; left to
        interpreter exit it may print shutdown errors after everything else.
        """
        with cls._lock:
            sessions = list(cls._sessions.values())
            cls._sessions.clear()
            cls._pins.clear()
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

    def insert_arrow(
        self, table: str, data: pa.Table, settings: Mapping[str, int | str] | None = None
    ) -> None:
        database, _, name = check_table_name(table).rpartition(".")
        with _errors():
            self._client.insert_arrow(
                name, data, database=database or None, settings=dict(settings or {})
            )

    def close(self) -> None:
        self._client.close()


def _settings_sql(settings: Mapping[str, int | str]) -> str:
    parts = []
    for key, value in settings.items():
        assert key.replace("_", "").isalnum(), key
        assert isinstance(value, int) or str(value).replace("_", "").isalnum(), value
        parts.append(f"{key} = {value if isinstance(value, int) else repr(str(value))}")
    return ", ".join(parts)


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
