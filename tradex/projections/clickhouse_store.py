"""ClickHouse read models: a database per version, reader views, rows keyed by log position.

Layout of a read model with namespace ``ns`` (:func:`tradex.projections.projector.namespace`):

- ``ns_v<N>``: version N's tables and its ``log_positions`` (topic, partition,
  next_offset). Every row carries the log position it came from (``log_topic``,
  ``log_partition``, ``log_offset``, ``log_index``) and every table is a
  ``ReplacingMergeTree`` whose ORDER BY ends with that position, so a row written twice
  is one row for every query that reads with ``FINAL``;
- ``ns``: one view per table over the live version (``SELECT ... FROM ns_vN.t FINAL``,
  plus an ``event_time`` DateTime64 column), and the read model's own views;
  :meth:`ClickHouseProjector.make_live` replaces every view (each one atomically), then
  records the switch;
- ``tradex_projections.versions``: per namespace, the live version and the version a
  rebuild is filling (a row per change; the newest wins).

**Idempotent by position.** ClickHouse has no transaction over several tables: a batch
inserts its rows table by table, *then* its positions. A crash between the two leaves
rows past the stored positions; the restart resumes from the stored positions and writes
the same rows again (the fold is a pure function of the log prefix and of state loaded
from rows *below* the stored positions), and ``FINAL`` folds each pair into one row. A
replayed prefix is dropped before it reaches the sink (:meth:`Projector.apply`). The
``sink_before_commit`` fault point sits between the rows and the positions.

**Consistent reads** (:meth:`ClickHouseProjector.frozen`): positions first, then only
rows below them (rows carry their positions), with ``FINAL``.

**Who opens the store.** With a server (``TRADEX_CLICKHOUSE_URL``) anyone connects.
chdb opens a folder in one process at a time: the writer pins it for its whole run;
short reads and admin steps (:meth:`versions`, :meth:`positions`, :meth:`frozen`,
:meth:`make_live`, :meth:`drop`) borrow it — or, when another process holds the folder
and serves queries (:mod:`tradex.projections.clickhouse_http`), read through it.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from tradex.infra import clickhouse
from tradex.infra.clickhouse import ChdbClickHouse, ClickHouse, ClickHouseError
from tradex.infra.faults import Fault
from tradex.infra.settings import Settings
from tradex.log.source import Place
from tradex.projections.clickhouse_http import administering, held_elsewhere, reading
from tradex.projections.projector import (
    ColumnarBatch,
    Event,
    Frozen,
    Projector,
    ProjectorBusy,
    Versions,
    VersionSwitched,
    namespace,
)

META_DATABASE = "tradex_projections"
# A batch's rows never repeat a sorting key (it ends with the row's log position), so the
# ReplacingMergeTree merge each insert would run on its block finds nothing: skipping it
# halves an insert's CPU (measured: 1.9 -> 1.0 us per event in batches of 200,000 events).
# Rows written twice by a restart still fold into one in FINAL reads (merges, FINAL).
INSERT_SETTINGS = {"optimize_on_insert": 0}
POSITIONS_TABLE = "log_positions"
# every row's log position: where the record it came from is, and which of its rows it is
POSITION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("log_topic", "LowCardinality(String)"),
    ("log_partition", "Int32"),
    ("log_offset", "Int64"),
    ("log_index", "Int32"),
)
_META_DDL = (
    f"CREATE DATABASE IF NOT EXISTS {META_DATABASE}",
    f"""CREATE TABLE IF NOT EXISTS {META_DATABASE}.versions (
        namespace String,
        live Int32,
        building Int32,
        changed_ns Int64,
        seq UInt64
    ) ENGINE = ReplacingMergeTree(seq) ORDER BY namespace""",
)


@dataclass(frozen=True)
class Table:
    """One table of a read model.

    ``columns``: (name, ClickHouse type) of the data, in order; the position columns are
    added after them. ``order_by``: the sorting key, which must end with the row's
    position (``log_topic`` may be left out when every row comes from ``topic``,
    ``log_index`` when an event gives at most one row) so that two rows with the same key
    are the same row written twice. ``topic``: the logical topic every row comes from
    (``log_topic`` defaults to it), or "" when rows come from several.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: tuple[str, ...]
    topic: str = ""

    def __post_init__(self) -> None:
        names = [name for name, _ in self.columns]
        assert len(set(names)) == len(names), f"{self.name}: a column named twice"
        assert not set(names) & {n for n, _ in POSITION_COLUMNS}, f"{self.name}: reserved"
        assert "event_time_ns" in names, f"{self.name}: every row keeps its event time"
        position = ("log_partition", "log_offset")
        tail = self.order_by[-3:] if self.topic else self.order_by[-4:]
        assert all(p in tail for p in position), f"{self.name}: ORDER BY must end with the position"
        if not self.topic:
            assert "log_topic" in self.order_by, f"{self.name}: rows of several topics"
        unknown = set(self.order_by) - set(names) - {n for n, _ in POSITION_COLUMNS}
        assert not unknown, f"{self.name}: ORDER BY names unknown columns {unknown}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return (*(name for name, _ in self.columns), *(name for name, _ in POSITION_COLUMNS))

    def ddl(self, database: str) -> str:
        columns = [f"`{name}` {kind}" for name, kind in self.columns]
        for name, kind in POSITION_COLUMNS:
            if name == "log_topic" and self.topic:
                columns.append(f"`{name}` {kind} DEFAULT '{self.topic}'")
            elif name == "log_index":
                columns.append(f"`{name}` {kind} DEFAULT 0")
            else:
                columns.append(f"`{name}` {kind}")
        return (
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} ({', '.join(columns)}) "
            f"ENGINE = ReplacingMergeTree ORDER BY ({', '.join(self.order_by)})"
        )


def below(positions: Mapping[Place, int], topic: str = "") -> str:
    """A condition true for rows whose log position is below ``positions`` (rows of a place
    without a position: none). ``topic``: every row of the table comes from it."""
    if not positions:
        return "0"
    branches = []
    for (place_topic, partition), offset in sorted(positions.items()):
        assert offset >= 0, offset
        assert "'" not in place_topic, place_topic
        if topic and place_topic != topic:
            continue
        where = f"log_partition = {int(partition)}"
        if not topic:
            where = f"log_topic = '{place_topic}' AND {where}"
        branches.append(f"{where}, log_offset < {int(offset)}")
    if not branches:
        return "0"
    return f"multiIf({', '.join(branches)}, 0)"


def _quote(text: str) -> str:
    assert "'" not in text and "\\" not in text, text
    return f"'{text}'"


class ClickHouseProjector(Projector):
    """The ClickHouse sink: subclasses give :attr:`tables`, :meth:`rows` and :meth:`load`."""

    batch_interval_s: ClassVar[float] = 0.05  # see Projector.batch_interval_s

    tables: ClassVar[tuple[Table, ...]]
    # extra reader views: name -> SELECT over the reader database ({reader} in the text)
    reader_views: ClassVar[tuple[tuple[str, str], ...]] = ()

    # versions written by this process: (store, database) (chdb folders lock processes out)
    _writing: ClassVar[set[tuple[str, str]]] = set()
    _writing_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: Settings, version: int) -> None:
        super().__init__(settings, version)
        self.database = f"{self.namespace}_v{version}"
        self.reader = self.namespace
        clickhouse.check_table_name(self.database)
        self._ch: ClickHouse | None = None
        self._writer_key: tuple[str, str] | None = None
        self._fault = Fault.from_env()
        self._batches = 0
        self._writer: ThreadPoolExecutor | None = None  # bulk loads: inserts on a thread
        self._pending: Future[None] | None = None  # the batch being written there

    # -- the subclass's part ------------------------------------------------------------

    def load(self, ch: ClickHouse, positions: Mapping[Place, int]) -> None:
        """Load what the fold keeps in memory from rows below ``positions`` (on open)."""

    @abstractmethod
    def rows(self, events: Sequence[Event]) -> dict[str, pa.Table]:
        """Fold ``events`` into Arrow tables by table name (columns by name)."""

    # -- plumbing -----------------------------------------------------------------------

    def _store_key(self) -> str:
        return self.settings.clickhouse_url or str(self.settings.clickhouse_path.resolve())

    def ddl(self) -> list[str]:
        """Everything this version needs, idempotent (IF NOT EXISTS)."""
        d = self.database
        statements = [
            f"CREATE DATABASE IF NOT EXISTS {d}",
            f"""CREATE TABLE IF NOT EXISTS {d}.{POSITIONS_TABLE} (
                topic String, partition Int32, next_offset Int64
            ) ENGINE = ReplacingMergeTree(next_offset) ORDER BY (topic, partition)""",
        ]
        return statements + [table.ddl(d) for table in self.tables]

    def _open(self) -> dict[Place, int]:
        key = (self._store_key(), self.database)
        with self._writing_lock:
            if key in self._writing:
                raise ProjectorBusy(f"this process is already writing {self.database}")
            self._writing.add(key)
        self._writer_key = key
        try:
            ch = self._ch = _connect_writer(self.settings)
            for statement in (*_META_DDL, *self.ddl()):
                ch.command(statement)
            positions = _read_positions(ch, self.database)
            self.load(ch, positions)
        except BaseException:
            self.close()
            raise
        return positions

    def _check_live(self, ch: ClickHouse) -> None:
        live = _versions(ch, self.namespace).live
        if live != self.version:
            raise VersionSwitched(f"{self.namespace}: v{live} is live, not v{self.version}")

    def _apply(self, events: Sequence[Event], positions: Mapping[Place, int]) -> None:
        self._write(lambda: self.rows(events), positions)

    def _apply_columns(self, batch: ColumnarBatch, positions: Mapping[Place, int]) -> None:
        self._write(lambda: self.column_rows(batch), positions)

    def column_rows(self, batch: ColumnarBatch) -> dict[str, pa.Table]:
        """Fold a columnar batch into Arrow tables by table name (columnar subclasses)."""
        raise NotImplementedError(f"{self.name} is not columnar")

    def _write(
        self, fold: Callable[[], dict[str, pa.Table]], positions: Mapping[Place, int]
    ) -> None:
        """The batch's rows (``fold()``, run once the version is known live), table by table,
        then its positions. In a bulk load (a rebuild: no reader sees this version) the
        inserts run on a writer thread while the caller reads and folds the next batch:
        one batch at most in flight, batches written in order (rows, then positions), and a
        failed write raised by the next batch, :meth:`finish` or :meth:`close`."""
        ch = self._ch
        assert ch is not None, "open() first"
        if self.live_writer:
            self._check_live(ch)
        tables = fold()
        known = {table.name for table in self.tables}
        assert set(tables) <= known, f"rows for unknown tables {set(tables) - known}"
        self._wait_written()
        if self.bulk_load and not self.live_writer:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-writer")
            self._pending = self._writer.submit(self._insert, ch, tables, dict(positions))
        else:
            self._insert(ch, tables, positions)

    def _insert(
        self, ch: ClickHouse, tables: dict[str, pa.Table], positions: Mapping[Place, int]
    ) -> None:
        try:
            for name, data in tables.items():
                if data.num_rows:
                    ch.insert_arrow(f"{self.database}.{name}", data, INSERT_SETTINGS)
            self._fault.check("sink_before_commit", self._batches)
            places = sorted(positions)
            ch.insert_arrow(
                f"{self.database}.{POSITIONS_TABLE}",
                pa.table({
                    "topic": pa.array([t for t, _ in places], pa.string()),
                    "partition": pa.array([p for _, p in places], pa.int32()),
                    "next_offset": pa.array([positions[p] for p in places], pa.int64()),
                }),
            )  # fmt: skip
        except ClickHouseError as exc:
            if self.live_writer:
                self._check_live(ch)  # a rebuild switched readers and dropped this version
            raise exc
        self._batches += 1

    def _wait_written(self) -> None:
        """Until the batch in flight is written (its error, if any, raised here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def finish(self) -> None:
        self._wait_written()

    def close(self) -> None:
        try:
            self._wait_written()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
                self._writer = None
            self._release()

    def _release(self) -> None:
        ch, self._ch = self._ch, None
        if isinstance(ch, _PinnedChdb):
            ch.unpin()
        elif ch is not None:
            ch.close()
        if self._writer_key is not None:
            with self._writing_lock:
                self._writing.discard(self._writer_key)
            self._writer_key = None

    # -- versions -----------------------------------------------------------------------

    @classmethod
    def versions(cls, settings: Settings) -> Versions:
        with reading(settings) as ch:
            return _versions(ch, namespace(settings, cls.name))

    def _set_versions(self, ch: ClickHouse, live: str, building: str) -> None:
        """One new versions row; ``live``/``building`` are SQL over the current ``l``/``b``."""
        ch.command(
            f"""INSERT INTO {META_DATABASE}.versions
            SELECT {_quote(self.namespace)}, {live}, {building},
                toUnixTimestamp64Nano(now64(9)), s + 1
            FROM (SELECT argMax(live, seq) AS l, argMax(building, seq) AS b, max(seq) AS s
                  FROM {META_DATABASE}.versions WHERE namespace = {_quote(self.namespace)})"""
        )

    def mark_building(self) -> None:
        with administering(self.settings) as ch:
            for statement in _META_DDL:
                ch.command(statement)
            self._set_versions(ch, "l", str(self.version))

    def make_live(self) -> None:
        v, r = self.version, self.reader
        with administering(self.settings) as ch:
            for statement in (*_META_DDL, *self.ddl(), f"CREATE DATABASE IF NOT EXISTS {r}"):
                ch.command(statement)
            ch.command(
                f"CREATE OR REPLACE VIEW {r}.{POSITIONS_TABLE} AS SELECT topic, partition, "
                f"max(next_offset) AS next_offset FROM {self.database}.{POSITIONS_TABLE} "
                "GROUP BY topic, partition"
            )
            for table in self.tables:
                ch.command(
                    f"CREATE OR REPLACE VIEW {r}.{table.name} AS SELECT *, "
                    "fromUnixTimestamp64Nano(event_time_ns, 'UTC') AS event_time "
                    f"FROM {self.database}.{table.name} FINAL"
                )
            for name, select in self.reader_views:
                ch.command(f"CREATE OR REPLACE VIEW {r}.{name} AS {select.format(reader=r)}")
            self._set_versions(ch, str(v), f"if(b = {v}, 0, b)")

    def drop(self) -> None:
        with administering(self.settings) as ch:
            for statement in _META_DDL:
                ch.command(statement)
            if _versions(ch, self.namespace).live == self.version:
                raise RuntimeError(f"{self.database} is live: it is not dropped")
            ch.command(f"DROP DATABASE IF EXISTS {self.database} SYNC")
            if _versions(ch, self.namespace).building == self.version:
                self._set_versions(ch, "l", "0")

    def positions(self) -> dict[Place, int]:
        with reading(self.settings) as ch:
            return _read_positions(ch, self.database)

    # -- verification -------------------------------------------------------------------

    def frozen(self) -> Frozen:
        return _ClickHouseFrozen(self)


def _versions(ch: ClickHouse, ns: str) -> Versions:
    exists = ch.query_rows(
        f"SELECT count() FROM system.tables WHERE database = {_quote(META_DATABASE)} "
        "AND name = 'versions'"
    )
    if exists[0][0] == 0:
        return Versions(None, None)
    rows = ch.query_rows(
        f"SELECT argMax(live, seq), argMax(building, seq), count() "
        f"FROM {META_DATABASE}.versions WHERE namespace = {_quote(ns)}"
    )
    live, building, count = rows[0]
    if count == 0:
        return Versions(None, None)
    return Versions(live or None, building or None)


def _read_positions(ch: ClickHouse, database: str) -> dict[Place, int]:
    exists = ch.query_rows(
        f"SELECT count() FROM system.tables WHERE database = {_quote(database)} "
        f"AND name = {_quote(POSITIONS_TABLE)}"
    )
    if exists[0][0] == 0:
        return {}
    rows = ch.query_rows(
        f"SELECT topic, partition, max(next_offset) FROM {database}.{POSITIONS_TABLE} "
        "GROUP BY topic, partition"
    )
    return {(topic, partition): offset for topic, partition, offset in rows}


# -- connections --------------------------------------------------------------------------


class _PinnedChdb(ChdbClickHouse):
    """A writer's chdb: pinned from open to close."""


def _connect_writer(settings: Settings) -> ClickHouse:
    if settings.clickhouse_url:
        return clickhouse.connect(settings)
    holder = held_elsewhere(settings.clickhouse_path)
    if holder is not None:
        raise ProjectorBusy(f"process {holder} holds the chdb folder {settings.clickhouse_path}")
    ch = _PinnedChdb(settings.clickhouse_path)
    ch.pin()
    return ch


# -- verification -------------------------------------------------------------------------


class _ClickHouseFrozen(Frozen):
    """Positions first, then rows below them only (``FINAL``): however far the writer has
    got meanwhile, this reads the version as of those positions."""

    def __init__(self, projector: ClickHouseProjector) -> None:
        self._projector = projector
        self._tables = {table.name: table for table in projector.tables}
        self._context = reading(projector.settings)
        self._ch = self._context.__enter__()
        try:
            self.positions = _read_positions(self._ch, projector.database)
        except BaseException:
            self.close()
            raise

    def _select(self, table: Table, what: str) -> str:
        where = below(self.positions, table.topic)
        return f"SELECT {what} FROM {self._projector.database}.{table.name} FINAL WHERE {where}"

    def digests(self) -> dict[str, tuple[int, str]]:
        found = {}
        for table in self._projector.tables:
            columns = ", ".join(f"`{c}`" for c in table.column_names)
            rows = self._ch.query_rows(self._select(table, f"count(), sum(cityHash64({columns}))"))
            found[table.name] = (int(rows[0][0]), str(rows[0][1]))
        return found

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        spec = self._tables[table]
        columns = ", ".join(f"`{c}`" for c in spec.column_names)
        return self._ch.query_rows(
            f"{self._select(spec, columns)} ORDER BY {', '.join(spec.order_by)}"
        )

    def close(self) -> None:
        self._context.__exit__(None, None, None)
