"""The ``postgres`` read model: reference data, balances, the journal, withdrawals, orders,
fills and trades.

Tables (int64 minor units everywhere; ``*_decimal`` views turn them into decimals with the
asset's scale). Positions are (partition, offset) of the record in its topic:

| table | key | what |
|---|---|---|
| assets | code | code, scale |
| instruments | instrument_id | the instrument's current rules and status |
| users | user_id | name, roles (sorted, comma-separated), when registered, when and by whom (0: the operator) the roles last changed |
| accounts | account_id | owner |
| balances | account_id, asset | available, held, the position of the newest event that changed them |
| postings | event_id, posting_index | the journal: account, asset, delta, event time, position |
| hold_changes | partition, offset, account_id, asset | changes of ``held`` (not postings) |
| withdrawals | withdrawal_id | state (REQUESTED / PAID / RELEASED), when and by whom (the events' `actor`: user ids) it was requested and decided |
| orders | order_id | an order joined across account-events and engine-events (:mod:`.orders_fold`): what was placed, the client's command id, status, filled quantity and notional, fees, reject/cancel reasons from both sides, the newest amend |
| fills | order_id, trade_id | each settled fill leg (FillSettled): side, liquidity, price, qty, notional, fee |
| trades | trade_id | each engine trade: price, qty, taker side, both orders and accounts |

Balances as of a time or a log position: :mod:`tradex.projections.ledger_queries`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, cast

import asyncpg
import numpy as np

from tradex import domain
from tradex.domain import engine
from tradex.domain.journal import FEES_ACCOUNT
from tradex.infra.settings import Settings
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS
from tradex.projections import orders_fold, postgres_columns
from tradex.projections.ledger_fold import LedgerRows, fold
from tradex.projections.pg_store import Index, PostgresProjector, Table, View
from tradex.projections.projector import ColumnarBatch, Event
from tradex.schemas.columns import ColumnSpec

ORDERS_TRACKED_MAX = 20_000_000  # order ids a bulk load keeps (160 MB), else it looks up all
_POSITION = "event_partition int NOT NULL, event_offset bigint NOT NULL"

TABLES = (
    Table("assets", f"code text NOT NULL, scale int NOT NULL, created_time_ns bigint NOT NULL, {_POSITION}", ("code",)),
    Table(
        "instruments",
        "instrument_id bigint NOT NULL, symbol text NOT NULL, kind text NOT NULL, "
        "base text NOT NULL, quote text NOT NULL, tick_size bigint NOT NULL, "
        "lot_size bigint NOT NULL, min_notional bigint NOT NULL, price_band_bps int NOT NULL, "
        "maker_fee_ppm int NOT NULL, taker_fee_ppm int NOT NULL, status text NOT NULL, "
        f"updated_time_ns bigint NOT NULL, {_POSITION}",
        ("instrument_id",),
        (Index("symbol", "symbol"),),
    ),
    Table(
        "users",
        "user_id bigint NOT NULL, name text NOT NULL, roles text NOT NULL, "
        "registered_time_ns bigint NOT NULL, roles_changed_time_ns bigint NOT NULL, "
        f"roles_changed_by bigint NOT NULL, {_POSITION}",
        ("user_id",),
    ),
    Table(
        "accounts",
        f"account_id bigint NOT NULL, user_id bigint NOT NULL, opened_time_ns bigint NOT NULL, {_POSITION}",
        ("account_id",),
        (Index("user", "user_id"),),
    ),
    Table(
        "balances",
        "account_id bigint NOT NULL, asset text NOT NULL, available bigint NOT NULL, "
        f"held bigint NOT NULL, updated_time_ns bigint NOT NULL, {_POSITION}",
        ("account_id", "asset"),
    ),
    Table(
        "postings",
        "event_id uuid NOT NULL, posting_index smallint NOT NULL, account_id bigint NOT NULL, "
        f"asset text NOT NULL, delta bigint NOT NULL, event_time_ns bigint NOT NULL, {_POSITION}",
        ("event_id", "posting_index"),
        (
            Index("by_time", "account_id, asset, event_time_ns"),
            Index("by_position", "account_id, asset, event_partition, event_offset"),
        ),
        appended=True,
    ),
    Table(
        "hold_changes",
        f"{_POSITION}, account_id bigint NOT NULL, asset text NOT NULL, delta bigint NOT NULL, "
        "event_time_ns bigint NOT NULL",
        ("event_partition", "event_offset", "account_id", "asset"),
        (
            Index("by_time", "account_id, asset, event_time_ns"),
            Index("by_position", "account_id, asset, event_partition, event_offset"),
        ),
        appended=True,
    ),
    Table(
        "withdrawals",
        "withdrawal_id text NOT NULL, account_id bigint NOT NULL, asset text NOT NULL, "
        "amount bigint NOT NULL, status text NOT NULL, requested_command_id text, "
        "requested_time_ns bigint, requested_by bigint, decided_command_id text, "
        "decided_time_ns bigint, decided_by bigint",
        ("withdrawal_id",),
        (Index("by_account", "account_id, status"),),
    ),
    Table(
        "orders",
        "order_id bigint NOT NULL, account_id bigint, instrument_id bigint, side text, kind text, "
        "price bigint, qty bigint, command_id text, account_outcome text, hold_asset text, "
        "hold_amount bigint, maker_fee_ppm int, taker_fee_ppm int, stp_mode text, "
        "reject_reason text, "
        "reject_detail text, cancel_requested_time_ns bigint, engine_end text, "
        "engine_end_reason text, engine_end_detail text, account_end text, "
        "released_amount bigint, filled_qty bigint NOT NULL, filled_notional bigint NOT NULL, "
        "settled_qty bigint NOT NULL, settled_notional bigint NOT NULL, fees bigint NOT NULL, "
        "trades int NOT NULL, created_time_ns bigint, updated_time_ns bigint, "
        "amend_offset bigint NOT NULL, amended_price bigint, amended_qty bigint, "
        "refused_offset bigint NOT NULL, refused_request text, refused_reason text, "
        "status text NOT NULL",
        ("order_id",),
        (
            Index("open", "account_id, instrument_id", "status IN ('NEW', 'PARTIALLY_FILLED')"),
            Index("by_account", "account_id, created_time_ns"),
            Index("by_command", "account_id, command_id"),
        ),
    ),
    Table(
        "fills",
        "order_id bigint NOT NULL, trade_id bigint NOT NULL, account_id bigint NOT NULL, "
        "instrument_id bigint NOT NULL, side text NOT NULL, liquidity text NOT NULL, "
        "price bigint NOT NULL, qty bigint NOT NULL, notional bigint NOT NULL, "
        f"fee bigint NOT NULL, fee_asset text NOT NULL, event_time_ns bigint NOT NULL, {_POSITION}",
        ("order_id", "trade_id"),
        (Index("by_account", "account_id, event_time_ns"), Index("by_trade", "trade_id")),
        appended=True,
    ),
    Table(
        "trades",
        "trade_id bigint NOT NULL, instrument_id bigint NOT NULL, price bigint NOT NULL, "
        "qty bigint NOT NULL, taker_side text NOT NULL, maker_order_id bigint NOT NULL, "
        "maker_account_id bigint NOT NULL, taker_order_id bigint NOT NULL, "
        f"taker_account_id bigint NOT NULL, event_time_ns bigint NOT NULL, {_POSITION}",
        ("trade_id",),
        (Index("by_instrument", "instrument_id, event_time_ns"),),
        appended=True,
    ),
)  # fmt: skip

# Decimals for people: amounts with the asset's scale; a price of p ticks is
# p * tick_size quote minor units per lot, i.e. p * tick_size * 10^base_scale /
# (lot_size * 10^quote_scale) quote units per base unit; q lots are q * lot_size /
# 10^base_scale base units.
_INSTRUMENT_JOIN = (
    "JOIN {s}.instruments i ON i.instrument_id = x.instrument_id "
    "JOIN {s}.assets b ON b.code = i.base JOIN {s}.assets q ON q.code = i.quote"
)


def _amount(column: str, scale: str) -> str:
    """``column`` minor units as a decimal with the asset's ``scale`` (exact, no trailing 0)."""
    return f"trim_scale({column}::numeric / power(10::numeric, {scale}))"


def _price(column: str) -> str:
    """Ticks as quote units per base unit (tables joined as in _INSTRUMENT_JOIN)."""
    return (
        f"trim_scale({column}::numeric * i.tick_size * power(10::numeric, b.scale) "
        f"/ (i.lot_size * power(10::numeric, q.scale)))"
    )


def _qty(column: str) -> str:
    """Lots as base units."""
    return f"trim_scale({column}::numeric * i.lot_size / power(10::numeric, b.scale))"


VIEWS = (
    View(
        "balances_decimal",
        f"SELECT x.account_id, x.asset, {_amount('x.available', 'a.scale')} AS available, "
        f"{_amount('x.held', 'a.scale')} AS held, "
        f"{_amount('(x.available + x.held)', 'a.scale')} AS total, x.updated_time_ns, "
        "x.event_partition, x.event_offset FROM {s}.balances x JOIN {s}.assets a ON a.code = x.asset",
    ),
    View(
        "postings_decimal",
        f"SELECT x.event_id, x.posting_index, x.account_id, x.asset, "
        f"{_amount('x.delta', 'a.scale')} AS delta, x.event_time_ns, x.event_partition, "
        "x.event_offset FROM {s}.postings x JOIN {s}.assets a ON a.code = x.asset",
    ),
    View(
        "orders_decimal",
        f"SELECT x.order_id, x.account_id, x.instrument_id, i.symbol, x.command_id, x.side, "
        f"x.kind, x.status, {_price('x.price')} AS price, {_qty('x.qty')} AS qty, "
        f"{_qty('x.filled_qty')} AS filled_qty, CASE WHEN x.filled_qty > 0 THEN "
        f"trim_scale({_price('x.filled_notional')} / x.filled_qty) END AS avg_price, "
        f"{_amount('x.fees', 'q.scale')} AS fees, x.reject_reason, x.engine_end_reason, "
        f"x.created_time_ns, x.updated_time_ns FROM {{s}}.orders x {_INSTRUMENT_JOIN}",
    ),
    View(
        "fills_decimal",
        f"SELECT x.order_id, x.trade_id, x.account_id, x.instrument_id, i.symbol, x.side, "
        f"x.liquidity, {_price('x.price')} AS price, {_qty('x.qty')} AS qty, "
        f"{_amount('x.notional', 'q.scale')} AS notional, {_amount('x.fee', 'q.scale')} AS fee, "
        f"x.fee_asset, x.event_time_ns FROM {{s}}.fills x {_INSTRUMENT_JOIN}",
    ),
    View(
        "trades_decimal",
        f"SELECT x.trade_id, x.instrument_id, i.symbol, {_price('x.price')} AS price, "
        f"{_qty('x.qty')} AS qty, x.taker_side, x.maker_order_id, x.taker_order_id, "
        f"x.event_time_ns FROM {{s}}.trades x {_INSTRUMENT_JOIN}",
    ),
)

_UPSERTS = {
    "assets": ("code", "scale", "created_time_ns", "event_partition", "event_offset"),
    "instruments": (
        "instrument_id", "symbol", "kind", "base", "quote", "tick_size", "lot_size",
        "min_notional", "price_band_bps", "maker_fee_ppm", "taker_fee_ppm", "status",
        "updated_time_ns", "event_partition", "event_offset",
    ),
    "users": (
        "user_id", "name", "roles", "registered_time_ns", "roles_changed_time_ns",
        "roles_changed_by", "event_partition", "event_offset",
    ),
    "accounts": ("account_id", "user_id", "opened_time_ns", "event_partition", "event_offset"),
}  # fmt: skip
# a batch that changes a user's roles without registering them does not know when they
# registered (0): the stored value stays
_KEPT_IF_ZERO = {"users": ("registered_time_ns",)}
_WITHDRAWAL_COLUMNS = (
    "withdrawal_id", "account_id", "asset", "amount", "status", "requested_command_id",
    "requested_time_ns", "requested_by", "decided_command_id", "decided_time_ns", "decided_by",
)  # fmt: skip
_POSTING_COLUMNS = (
    "event_id", "posting_index", "account_id", "asset", "delta", "event_time_ns",
    "event_partition", "event_offset",
)  # fmt: skip
_FILL_COLUMNS = (
    "order_id", "trade_id", "account_id", "instrument_id", "side", "liquidity", "price", "qty",
    "notional", "fee", "fee_asset", "event_time_ns", "event_partition", "event_offset",
)  # fmt: skip
_TRADE_COLUMNS = (
    "trade_id", "instrument_id", "price", "qty", "taker_side", "maker_order_id",
    "maker_account_id", "taker_order_id", "taker_account_id", "event_time_ns",
    "event_partition", "event_offset",
)  # fmt: skip
_ORDER_COLUMNS = (*orders_fold.NAMES, "status")
_HOLD_COLUMNS = (
    "event_partition", "event_offset", "account_id", "asset", "delta", "event_time_ns",
)  # fmt: skip


class PostgresReadModel(PostgresProjector):
    """Columnar (:mod:`.postgres_columns`): the runner decodes its batches in C into columns.
    :class:`PostgresRowReadModel` is the same read model on the row path (its twin)."""

    name: ClassVar[str] = "postgres"
    topics: ClassVar[tuple[str, ...]] = (REFERENCE_EVENTS, ACCOUNT_EVENTS, ENGINE_EVENTS)
    ignores: ClassVar[frozenset[type]] = postgres_columns.IGNORES  # the book is Redis's
    tables: ClassVar[tuple[Table, ...]] = TABLES
    views: ClassVar[tuple[View, ...]] = VIEWS
    columnar: ClassVar[bool] = True
    column_specs: ClassVar[dict[type, ColumnSpec]] = postgres_columns.COLUMN_SPECS
    # a rebuild: the last batch is written alone (finish waits for it), so not too big
    batch_records: ClassVar[int] = 250_000

    def __init__(self, settings: Settings, version: int) -> None:
        super().__init__(settings, version)
        # A bulk load into an empty version knows which orders it stored (sorted ids): a
        # batch reads back and rewrites only those of its orders, not all (None: not known,
        # every order of a batch is looked up).
        self._orders_stored: np.ndarray | None = None

    async def load(self, conn: asyncpg.Connection) -> None:
        empty = await conn.fetchval(f"SELECT NOT EXISTS (SELECT FROM {self.schema}.orders)")
        self._orders_stored = np.empty(0, np.int64) if self.bulk_load and empty else None

    def prepare_columns(self, batch: ColumnarBatch) -> postgres_columns.ColumnRows:
        return postgres_columns.fold_columns(batch)

    async def write_columns(
        self, conn: asyncpg.Connection, rows: postgres_columns.ColumnRows
    ) -> None:
        s = self.schema
        await self._write_order_columns(conn, rows.orders)
        copies = (
            ("fills", _FILL_COLUMNS, rows.fills), ("trades", _TRADE_COLUMNS, rows.trades),
            ("postings", _POSTING_COLUMNS, rows.postings), ("hold_changes", _HOLD_COLUMNS, rows.holds),
        )  # fmt: skip
        for table, names, columns in copies:
            if columns and columns[0]:
                await conn.copy_records_to_table(
                    table, schema_name=s, records=zip(*columns, strict=True), columns=names
                )
        if rows.balances and rows.balances[0]:
            await self._add_balances(conn, *rows.balances)
        await self._write_reference(conn, rows.reference)

    async def write(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        rows = fold(events, ACCOUNT_EVENTS, REFERENCE_EVENTS)
        s = self.schema
        await self._write_orders(conn, events)
        if rows.postings:
            await conn.copy_records_to_table(
                "postings", schema_name=s, records=rows.postings, columns=_POSTING_COLUMNS
            )
        if rows.holds:
            await conn.copy_records_to_table(
                "hold_changes", schema_name=s, records=rows.holds, columns=_HOLD_COLUMNS
            )
        if rows.balances:
            keys = list(rows.balances)
            deltas = [rows.balances[key] for key in keys]
            await self._add_balances(
                conn, [k[0] for k in keys], [k[1] for k in keys], [d[0] for d in deltas],
                [d[1] for d in deltas], [d[4] for d in deltas], [d[2] for d in deltas],
                [d[3] for d in deltas],
            )  # fmt: skip
        await self._write_reference(conn, rows)

    async def _add_balances(
        self, conn: asyncpg.Connection, accounts: list[int], assets: list[str],
        available: list[int], held: list[int], times: list[int], partitions: list[int],
        offsets: list[int],
    ) -> None:  # fmt: skip
        """Balance deltas added to the stored balances (one statement). The row keeps the
        newest change by (event time, partition, offset): an account written from several
        partitions (the system accounts) gets the same row whatever order a live run or a
        rebuild applied the partitions in."""
        await conn.execute(
            f"""INSERT INTO {self.schema}.balances AS b (account_id, asset, available, held,
                updated_time_ns, event_partition, event_offset)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[],
                $5::bigint[], $6::int[], $7::bigint[])
            ON CONFLICT (account_id, asset) DO UPDATE SET
                available = b.available + EXCLUDED.available,
                held = b.held + EXCLUDED.held,
                updated_time_ns = GREATEST(b.updated_time_ns, EXCLUDED.updated_time_ns),
                (event_partition, event_offset) = (SELECT p, o FROM (VALUES
                    (b.updated_time_ns, b.event_partition, b.event_offset),
                    (EXCLUDED.updated_time_ns, EXCLUDED.event_partition, EXCLUDED.event_offset)
                ) v(t, p, o) ORDER BY t DESC, p DESC, o DESC LIMIT 1)""",
            accounts, assets, available, held, times, partitions, offsets,
        )  # fmt: skip

    async def _write_reference(self, conn: asyncpg.Connection, rows: LedgerRows) -> None:
        """Reference rows and withdrawals (upserted)."""
        s = self.schema
        for table, columns in _UPSERTS.items():
            found: dict[Any, tuple[Any, ...]] = getattr(rows, table)
            if found:
                await _upsert(conn, s, table, columns, list(found.values()), columns[:1],
                              _KEPT_IF_ZERO.get(table, ()))  # fmt: skip
        if rows.withdrawals:
            values = [tuple(w[c] for c in _WITHDRAWAL_COLUMNS) for w in rows.withdrawals.values()]
            await conn.execute(
                f"""INSERT INTO {s}.withdrawals AS w ({", ".join(_WITHDRAWAL_COLUMNS)})
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[],
                    $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::bigint[],
                    $11::bigint[])
                ON CONFLICT (withdrawal_id) DO UPDATE SET
                    status = EXCLUDED.status,
                    requested_command_id = coalesce(w.requested_command_id, EXCLUDED.requested_command_id),
                    requested_time_ns = coalesce(w.requested_time_ns, EXCLUDED.requested_time_ns),
                    requested_by = coalesce(w.requested_by, EXCLUDED.requested_by),
                    decided_command_id = EXCLUDED.decided_command_id,
                    decided_time_ns = EXCLUDED.decided_time_ns,
                    decided_by = EXCLUDED.decided_by""",
                *[[v[i] for v in values] for i in range(len(_WITHDRAWAL_COLUMNS))],
            )

    async def _write_orders(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Orders merged with what is stored; fills and trades appended."""
        s = self.schema
        orders: dict[int, list[Any]] = {}
        fills: list[tuple[Any, ...]] = []
        trades: list[tuple[Any, ...]] = []
        facts, apply = orders_fold.facts, orders_fold.apply
        for event in events:
            topic, body = event.topic, event.body
            if topic == REFERENCE_EVENTS:
                continue
            engine_side = topic == ENGINE_EVENTS
            kind = type(body)
            for fact in facts(engine_side, event.offset, body):
                apply(orders, fact)
            if kind is domain.FillSettled:
                b = body
                fee_asset = next((p.asset for p in b.postings if p.account_id == FEES_ACCOUNT), "")
                fills.append((
                    b.order_id, b.trade_id, b.account_id, b.instrument_id, str(b.side),
                    str(b.liquidity), b.price, b.qty, b.notional, b.fee, fee_asset,
                    b.event_time_ns, event.partition, event.offset,
                ))  # fmt: skip
            elif kind is engine.Trade:
                b = body
                trades.append((
                    b.trade_id, b.instrument_id, b.price, b.qty, str(b.taker_side),
                    b.maker_order_id, b.maker_account_id, b.taker_order_id, b.taker_account_id,
                    b.event_time_ns, event.partition, event.offset,
                ))  # fmt: skip
        await self._write_order_rows(conn, orders)
        if fills:
            await conn.copy_records_to_table(
                "fills", schema_name=s, records=fills, columns=_FILL_COLUMNS
            )
        if trades:
            await conn.copy_records_to_table(
                "trades", schema_name=s, records=trades, columns=_TRADE_COLUMNS
            )

    def _stored_among(self, ids: list[int]) -> list[int]:
        """Which of a batch's orders may be stored (all, unless this bulk load knows)."""
        known = self._orders_stored
        if known is None:
            return ids
        batch_ids = np.fromiter(ids, np.int64, len(ids))
        merged = np.union1d(known, batch_ids)
        self._orders_stored = merged if len(merged) <= ORDERS_TRACKED_MAX else None
        return cast(list[int], batch_ids[np.isin(batch_ids, known, assume_unique=True)].tolist())

    async def _take_stored(self, conn: asyncpg.Connection, ids: list[int]) -> list[Any]:
        """The stored rows of those of ``ids`` this version may hold, deleted (the batch
        rewrites them merged)."""
        lookup = self._stored_among(ids)
        if not lookup:
            return []
        # one statement, one index probe per order (a SELECT then a DELETE took two)
        return cast(list[Any], await conn.fetch(
            f"DELETE FROM {self.schema}.orders WHERE order_id = ANY($1::bigint[]) "
            f"RETURNING {', '.join(orders_fold.NAMES)}",
            lookup,
        ))  # fmt: skip

    async def _write_order_columns(
        self, conn: asyncpg.Connection, columns: list[list[Any]]
    ) -> None:
        """:meth:`_write_order_rows` of the columnar path: the batch's orders as columns
        (ids ascending); only the rows of stored orders are made and merged one by one."""
        if not columns or not columns[0]:
            return
        stored = await self._take_stored(conn, columns[0])
        if stored:
            at = np.searchsorted(np.asarray(columns[0], np.int64), [r[0] for r in stored])
            merge = orders_fold.merge
            for record, i in zip(stored, at.tolist(), strict=True):
                assert columns[0][i] == record[0], (columns[0][i], record[0])
                merged = merge(list(record), [column[i] for column in columns])
                for column, value in zip(columns, merged, strict=True):
                    column[i] = value
        await conn.copy_records_to_table(
            "orders", schema_name=self.schema, columns=_ORDER_COLUMNS,
            records=zip(*columns, postgres_columns.statuses(columns), strict=True),
        )  # fmt: skip

    async def _write_order_rows(
        self, conn: asyncpg.Connection, orders: dict[int, list[Any]]
    ) -> None:
        """The batch's order rows merged with the stored ones (replaced)."""
        merge = orders_fold.merge
        if orders:
            for record in await self._take_stored(conn, list(orders)):
                orders[record[0]] = merge(list(record), orders[record[0]])
            status = orders_fold.status
            await conn.copy_records_to_table(
                "orders", schema_name=self.schema, columns=_ORDER_COLUMNS,
                records=[(*row, status(row)) for row in orders.values()],
            )  # fmt: skip


class PostgresRowReadModel(PostgresReadModel):
    """The same read model on the row path: a Python object per record, folded by
    :func:`.ledger_fold.fold` and :func:`.orders_fold.facts` — the columnar path's twin."""

    columnar: ClassVar[bool] = False
    batch_records: ClassVar[int] = 20_000


_PG_TYPES = {int: "bigint", str: "text"}


async def _upsert(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: tuple[str, ...],
    values: list[tuple[Any, ...]],
    key: tuple[str, ...],
    kept_if_zero: tuple[str, ...] = (),
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column, from arrays (a column of
    ``kept_if_zero`` keeps its stored value where the new one is 0)."""
    types = [_PG_TYPES[type(v)] for v in values[0]]
    unnest = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    updates = ", ".join(
        f"{c} = CASE WHEN EXCLUDED.{c} = 0 THEN t.{c} ELSE EXCLUDED.{c} END"
        if c in kept_if_zero
        else f"{c} = EXCLUDED.{c}"
        for c in columns
        if c not in key
    )
    await conn.execute(
        f"INSERT INTO {schema}.{table} AS t ({', '.join(columns)}) SELECT * FROM unnest({unnest}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
        *[[v[i] for v in values] for i in range(len(columns))],
    )
