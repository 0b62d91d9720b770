"""The ``timescale`` read model: trades and OHLCV candles (1m, 5m, 15m, 1h, 4h, 1d).

Two ways to store it, one set of tables and queries for readers (views ``<ns>.trades`` and
``<ns>.candles_<interval>``: instrument_id, bucket (timestamptz, the interval's start in
UTC, aligned to the epoch), open, high, low, close, volume (lots), quote_volume
(Σ price·qty, ticks·lots), trades, first_trade_id, last_trade_id):

- **with the ``timescaledb`` extension** (compose.yaml's TimescaleDB): ``trades`` is a
  hypertable on ``time``; each candle interval is a continuous aggregate over it
  (``first``/``last`` ordered by trade id, real-time aggregation on, a refresh policy);
- **without it** (plain PostgreSQL, as on these machines): ``trades`` is natively
  partitioned by day on ``time`` (partitions created as trades arrive) and the projector
  maintains each candle table itself: per batch it aggregates the trades per (instrument,
  bucket) and merges them into the stored candle — high/low by max/min, volumes and counts
  by sum, open/close by the lowest/highest trade id — so any batching gives the same
  candles.

The path is chosen when a version is created (``pg_available_extensions``) and recorded
in it. All DDL of both paths is in :func:`plain_ddl` and :func:`timescale_ddl`; queries in
:func:`candles_sql`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import asyncpg

from tradex.domain import engine
from tradex.log.topics import ENGINE_EVENTS
from tradex.projections.pg_store import Index, PostgresProjector, Table
from tradex.projections.projector import Event

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S


class Interval(NamedTuple):
    name: str  # table suffix
    seconds: int
    sql: str  # as a PostgreSQL interval


INTERVALS = (
    Interval("1m", 60, "1 minute"),
    Interval("5m", 300, "5 minutes"),
    Interval("15m", 900, "15 minutes"),
    Interval("1h", 3_600, "1 hour"),
    Interval("4h", 14_400, "4 hours"),
    Interval("1d", 86_400, "1 day"),
)
INTERVALS_BY_NAME = {i.name: i for i in INTERVALS}

_TRADE_COLUMNS = (
    "trade_id", "instrument_id", "time", "event_time_ns", "price", "qty", "taker_side",
    "maker_order_id", "maker_account_id", "taker_order_id", "taker_account_id",
    "event_partition", "event_offset",
)  # fmt: skip
TRADES = Table(
    "trades",
    "trade_id bigint NOT NULL, instrument_id bigint NOT NULL, time timestamptz NOT NULL, "
    "event_time_ns bigint NOT NULL, price bigint NOT NULL, qty bigint NOT NULL, "
    "taker_side text NOT NULL, maker_order_id bigint NOT NULL, maker_account_id bigint NOT NULL, "
    "taker_order_id bigint NOT NULL, taker_account_id bigint NOT NULL, "
    "event_partition int NOT NULL, event_offset bigint NOT NULL",
    ("time", "trade_id"),
    (Index("by_instrument", "instrument_id, time"),),
    partition_by="RANGE (time)",
)
CANDLE_COLUMNS = (
    "instrument_id", "bucket", "open", "high", "low", "close", "volume", "quote_volume",
    "trades", "first_trade_id", "last_trade_id",
)  # fmt: skip
CANDLES = tuple(
    Table(
        f"candles_{interval.name}",
        "instrument_id bigint NOT NULL, bucket timestamptz NOT NULL, open bigint NOT NULL, "
        "high bigint NOT NULL, low bigint NOT NULL, close bigint NOT NULL, "
        "volume bigint NOT NULL, quote_volume numeric NOT NULL, trades bigint NOT NULL, "
        "first_trade_id bigint NOT NULL, last_trade_id bigint NOT NULL",
        ("instrument_id", "bucket"),
    )
    for interval in INTERVALS
)


def plain_ddl(schema: str) -> list[str]:
    """Extra statements of the plain path (the tables themselves come from ``Table``s)."""
    return [f"CREATE TABLE IF NOT EXISTS {schema}.storage (path text NOT NULL)"]


def timescale_ddl(schema: str) -> list[str]:
    """The tables of the extension path for a version in ``schema`` (the schema and its
    positions table come first, as for every PostgreSQL read model)."""
    statements = [
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        f"CREATE TABLE IF NOT EXISTS {schema}.trades ({TRADES.columns}, "
        f"PRIMARY KEY ({', '.join(TRADES.key)}))",
        f"SELECT create_hypertable('{schema}.trades', 'time', if_not_exists => TRUE)",
        f"CREATE INDEX IF NOT EXISTS trades_by_instrument ON {schema}.trades (instrument_id, time)",
    ]
    for interval in INTERVALS:
        view = f"{schema}.candles_{interval.name}"
        statements += [
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {view}
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT instrument_id, time_bucket(INTERVAL '{interval.sql}', time) AS bucket,
                first(price, trade_id) AS open, max(price) AS high, min(price) AS low,
                last(price, trade_id) AS close, sum(qty)::bigint AS volume,
                sum(price::numeric * qty) AS quote_volume, count(*) AS trades,
                min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
            FROM {schema}.trades
            GROUP BY instrument_id, bucket
            WITH NO DATA""",
            f"""SELECT add_continuous_aggregate_policy('{view}',
                start_offset => NULL, end_offset => INTERVAL '{interval.sql}',
                schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE)""",
        ]
    return statements


def candles_sql(namespace: str, interval: str) -> str:
    """The candles of one instrument between two times (both paths, through the views):
    parameters $1 instrument_id, $2 from (timestamptz, inclusive), $3 to (exclusive),
    $4 limit."""
    found = INTERVALS_BY_NAME[interval]
    return (
        f"SELECT {', '.join(CANDLE_COLUMNS)} FROM {namespace}.candles_{found.name} "
        "WHERE instrument_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket LIMIT $4"
    )


class _Candle:
    __slots__ = ("close", "first", "high", "last", "low", "open", "quote", "trades", "volume")

    def __init__(self, trade_id: int, price: int, qty: int) -> None:
        self.open = self.high = self.low = self.close = price
        self.volume, self.quote, self.trades = qty, price * qty, 1
        self.first = self.last = trade_id

    def add(self, trade_id: int, price: int, qty: int) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.volume += qty
        self.quote += price * qty
        self.trades += 1
        if trade_id < self.first:
            self.first, self.open = trade_id, price
        if trade_id > self.last:
            self.last, self.close = trade_id, price


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def time_text(time_ns: int) -> datetime.datetime:
    """A ``timestamptz`` value (microseconds; the ns are in ``event_time_ns``)."""
    return EPOCH + datetime.timedelta(microseconds=time_ns // 1_000)


class TimescaleReadModel(PostgresProjector):
    name: ClassVar[str] = "timescale"
    topics: ClassVar[tuple[str, ...]] = (ENGINE_EVENTS,)
    ignores: ClassVar[frozenset[type]] = frozenset(
        cls for cls in engine.ENGINE_EVENT_TYPES if cls is not engine.Trade
    )
    tables: ClassVar[tuple[Table, ...]] = (TRADES, *CANDLES)

    extension = False  # set on open: the timescaledb path is in use
    _partitions: set[int]

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """Choose the path for a new version; keep the one an existing version uses."""
        have = await conn.fetchval("SELECT to_regclass($1)", f"{self.schema}.storage")
        if have is not None:
            path = await conn.fetchval(f"SELECT path FROM {self.schema}.storage")
            self.extension = path == "timescaledb"
            return
        available = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
        self.extension = bool(available)

    def table_ddl(self) -> list[str]:
        if self.extension:
            return timescale_ddl(self.schema)
        return [*super().table_ddl(), *plain_ddl(self.schema)]

    async def load(self, conn: asyncpg.Connection) -> None:
        self._partitions = set()
        if not await conn.fetchval(f"SELECT count(*) FROM {self.schema}.storage"):
            await conn.execute(
                f"INSERT INTO {self.schema}.storage VALUES ($1)",
                "timescaledb" if self.extension else "plain",
            )
        if not self.extension:
            rows = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n "
                "ON n.oid = p.relnamespace WHERE n.nspname = $1 AND p.relname = 'trades'",
                self.schema,
            )
            self._partitions = {int(row[0].rpartition("_d")[2]) for row in rows}

    async def write(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        trades: list[tuple[Any, ...]] = []
        candles: list[dict[tuple[int, int], _Candle]] = [{} for _ in INTERVALS]
        widths = [interval.seconds * NS_PER_S for interval in INTERVALS]
        for event in events:
            b = event.body
            if type(b) is not engine.Trade:
                continue
            t = b.event_time_ns
            trades.append((
                b.trade_id, b.instrument_id, time_text(t), t, b.price, b.qty, str(b.taker_side),
                b.maker_order_id, b.maker_account_id, b.taker_order_id, b.taker_account_id,
                event.partition, event.offset,
            ))  # fmt: skip
            if self.extension:
                continue
            for found, width in zip(candles, widths, strict=True):
                key = (b.instrument_id, t - t % width)
                candle = found.get(key)
                if candle is None:
                    found[key] = _Candle(b.trade_id, b.price, b.qty)
                else:
                    candle.add(b.trade_id, b.price, b.qty)
        if not trades:
            return
        s = self.schema
        if not self.extension:
            await self._ensure_partitions(conn, {row[3] // DAY_NS for row in trades})
        await conn.copy_records_to_table("trades", schema_name=s, records=trades,
                                         columns=_TRADE_COLUMNS)  # fmt: skip
        for interval, found in zip(INTERVALS, candles, strict=True):
            if found:
                await _merge_candles(conn, f"{s}.candles_{interval.name}", found)

    async def _ensure_partitions(self, conn: asyncpg.Connection, days: set[int]) -> None:
        for day in sorted(days - self._partitions):
            start, end = time_text(day * DAY_NS), time_text((day + 1) * DAY_NS)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.schema}.trades_d{day} PARTITION OF "
                f"{self.schema}.trades FOR VALUES FROM ('{start.isoformat()}') "
                f"TO ('{end.isoformat()}')"
            )
            self._partitions.add(day)


async def _merge_candles(
    conn: asyncpg.Connection, table: str, found: dict[tuple[int, int], _Candle]
) -> None:
    keys = list(found)
    rows = [found[key] for key in keys]
    await conn.execute(
        f"""INSERT INTO {table} AS c ({", ".join(CANDLE_COLUMNS)})
        SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[],
            $5::bigint[], $6::bigint[], $7::bigint[], $8::numeric[], $9::bigint[],
            $10::bigint[], $11::bigint[])
        ON CONFLICT (instrument_id, bucket) DO UPDATE SET
            open = CASE WHEN EXCLUDED.first_trade_id < c.first_trade_id
                        THEN EXCLUDED.open ELSE c.open END,
            close = CASE WHEN EXCLUDED.last_trade_id > c.last_trade_id
                         THEN EXCLUDED.close ELSE c.close END,
            high = greatest(c.high, EXCLUDED.high),
            low = least(c.low, EXCLUDED.low),
            volume = c.volume + EXCLUDED.volume,
            quote_volume = c.quote_volume + EXCLUDED.quote_volume,
            trades = c.trades + EXCLUDED.trades,
            first_trade_id = least(c.first_trade_id, EXCLUDED.first_trade_id),
            last_trade_id = greatest(c.last_trade_id, EXCLUDED.last_trade_id)""",
        [key[0] for key in keys],
        [time_text(key[1]) for key in keys],
        [r.open for r in rows],
        [r.high for r in rows],
        [r.low for r in rows],
        [r.close for r in rows],
        [r.volume for r in rows],
        [r.quote for r in rows],
        [r.trades for r in rows],
        [r.first for r in rows],
        [r.last for r in rows],
    )
