"""The ``postgres`` read model: reference data, balances, the journal, withdrawals.

Tables (int64 minor units everywhere; ``*_decimal`` views turn them into decimals with the
asset's scale). Positions are (partition, offset) of the record in its topic:

| table | key | what |
|---|---|---|
| assets | code | code, scale |
| instruments | instrument_id | the instrument's current rules and status |
| users | user_id | name |
| accounts | account_id | owner |
| balances | account_id, asset | available, held, the position of the newest event that changed them |
| postings | event_id, posting_index | the journal: account, asset, delta, event time, position |
| hold_changes | partition, offset, account_id, asset | changes of ``held`` (not postings) |
| withdrawals | withdrawal_id | state (REQUESTED / PAID / RELEASED) and who decided |

Balances as of a time or a log position: :mod:`tradex.projections.ledger_queries`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg

from tradex.projections.ledger_fold import fold
from tradex.projections.pg_store import PostgresProjector, Table
from tradex.projections.projector import Event
from tradex.projections.topics import ACCOUNT_EVENTS, REFERENCE_EVENTS

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
        (("symbol", "symbol"),),
    ),
    Table("users", f"user_id bigint NOT NULL, name text NOT NULL, registered_time_ns bigint NOT NULL, {_POSITION}", ("user_id",)),
    Table(
        "accounts",
        f"account_id bigint NOT NULL, user_id bigint NOT NULL, opened_time_ns bigint NOT NULL, {_POSITION}",
        ("account_id",),
        (("user", "user_id"),),
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
            ("by_time", "account_id, asset, event_time_ns"),
            ("by_position", "account_id, asset, event_partition, event_offset"),
        ),
    ),
    Table(
        "hold_changes",
        f"{_POSITION}, account_id bigint NOT NULL, asset text NOT NULL, delta bigint NOT NULL, "
        "event_time_ns bigint NOT NULL",
        ("event_partition", "event_offset", "account_id", "asset"),
        (
            ("by_time", "account_id, asset, event_time_ns"),
            ("by_position", "account_id, asset, event_partition, event_offset"),
        ),
    ),
    Table(
        "withdrawals",
        "withdrawal_id text NOT NULL, account_id bigint NOT NULL, asset text NOT NULL, "
        "amount bigint NOT NULL, status text NOT NULL, requested_command_id text, "
        "requested_time_ns bigint, decided_command_id text, decided_time_ns bigint",
        ("withdrawal_id",),
        (("by_account", "account_id, status"),),
    ),
)  # fmt: skip

_UPSERTS = {
    "assets": ("code", "scale", "created_time_ns", "event_partition", "event_offset"),
    "instruments": (
        "instrument_id", "symbol", "kind", "base", "quote", "tick_size", "lot_size",
        "min_notional", "price_band_bps", "maker_fee_ppm", "taker_fee_ppm", "status",
        "updated_time_ns", "event_partition", "event_offset",
    ),
    "users": ("user_id", "name", "registered_time_ns", "event_partition", "event_offset"),
    "accounts": ("account_id", "user_id", "opened_time_ns", "event_partition", "event_offset"),
}  # fmt: skip
_WITHDRAWAL_COLUMNS = (
    "withdrawal_id", "account_id", "asset", "amount", "status", "requested_command_id",
    "requested_time_ns", "decided_command_id", "decided_time_ns",
)  # fmt: skip
_POSTING_COLUMNS = (
    "event_id", "posting_index", "account_id", "asset", "delta", "event_time_ns",
    "event_partition", "event_offset",
)  # fmt: skip
_HOLD_COLUMNS = (
    "event_partition", "event_offset", "account_id", "asset", "delta", "event_time_ns",
)  # fmt: skip


class PostgresReadModel(PostgresProjector):
    name: ClassVar[str] = "postgres"
    topics: ClassVar[tuple[str, ...]] = (REFERENCE_EVENTS, ACCOUNT_EVENTS)
    tables: ClassVar[tuple[Table, ...]] = TABLES

    async def write(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        rows = fold(events, ACCOUNT_EVENTS, REFERENCE_EVENTS)
        s = self.schema
        for table, columns in _UPSERTS.items():
            found: dict[Any, tuple[Any, ...]] = getattr(rows, table)
            if found:
                await _upsert(conn, s, table, columns, list(found.values()), columns[:1])
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
            await conn.execute(
                f"""INSERT INTO {s}.balances AS b (account_id, asset, available, held,
                    updated_time_ns, event_partition, event_offset)
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[],
                    $5::bigint[], $6::int[], $7::bigint[])
                ON CONFLICT (account_id, asset) DO UPDATE SET
                    available = b.available + EXCLUDED.available,
                    held = b.held + EXCLUDED.held,
                    updated_time_ns = EXCLUDED.updated_time_ns,
                    event_partition = EXCLUDED.event_partition,
                    event_offset = EXCLUDED.event_offset""",
                [k[0] for k in keys],
                [k[1] for k in keys],
                [d.available for d in deltas],
                [d.held for d in deltas],
                [d.time_ns for d in deltas],
                [d.partition for d in deltas],
                [d.offset for d in deltas],
            )
        if rows.withdrawals:
            values = [tuple(w[c] for c in _WITHDRAWAL_COLUMNS) for w in rows.withdrawals.values()]
            await conn.execute(
                f"""INSERT INTO {s}.withdrawals AS w ({", ".join(_WITHDRAWAL_COLUMNS)})
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[],
                    $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bigint[])
                ON CONFLICT (withdrawal_id) DO UPDATE SET
                    status = EXCLUDED.status,
                    requested_command_id = coalesce(w.requested_command_id, EXCLUDED.requested_command_id),
                    requested_time_ns = coalesce(w.requested_time_ns, EXCLUDED.requested_time_ns),
                    decided_command_id = EXCLUDED.decided_command_id,
                    decided_time_ns = EXCLUDED.decided_time_ns""",
                *[[v[i] for v in values] for i in range(len(_WITHDRAWAL_COLUMNS))],
            )


_PG_TYPES = {int: "bigint", str: "text"}


async def _upsert(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: tuple[str, ...],
    values: list[tuple[Any, ...]],
    key: tuple[str, ...],
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column, from arrays."""
    types = [_PG_TYPES[type(v)] for v in values[0]]
    unnest = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    await conn.execute(
        f"INSERT INTO {schema}.{table} ({', '.join(columns)}) SELECT * FROM unnest({unnest}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
        *[[v[i] for v in values] for i in range(len(columns))],
    )
