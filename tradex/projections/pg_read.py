"""Reading the ``postgres`` read model: the queries the API and the audit tools use.

    reader = PostgresReader(settings)           # the live version, through its views
    async with reader.connect() as conn:
        await reader.balances(conn, account_id)
        await reader.balances_as_of(conn, account_id, time_ns=...)       # or position=
        await reader.open_orders(conn, account_id)

Every amount is int64 minor units, prices ticks, quantities lots, as stored; the caller
turns them into decimals with the asset's scale (``assets``) or the instrument's tick and
lot (``instruments``). No SQL outside this module (and the projectors).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import asyncpg

from tradex.infra import postgres
from tradex.infra.settings import Settings
from tradex.projections import orders_fold, timescale
from tradex.projections.projector import namespace

ROWS_MAX = 1_000  # rows of one page, at most


class Balance(NamedTuple):
    asset: str
    available: int
    held: int


def _limit(limit: int) -> int:
    if not 0 < limit <= ROWS_MAX:
        raise ValueError(f"limit must be 1..{ROWS_MAX}, got {limit}")
    return limit


class PostgresReader:
    """Queries over the live version of the ``postgres`` read model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ns = namespace(settings, "postgres")

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await postgres.connect(self.settings)
        try:
            yield conn
        finally:
            await conn.close()

    # -- balances ----------------------------------------------------------------------

    async def balances(self, conn: asyncpg.Connection, account_id: int) -> list[Balance]:
        rows = await conn.fetch(
            f"SELECT asset, available, held FROM {self.ns}.balances WHERE account_id = $1 "
            "ORDER BY asset",
            account_id,
        )
        return [Balance(*row) for row in rows]

    async def balances_as_of(
        self,
        conn: asyncpg.Connection,
        account_id: int,
        *,
        time_ns: int | None = None,
        position: tuple[int, int] | None = None,
    ) -> list[Balance]:
        """Balances after every event at or before ``time_ns`` (event time), or before the
        log position ``(partition, next_offset)`` of ``account-events`` — exactly one of
        them. Total = Σ postings, held = Σ hold changes, available = total − held."""
        if (time_ns is None) == (position is None):
            raise ValueError("give exactly one of time_ns and position")
        if time_ns is not None:
            where, args = "account_id = $1 AND event_time_ns <= $2", [account_id, time_ns]
        else:
            assert position is not None
            where = "account_id = $1 AND event_partition = $2 AND event_offset < $3"
            args = [account_id, position[0], position[1]]
        rows = await conn.fetch(
            f"""SELECT asset, sum(total)::bigint, sum(held)::bigint FROM (
                SELECT asset, delta AS total, 0 AS held FROM {self.ns}.postings WHERE {where}
                UNION ALL
                SELECT asset, 0, delta FROM {self.ns}.hold_changes WHERE {where}
            ) changes GROUP BY asset ORDER BY asset""",
            *args,
        )
        return [Balance(asset, total - held, held) for asset, total, held in rows]

    async def statement(
        self,
        conn: asyncpg.Connection,
        account_id: int,
        start_ns: int,
        end_ns: int,
        limit: int = ROWS_MAX,
        after: tuple[int, int, int] | None = None,
    ) -> tuple[list[asyncpg.Record], bool]:
        """A page of the postings of an account with event time in [start_ns, end_ns), in
        log order, each with the account's balance of that asset after it: at most
        ``limit``, those after ``after`` (partition, offset, posting index) if given; and
        whether the period holds more after them."""
        partition, offset, index = after if after is not None else (-1, -1, -1)
        rows: list[asyncpg.Record] = await conn.fetch(
            f"""SELECT * FROM (
                SELECT event_id, posting_index, asset, delta, event_time_ns, event_partition,
                    event_offset, sum(delta) OVER (PARTITION BY asset ORDER BY event_partition,
                    event_offset, posting_index) AS balance_after
                FROM {self.ns}.postings WHERE account_id = $1 AND event_time_ns < $3
            ) running WHERE event_time_ns >= $2
                AND (event_partition, event_offset, posting_index) > ($5, $6, $7)
            ORDER BY event_partition, event_offset, posting_index LIMIT $4""",
            account_id,
            start_ns,
            end_ns,
            _limit(limit) + 1,
            partition,
            offset,
            index,
        )
        return rows[:limit], len(rows) > limit

    # -- orders, fills, trades -----------------------------------------------------------

    async def order(self, conn: asyncpg.Connection, order_id: int) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT * FROM {self.ns}.orders WHERE order_id = $1", order_id
        )
        return row

    async def order_by_command(
        self, conn: asyncpg.Connection, account_id: int, command_id: str
    ) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT * FROM {self.ns}.orders WHERE account_id = $1 AND command_id = $2",
            account_id,
            command_id,
        )
        return row

    async def open_orders(
        self, conn: asyncpg.Connection, account_id: int, instrument_id: int | None = None
    ) -> list[asyncpg.Record]:
        statuses = list(orders_fold.OPEN_STATUSES)
        if instrument_id is None:
            rows: list[asyncpg.Record] = await conn.fetch(
                f"SELECT * FROM {self.ns}.orders WHERE account_id = $1 "
                "AND status = ANY($2::text[]) ORDER BY order_id",
                account_id,
                statuses,
            )
        else:
            rows = await conn.fetch(
                f"SELECT * FROM {self.ns}.orders WHERE account_id = $1 AND instrument_id = $2 "
                "AND status = ANY($3::text[]) ORDER BY order_id",
                account_id,
                instrument_id,
                statuses,
            )
        return rows

    async def orders(
        self, conn: asyncpg.Connection, account_id: int, *, before_order_id: int | None = None,
        limit: int = 100,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """An account's orders, newest first, a page at a time (keyset on order id)."""
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT * FROM {self.ns}.orders WHERE account_id = $1 AND order_id < $2 "
            "ORDER BY order_id DESC LIMIT $3",
            account_id,
            before_order_id if before_order_id is not None else (1 << 63) - 1,
            _limit(limit),
        )
        return rows

    async def orders_page(
        self, conn: asyncpg.Connection, account_id: int, *, instrument_id: int | None = None,
        from_order_id: int | None = None, start_ns: int | None = None, end_ns: int | None = None,
        limit: int = 500, to_order_id: int | None = None, side: str | None = None,
        status: str | None = None,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """An account's orders, oldest first: from ``from_order_id`` on, else the newest
        ``limit`` (Binance's allOrders) up to ``to_order_id`` (the page before one seen);
        optionally one instrument, a creation-time range, one side, one status."""
        where = ["account_id = $1"]
        args: list[int | str] = [account_id]
        for column, op, value in (
            ("instrument_id", "=", instrument_id), ("order_id", ">=", from_order_id),
            ("order_id", "<=", to_order_id), ("side", "=", side), ("status", "=", status),
            ("created_time_ns", ">=", start_ns), ("created_time_ns", "<=", end_ns),
        ):  # fmt: skip
            if value is not None:
                args.append(value)
                where.append(f"{column} {op} ${len(args)}")
        args.append(_limit(limit))
        order = "ASC" if from_order_id is not None else "DESC"
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT * FROM {self.ns}.orders WHERE {' AND '.join(where)} "
            f"ORDER BY order_id {order} LIMIT ${len(args)}",
            *args,
        )
        return rows if order == "ASC" else rows[::-1]

    async def fills_page(
        self, conn: asyncpg.Connection, account_id: int, *, instrument_id: int | None = None,
        order_id: int | None = None, from_trade_id: int | None = None,
        start_ns: int | None = None, end_ns: int | None = None, limit: int = 500,
        to_trade_id: int | None = None, side: str | None = None,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """An account's fills, oldest first: from ``from_trade_id`` on, else the newest
        ``limit`` (Binance's myTrades) up to ``to_trade_id`` (the page before one seen);
        optionally one instrument, one order, one side, a time range."""
        where = ["account_id = $1"]
        args: list[int | str] = [account_id]
        for column, op, value in (
            ("instrument_id", "=", instrument_id), ("order_id", "=", order_id),
            ("trade_id", ">=", from_trade_id), ("trade_id", "<=", to_trade_id),
            ("side", "=", side),
            ("event_time_ns", ">=", start_ns),
            ("event_time_ns", "<=", end_ns),
        ):  # fmt: skip
            if value is not None:
                args.append(value)
                where.append(f"{column} {op} ${len(args)}")
        args.append(_limit(limit))
        order = "ASC" if from_trade_id is not None else "DESC"
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT * FROM {self.ns}.fills WHERE {' AND '.join(where)} "
            f"ORDER BY trade_id {order}, order_id {order} LIMIT ${len(args)}",
            *args,
        )
        return rows if order == "ASC" else rows[::-1]

    async def fills(
        self, conn: asyncpg.Connection, account_id: int, start_ns: int = 0,
        end_ns: int = (1 << 63) - 1, limit: int = 100,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """An account's fills with event time in [start_ns, end_ns), oldest first."""
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT * FROM {self.ns}.fills WHERE account_id = $1 AND event_time_ns >= $2 "
            "AND event_time_ns < $3 ORDER BY event_time_ns, trade_id LIMIT $4",
            account_id,
            start_ns,
            end_ns,
            _limit(limit),
        )
        return rows

    async def trades(
        self, conn: asyncpg.Connection, instrument_id: int, limit: int = 100
    ) -> list[asyncpg.Record]:
        """An instrument's newest trades, newest first."""
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT * FROM {self.ns}.trades WHERE instrument_id = $1 "
            "ORDER BY event_time_ns DESC, trade_id DESC LIMIT $2",
            instrument_id,
            _limit(limit),
        )
        return rows

    def _withdrawals_sql(self, where: str) -> str:
        """Withdrawal rows with the names of who requested and who decided (the users the
        log registered; a user id of 0 or an unknown one has none)."""
        return (
            f"SELECT w.*, r.name AS requested_by_name, d.name AS decided_by_name "
            f"FROM {self.ns}.withdrawals w "
            f"LEFT JOIN {self.ns}.users r ON r.user_id = w.requested_by "
            f"LEFT JOIN {self.ns}.users d ON d.user_id = w.decided_by WHERE {where}"
        )

    async def withdrawals(self, conn: asyncpg.Connection, account_id: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(
            self._withdrawals_sql("w.account_id = $1") + " ORDER BY w.withdrawal_id", account_id
        )
        return rows

    async def withdrawal(
        self, conn: asyncpg.Connection, withdrawal_id: str
    ) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            self._withdrawals_sql("w.withdrawal_id = $1"), withdrawal_id
        )
        return row

    async def withdrawals_by_status(
        self, conn: asyncpg.Connection, status: str, limit: int = 100
    ) -> list[asyncpg.Record]:
        """Withdrawals of every account in ``status`` (REQUESTED: waiting for a decision;
        PAID / RELEASED: the newest decisions first)."""
        order = "w.requested_time_ns" if status == "REQUESTED" else "w.decided_time_ns DESC"
        rows: list[asyncpg.Record] = await conn.fetch(
            self._withdrawals_sql("w.status = $1") + f" ORDER BY {order}, w.withdrawal_id LIMIT $2",
            status,
            _limit(limit),
        )
        return rows

    # -- reference -------------------------------------------------------------------------

    async def reference(self, conn: asyncpg.Connection) -> dict[str, list[Any]]:
        """Assets, instruments, users and accounts (small tables)."""
        found = {}
        for table, key in (
            ("assets", "code"), ("instruments", "instrument_id"), ("users", "user_id"),
            ("accounts", "account_id"),
        ):  # fmt: skip
            found[table] = list(await conn.fetch(f"SELECT * FROM {self.ns}.{table} ORDER BY {key}"))
        return found


class CandleReader:
    """Candles of the ``timescale`` read model (either storage path, through its views)."""

    def __init__(self, settings: Settings) -> None:
        self.ns = namespace(settings, "timescale")

    async def candles(
        self, conn: asyncpg.Connection, instrument_id: int, interval: str, *,
        start_ns: int | None = None, end_ns: int | None = None, limit: int = 500,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """Candles whose bucket starts in [start_ns, end_ns], oldest first: from
        ``start_ns`` on, else the newest ``limit`` up to ``end_ns`` (Binance's klines)."""
        found = timescale.INTERVALS_BY_NAME[interval]
        columns = ", ".join(timescale.CANDLE_COLUMNS)
        low = timescale.time_text(start_ns if start_ns is not None else 0)
        high = timescale.time_text(end_ns if end_ns is not None else (1 << 62))
        order = "ASC" if start_ns is not None else "DESC"
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT {columns} FROM {self.ns}.candles_{found.name} WHERE instrument_id = $1 "
            f"AND bucket >= $2 AND bucket <= $3 ORDER BY bucket {order} LIMIT $4",
            instrument_id,
            low,
            high,
            _limit(limit),
        )
        return rows if order == "ASC" else rows[::-1]
