"""PostgreSQL read models: versions as schemas, readers through views, positions in the
same transaction as the rows.

Layout of a read model with namespace ``ns`` (:func:`tradex.projections.projector.namespace`):

- ``ns_v<N>``: version N's tables and its ``positions`` table (topic, partition,
  next_offset), written by one process at a time (a session advisory lock);
- ``ns``: one view per table (and ``positions``) over the live version. Readers query
  these; :meth:`PostgresProjector.make_live` replaces them and records the switch in one
  transaction, so a reader sees one version or the other, never a mix;
- ``tradex_projections.versions``: per namespace, the live version and the version a
  rebuild is filling.

A batch is one transaction: the rows, the positions, and a check (``FOR SHARE`` on the
namespace's versions row) that a live writer's version is still live — a switch takes
that row ``FOR UPDATE``, so no batch of the old version commits after readers moved.

A bulk load (a rebuild, a verify's scratch version) of a columnar projector is pipelined:
its connection lives on a writer thread, and ``apply_columns`` folds a batch
(:meth:`PostgresProjector.prepare_columns`, the client's CPU) while the server still
writes the previous one, then hands it over and returns before it commits (at most one
batch in flight; its error is raised by the next call: apply, finish or close). The
positions still commit with the rows; a crash leaves the version at the last commit.
"""

from __future__ import annotations

import asyncio
import threading
from abc import abstractmethod
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeVar

import asyncpg

from tradex.infra import postgres
from tradex.infra.faults import Fault
from tradex.infra.settings import Settings
from tradex.log.source import Place
from tradex.projections.projector import (
    ColumnarBatch,
    Event,
    Frozen,
    Projector,
    ProjectorBusy,
    SchemaOutdated,
    Versions,
    VersionSwitched,
)

T = TypeVar("T")

META_SCHEMA = "tradex_projections"
INDEX_BUILD_MEMORY = "256MB"  # maintenance_work_mem while a bulk load builds its indexes
_LOCK_CLASS = 0x7D5  # first key of our advisory locks (the second: hashtext of a name)
_META_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.versions (
        namespace text PRIMARY KEY,
        live int,
        building int,
        switched_at timestamptz
    )""",
)


class Index(NamedTuple):
    name: str
    columns: str  # "account_id, created_time_ns"
    where: str = ""  # a partial index's predicate


@dataclass(frozen=True)
class Table:
    """One table of a read model: its columns (DDL text), key and indexes.

    ``columns`` is the body of CREATE TABLE; ``key`` the primary key columns (the order
    rows are compared in); ``indexes`` extra indexes.
    ``partition_by``: a PARTITION BY clause for a natively partitioned table.
    ``appended``: rows are only appended (``COPY``), never looked up by key while the
    version is written, so a bulk load adds the primary key at the end, with the indexes
    (one sort instead of a B-tree insert per row).
    """

    name: str
    columns: str
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    partition_by: str = ""
    appended: bool = False

    def __post_init__(self) -> None:
        assert self.key, f"{self.name}: a table has a primary key"
        assert not (self.appended and self.partition_by), f"{self.name}: appended, not partitioned"


def column_names(columns: str) -> list[str]:
    """The column names of a CREATE TABLE body ("a bigint NOT NULL, b numeric(20, 0)")."""
    names, depth, start = [], 0, 0
    for i, char in enumerate(columns + ","):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            names.append(columns[start:i].split()[0])
            start = i + 1
    return names


class View(NamedTuple):
    """A view of a version over its tables; ``sql`` is its SELECT, with ``{s}`` for the
    version's schema. Readers see it like a table (through the reader schema)."""

    name: str
    sql: str


class PostgresProjector(Projector):
    """The PostgreSQL sink: subclasses give :attr:`tables`, :meth:`load` and :meth:`write`."""

    batch_interval_s: ClassVar[float] = 0.05  # see Projector.batch_interval_s

    tables: ClassVar[tuple[Table, ...]]
    views: ClassVar[tuple[View, ...]] = ()

    def __init__(self, settings: Settings, version: int) -> None:
        super().__init__(settings, version)
        self.schema = f"{self.namespace}_v{version}"
        postgres.check_identifier(self.schema)
        self._loop: asyncio.AbstractEventLoop | None = None  # the writer's, from open()
        self._conn: asyncpg.Connection | None = None
        self._fault = Fault.from_env()
        self._batches = 0
        # a pipelined bulk load: the thread running self._loop, and the batch in flight
        self._writer: threading.Thread | None = None
        self._pending: Future[None] | None = None

    # -- the subclass's part ------------------------------------------------------------

    async def load(self, conn: asyncpg.Connection) -> None:
        """Load what the fold keeps in memory from this version's tables (on open)."""

    @abstractmethod
    async def write(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Fold ``events`` into rows and write them (inside the batch's transaction)."""

    def prepare_columns(self, batch: ColumnarBatch) -> Any:
        """The client's part of a columnar batch (no connection; by default nothing): its
        result goes to :meth:`write_columns`. A pipelined bulk load runs it while the
        server writes the previous batch, so it must not keep views of ``batch``."""
        return batch

    async def write_columns(self, conn: asyncpg.Connection, prepared: Any) -> None:
        """:meth:`write` for a columnar projector (``columnar``): what
        :meth:`prepare_columns` made of the batch."""
        raise NotImplementedError(f"{self.name} is not columnar")

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """Look at the server before this version's DDL runs (e.g. which extensions exist)."""

    def extra_ddl(self) -> list[str]:
        """Statements to run after the tables are created (functions, partitions ...)."""
        return []

    # -- plumbing -----------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._writer is not None:  # after the batch in flight, on the writer thread
            assert self._loop is not None
            self._wait_pending()
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    def _wait_pending(self) -> None:
        """Wait for the batch in flight to commit; raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def ddl(self) -> list[str]:
        """Everything this version needs, idempotent (IF NOT EXISTS)."""
        s = self.schema
        return [
            f"CREATE SCHEMA IF NOT EXISTS {s}",
            f"""CREATE TABLE IF NOT EXISTS {s}.positions (
                topic text NOT NULL,
                partition int NOT NULL,
                next_offset bigint NOT NULL CHECK (next_offset >= 0),
                PRIMARY KEY (topic, partition)
            )""",
            *self.table_ddl(),
            *self.extra_ddl(),
            *(f"CREATE OR REPLACE VIEW {s}.{v.name} AS {v.sql.format(s=s)}" for v in self.views),
        ]

    def table_ddl(self) -> list[str]:
        """CREATE TABLE of :attr:`tables`, and their indexes unless bulk loading."""
        s = self.schema
        statements = []
        for table in self.tables:
            partition = f" PARTITION BY {table.partition_by}" if table.partition_by else ""
            deferred = self.bulk_load and table.appended
            key = "" if deferred else f", PRIMARY KEY ({', '.join(table.key)})"
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {s}.{table.name} ({table.columns}{key}){partition}"
            )
        return statements if self.bulk_load else statements + self.index_ddl()

    def index_ddl(self) -> list[str]:
        """What a bulk load builds at the end: CREATE INDEX of :attr:`tables`, and the
        primary keys of the appended tables (if missing: a version made by a bulk load,
        maybe interrupted)."""
        builds, keys = [], []
        for table in self.tables:
            table_builds, table_key = self.table_index_ddl(table)
            builds += table_builds
            keys += table_key
        return builds + keys

    def table_index_ddl(self, table: Table) -> tuple[list[str], list[str]]:
        """:meth:`index_ddl` of one table: the index builds (a SHARE lock: several at once
        on one table), then the primary key made of its unique index (a short ACCESS
        EXCLUSIVE lock; ``ADD PRIMARY KEY`` would sort under that lock, alone)."""
        name = f"{self.schema}.{table.name}"
        builds, key = [], []
        if table.appended:
            columns = ", ".join(table.key)
            builds.append(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {table.name}_pkey ON {name} ({columns})"
            )
            key.append(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = "
                f"'{name}'::regclass AND contype = 'p') THEN ALTER TABLE {name} ADD CONSTRAINT "
                f"{table.name}_pkey PRIMARY KEY USING INDEX {table.name}_pkey; END IF; END $$"
            )
        for index in table.indexes:
            where = f" WHERE {index.where}" if index.where else ""
            builds.append(
                f"CREATE INDEX IF NOT EXISTS {table.name}_{index.name} "
                f"ON {name} ({index.columns}){where}"
            )
        return builds, key

    async def _finish(self) -> None:
        conn = self._conn
        assert conn is not None, "open() first"
        # Indexes and statistics, then keys, on this connection and a second one: each
        # statement is one backend's work (a sort), so two keep both cores of a small server
        # busy. Biggest table first; ANALYZE (it waits for its table's builds) beside the
        # last builds. Sorts in memory rather than in spill files.
        sizes = dict(
            await conn.fetch(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = $1", self.schema,
            )
        )  # fmt: skip
        by_size = sorted(self.tables, key=lambda t: -sizes.get(t.name, 0))
        builds: list[str] = []
        then: list[str] = []
        for table in by_size:
            table_builds, table_key = self.table_index_ddl(table)
            builds += table_builds
            then += table_key
        # the biggest table's builds end last: its ANALYZE too (it would wait for them)
        builds += [f"ANALYZE {self.schema}.{t.name}" for t in (*by_size[1:], *by_size[:1])]
        second = await postgres.connect(self.settings)
        try:
            for statements in (builds, then):
                for connection in (conn, second):
                    await connection.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
                await asyncio.gather(_drain(conn, statements), _drain(second, statements))
                assert not statements, statements
            await conn.execute("RESET maintenance_work_mem")
        finally:
            await second.close()

    def finish(self) -> None:
        """Build the indexes a bulk load deferred, and refresh the planner's statistics."""
        self._run(self._finish())

    async def _ensure_meta(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", _LOCK_CLASS)
            for statement in _META_DDL:
                await conn.execute(statement)

    async def _open_async(self) -> dict[Place, int]:
        conn = self._conn = await postgres.connect(self.settings)
        locked = await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_CLASS, self.schema
        )
        if not locked:
            await conn.close()
            self._conn = None
            raise ProjectorBusy(f"another process is writing {self.schema}")
        await self._ensure_meta(conn)
        await self._check_columns(conn)
        await self.prepare(conn)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", _LOCK_CLASS)
            for statement in self.ddl():
                await conn.execute(statement)
        await self.load(conn)
        return await _positions(conn, self.schema)

    def _open(self) -> dict[Place, int]:
        if self.bulk_load and self.columnar and self._writer is None and self._conn is None:
            assert not self.live_writer, "a live writer commits each batch before the next"
            self._loop = loop = asyncio.new_event_loop()
            self._writer = threading.Thread(
                target=loop.run_forever, name=f"{self.schema} writer", daemon=True
            )
            self._writer.start()
        return self._run(self._open_async())

    async def _check_columns(self, conn: asyncpg.Connection) -> None:
        """Refuses a version made by older code: its tables exist (CREATE TABLE IF NOT
        EXISTS keeps them as they are) but lack columns this code writes."""
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = $1", self.schema,
        )  # fmt: skip
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row["table_name"], set()).add(row["column_name"])
        missing = [
            f"{table.name}.{column}"
            for table in self.tables if table.name in found
            for column in column_names(table.columns) if column not in found[table.name]
        ]  # fmt: skip
        if missing:
            raise SchemaOutdated(
                f"{self.schema} was made by an older TradeX and lacks {', '.join(missing)}: "
                f"rebuild it from the log with `tradex projections rebuild {self.name}`"
            )

    async def _apply_async(
        self, events: Sequence[Event] | None, positions: Mapping[Place, int], prepared: Any = None
    ) -> None:
        conn = self._conn
        assert conn is not None, "open() first"
        async with conn.transaction():
            if self.live_writer:
                live = await conn.fetchval(
                    f"SELECT live FROM {META_SCHEMA}.versions WHERE namespace = $1 FOR SHARE",
                    self.namespace,
                )
                if live != self.version:
                    raise VersionSwitched(f"{self.namespace}: v{live} is live, not v{self.version}")
            if events is None:
                await self.write_columns(conn, prepared)
            else:
                await self.write(conn, events)
            places = list(positions)
            await conn.execute(
                f"""INSERT INTO {self.schema}.positions (topic, partition, next_offset)
                SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
                ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset""",
                [t for t, _ in places],
                [p for _, p in places],
                [positions[place] for place in places],
            )
            self._fault.check("sink_before_commit", self._batches)
        self._batches += 1

    def _apply(self, events: Sequence[Event], positions: Mapping[Place, int]) -> None:
        self._run(self._apply_async(events, positions))

    def _apply_columns(self, batch: ColumnarBatch, positions: Mapping[Place, int]) -> None:
        prepared = self.prepare_columns(batch)  # meanwhile the server writes the batch in flight
        if self._writer is None:
            self._run(self._apply_async(None, positions, prepared))
            return
        assert self._loop is not None
        self._wait_pending()
        self._pending = asyncio.run_coroutine_threadsafe(
            self._apply_async(None, dict(positions), prepared), self._loop
        )

    def close(self) -> None:
        """Close the connection (after the batch in flight: its error is raised here)."""
        try:
            self._wait_pending()
        finally:
            if self._conn is not None:
                self._run(self._conn.close())  # the advisory lock goes with the session
                self._conn = None
            if self._writer is not None:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._writer.join()
                self._writer = None
            if self._loop is not None:
                self._loop.close()
                self._loop = None

    # -- versions -----------------------------------------------------------------------

    @classmethod
    def versions(cls, settings: Settings) -> Versions:
        from tradex.projections.projector import namespace

        async def read() -> Versions:
            conn = await postgres.connect(settings)
            try:
                exists = await conn.fetchval("SELECT to_regclass($1)", f"{META_SCHEMA}.versions")
                if exists is None:
                    return Versions(None, None)
                row = await conn.fetchrow(
                    f"SELECT live, building FROM {META_SCHEMA}.versions WHERE namespace = $1",
                    namespace(settings, cls.name),
                )
            finally:
                await conn.close()
            return Versions(None, None) if row is None else Versions(row[0], row[1])

        return asyncio.run(read())

    async def _set_building(self) -> None:
        conn = await postgres.connect(self.settings)
        try:
            await self._ensure_meta(conn)
            await conn.execute(
                f"""INSERT INTO {META_SCHEMA}.versions (namespace, building) VALUES ($1, $2)
                ON CONFLICT (namespace) DO UPDATE SET building = EXCLUDED.building""",
                self.namespace,
                self.version,
            )
        finally:
            await conn.close()

    def mark_building(self) -> None:
        asyncio.run(self._set_building())

    async def _make_live(self) -> None:
        conn = await postgres.connect(self.settings)
        ns, s = self.namespace, self.schema
        try:
            await self._ensure_meta(conn)
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO {META_SCHEMA}.versions (namespace) VALUES ($1) "
                    "ON CONFLICT (namespace) DO NOTHING",
                    ns,
                )
                await conn.execute(
                    f"SELECT 1 FROM {META_SCHEMA}.versions WHERE namespace = $1 FOR UPDATE", ns
                )
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ns}")
                names = ("positions", *(t.name for t in self.tables), *(v.name for v in self.views))
                for name in names:
                    await conn.execute(f"DROP VIEW IF EXISTS {ns}.{name}")
                    await conn.execute(f"CREATE VIEW {ns}.{name} AS SELECT * FROM {s}.{name}")
                await conn.execute(
                    f"""UPDATE {META_SCHEMA}.versions SET live = $2, switched_at = now(),
                    building = CASE WHEN building = $2 THEN NULL ELSE building END
                    WHERE namespace = $1""",
                    ns,
                    self.version,
                )
        finally:
            await conn.close()

    def make_live(self) -> None:
        asyncio.run(self._make_live())

    async def _drop(self) -> None:
        conn = await postgres.connect(self.settings)
        try:
            await self._ensure_meta(conn)
            async with conn.transaction():
                live = await conn.fetchval(
                    f"SELECT live FROM {META_SCHEMA}.versions WHERE namespace = $1 FOR UPDATE",
                    self.namespace,
                )
                if live == self.version:
                    raise RuntimeError(f"{self.schema} is live: it is not dropped")
                await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                await conn.execute(
                    f"UPDATE {META_SCHEMA}.versions SET building = NULL "
                    "WHERE namespace = $1 AND building = $2",
                    self.namespace,
                    self.version,
                )
        finally:
            await conn.close()

    def drop(self) -> None:
        asyncio.run(self._drop())

    def positions(self) -> dict[Place, int]:
        async def read() -> dict[Place, int]:
            conn = await postgres.connect(self.settings)
            try:
                if await conn.fetchval("SELECT to_regclass($1)", f"{self.schema}.positions"):
                    return await _positions(conn, self.schema)
                return {}
            finally:
                await conn.close()

        return asyncio.run(read())

    # -- verification -------------------------------------------------------------------

    def frozen(self) -> Frozen:
        return _PostgresFrozen(self)


async def _drain(conn: asyncpg.Connection, statements: list[str]) -> None:
    """Run statements taken from the front of ``statements`` (shared with other
    connections) until none is left."""
    for _ in range(len(statements)):
        if not statements:
            break
        await conn.execute(statements.pop(0))


async def _positions(conn: asyncpg.Connection, schema: str) -> dict[Place, int]:
    rows = await conn.fetch(f"SELECT topic, partition, next_offset FROM {schema}.positions")
    return {(row[0], row[1]): row[2] for row in rows}


class _PostgresFrozen(Frozen):
    """A REPEATABLE READ transaction: positions and tables from one snapshot."""

    def __init__(self, projector: PostgresProjector) -> None:
        self._projector = projector
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection = self._loop.run_until_complete(
            postgres.connect(projector.settings)
        )
        self._run(self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        self.positions = self._run(_positions(self._conn, projector.schema))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def _table(self, name: str) -> Table:
        for table in self._projector.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def digests(self) -> dict[str, tuple[int, str]]:
        found = {}
        for table in self._projector.tables:
            # order-independent: the sum of each row's first 64 bits of md5 (as numeric)
            row = self._run(
                self._conn.fetchrow(
                    f"SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))"
                    f"::bit(64)::bigint::numeric), 0) FROM {self._projector.schema}.{table.name} t"
                )
            )
            assert row is not None
            found[table.name] = (int(row[0]), str(row[1]))
        return found

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        spec = self._table(table)
        records = self._run(
            self._conn.fetch(
                f"SELECT * FROM {self._projector.schema}.{table} ORDER BY {', '.join(spec.key)}"
            )
        )
        return [tuple(record) for record in records]

    def close(self) -> None:
        self._run(self._conn.execute("ROLLBACK"))
        self._run(self._conn.close())
        self._loop.close()
