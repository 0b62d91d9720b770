"""A backtest's tables: trades and order events of history and of the backtest, as Arrow
tables, written to Parquet (and, on request, to ClickHouse beside the analytics tables).

Columns are int64 ticks, lots and nanoseconds, strings for enums; ``run`` is "history" or
"backtest"; ``position`` is the offset of the ``order-requests`` input that caused the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tradex.domain.engine import (
    Accepted,
    AmendApplied,
    Cancelled,
    Expired,
    Filled,
    Rejected,
    Rested,
    Trade,
)
from tradex.infra.clickhouse import ClickHouse, check_table_name

from .plan import Result

TRADE_COLUMNS = ("run", "partition", "position", "instrument_id", "trade_id", "price", "qty",
                 "taker_side", "maker_order_id", "maker_account_id", "taker_order_id",
                 "taker_account_id", "event_time_ns")  # fmt: skip
ORDER_COLUMNS = ("run", "partition", "position", "event", "instrument_id", "order_id",
                 "account_id", "side", "price", "qty", "reason", "event_time_ns")  # fmt: skip
ORDER_EVENTS = (Accepted, Rested, Filled, Cancelled, Expired, Rejected, AmendApplied)


def _order_row(obj: Any) -> tuple[Any, ...]:
    """(event, instrument, order, account, side, price, qty, reason) of an order event."""
    if isinstance(obj, Accepted | Rested):
        return (type(obj).__name__, obj.instrument_id, obj.order_id, obj.account_id,
                str(obj.side), obj.price, obj.qty, "")  # fmt: skip
    if isinstance(obj, Filled):
        return ("Filled", obj.instrument_id, obj.order_id, obj.account_id, str(obj.side), 0,
                obj.filled_qty, "")  # fmt: skip
    if isinstance(obj, Cancelled | Expired):
        return (type(obj).__name__, obj.instrument_id, obj.order_id, obj.account_id, "", 0,
                obj.remaining_qty, obj.detail or str(obj.reason))  # fmt: skip
    if isinstance(obj, Rejected):
        return ("Rejected", obj.instrument_id, obj.order_id, obj.account_id, "", 0, 0,
                obj.detail or str(obj.reason))  # fmt: skip
    assert isinstance(obj, AmendApplied), type(obj)
    return ("AmendApplied", obj.instrument_id, obj.order_id, obj.account_id, "",
            obj.new_price, obj.new_qty, "lost_priority" if obj.lost_priority else "")  # fmt: skip


def tables(result: Result) -> dict[str, pa.Table]:
    trades: list[tuple[Any, ...]] = []
    orders: list[tuple[Any, ...]] = []
    for run in result.runs:
        for name in ("history", "backtest"):
            events: Iterable[tuple[int, Any]] = getattr(run, name).events
            for position, obj in events:
                if isinstance(obj, Trade):
                    trades.append((name, run.partition, position, obj.instrument_id,
                                   obj.trade_id, obj.price, obj.qty, str(obj.taker_side),
                                   obj.maker_order_id, obj.maker_account_id, obj.taker_order_id,
                                   obj.taker_account_id, obj.event_time_ns))  # fmt: skip
                elif isinstance(obj, ORDER_EVENTS):
                    row = _order_row(obj)
                    orders.append((name, run.partition, position, *row, obj.event_time_ns))
    return {"trades": _table(TRADE_COLUMNS, trades), "orders": _table(ORDER_COLUMNS, orders)}


def _table(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> pa.Table:
    strings = {"run", "taker_side", "event", "side", "reason"}
    arrays = []
    for i, name in enumerate(columns):
        values = [r[i] for r in rows]
        arrays.append(pa.array(values, pa.string() if name in strings else pa.int64()))
    return pa.Table.from_arrays(arrays, names=list(columns))


def write_parquet(found: dict[str, pa.Table], directory: Path) -> list[Path]:
    paths = []
    for name, table in found.items():
        path = directory / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        paths.append(path)
    return paths


def write_clickhouse(found: dict[str, pa.Table], ch: ClickHouse, database: str) -> list[str]:
    """``database``.backtest_trades / backtest_orders, replaced (a run's tables, whole)."""
    check_table_name(database)
    ch.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    names = []
    for name, table in found.items():
        target = check_table_name(f"{database}.backtest_{name}")
        columns = ", ".join(
            f"{f.name} {'String' if pa.types.is_string(f.type) else 'Int64'}" for f in table.schema
        )
        ch.command(f"DROP TABLE IF EXISTS {target}")
        ch.command(f"CREATE TABLE {target} ({columns}) ENGINE = MergeTree "
                   "ORDER BY (run, partition, position)")  # fmt: skip
        if table.num_rows:
            ch.insert_arrow(target, table)
        names.append(target)
    return names
