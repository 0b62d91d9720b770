"""The tables of the ``clickhouse`` read model and how its folds build their Arrow columns
(shared by the row fold, :mod:`.analytics_model`, and the columnar one,
:mod:`.analytics_columns`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tradex import domain
from tradex.domain import engine
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS
from tradex.projections.clickhouse_store import POSITION_COLUMNS, Table

_I64 = "Int64"
_I32 = "Int32"
_LOW = "LowCardinality(String)"

TABLES = (
    Table("assets", (("code", "String"), ("scale", _I32), ("event_time_ns", _I64)),
          ("code", "log_partition", "log_offset"), REFERENCE_EVENTS),
    Table(
        "instruments",
        (("instrument_id", _I64), ("symbol", "String"), ("event_type", _LOW), ("kind", _LOW),
         ("base", "String"), ("quote", "String"), ("tick_size", _I64), ("lot_size", _I64),
         ("min_notional", _I64), ("price_band_bps", _I32), ("maker_fee_ppm", _I32),
         ("taker_fee_ppm", _I32), ("status", _LOW), ("event_time_ns", _I64)),
        ("instrument_id", "log_partition", "log_offset"), REFERENCE_EVENTS,
    ),
    Table(
        "trades",
        (("instrument_id", _I64), ("trade_id", _I64), ("price", _I64), ("qty", _I64),
         ("taker_side", _LOW), ("maker_order_id", _I64), ("maker_account_id", _I64),
         ("taker_order_id", _I64), ("taker_account_id", _I64), ("event_time_ns", _I64)),
        ("instrument_id", "event_time_ns", "log_partition", "log_offset"), ENGINE_EVENTS,
    ),
    Table(
        "fills",
        (("account_id", _I64), ("instrument_id", _I64), ("order_id", _I64), ("trade_id", _I64),
         ("side", _LOW), ("liquidity", _LOW), ("price", _I64), ("qty", _I64),
         ("notional", _I64), ("fee", _I64), ("event_time_ns", _I64)),
        ("account_id", "instrument_id", "event_time_ns", "log_partition", "log_offset"),
        ACCOUNT_EVENTS,
    ),
    Table(
        "postings",
        (("account_id", _I64), ("asset", _LOW), ("delta", _I64), ("event_type", _LOW),
         ("event_time_ns", _I64)),
        ("account_id", "asset", "event_time_ns", "log_partition", "log_offset", "log_index"),
        ACCOUNT_EVENTS,
    ),
    Table(
        "order_events",
        (("order_id", _I64), ("event_type", _LOW), ("instrument_id", _I64), ("account_id", _I64),
         ("side", _LOW), ("kind", _LOW), ("price", _I64), ("qty", _I64), ("trade_id", _I64),
         ("counter_order_id", _I64), ("reason", _LOW), ("detail", _LOW),
         ("hold_asset", _LOW), ("hold_delta", _I64), ("event_time_ns", _I64)),
        ("order_id", "event_time_ns", "log_topic", "log_partition", "log_offset"),
    ),
    Table(
        "book_updates",
        (("instrument_id", _I64), ("book_seq", _I64), ("side", _LOW), ("price", _I64),
         ("qty", _I64), ("bid_price", _I64), ("bid_qty", _I64), ("ask_price", _I64),
         ("ask_qty", _I64), ("event_time_ns", _I64)),
        ("instrument_id", "event_time_ns", "book_seq", "log_partition", "log_offset"),
        ENGINE_EVENTS,
    ),
)  # fmt: skip

READER_VIEWS = (
    (
        "book_top",
        "SELECT instrument_id, book_seq, event_time_ns, event_time, bid_price, bid_qty, "
        "ask_price, ask_qty, log_topic, log_partition, log_offset FROM {reader}.book_updates",
    ),
    (
        "instruments_current",
        "SELECT i.*, b.scale AS base_scale, q.scale AS quote_scale FROM (SELECT * FROM "
        "{reader}.instruments ORDER BY instrument_id, log_partition, log_offset DESC "
        "LIMIT 1 BY instrument_id) AS i "
        "LEFT JOIN (SELECT code, scale FROM {reader}.assets) AS b ON b.code = i.base "
        "LEFT JOIN (SELECT code, scale FROM {reader}.assets) AS q ON q.code = i.quote",
    ),
)

# LowCardinality columns go in as Arrow dictionaries: a constant is one value and zeros,
# and ClickHouse takes them ~1/3 faster than plain strings (measured here).
DICTIONARY = pa.dictionary(pa.int32(), pa.string())
_ARROW = {_I64: pa.int64(), _I32: pa.int32(), _LOW: DICTIONARY, "String": pa.string()}
_NUMPY = {pa.int64(): np.int64, pa.int32(): np.int32}


def _schema(table: Table) -> pa.Schema:
    """The columns the fold gives: a table's data and position columns, except those its
    DDL fills in (``log_topic`` of a one-topic table, ``log_index`` where it is always 0)."""
    given = [
        (name, kind)
        for name, kind in POSITION_COLUMNS
        if not (name == "log_topic" and table.topic)
        and not (name == "log_index" and name not in table.order_by)
    ]
    return pa.schema([(name, _ARROW[kind]) for name, kind in (*table.columns, *given)])


SCHEMAS: dict[str, pa.Schema] = {table.name: _schema(table) for table in TABLES}
_DEFAULTS = {pa.int64(): 0, pa.int32(): 0, pa.string(): "", DICTIONARY: ""}


def array_of(kind: pa.DataType, n: int, value: Sequence[Any] | Any) -> pa.Array:
    """A column of ``kind``: from an Arrow or numpy array or a sequence of n values, or a
    constant repeated n times (built without n Python objects)."""
    if isinstance(value, pa.Array | pa.ChunkedArray):
        assert len(value) == n, (len(value), n)
        return value if value.type == kind else value.cast(kind)
    if isinstance(value, np.ndarray):
        assert len(value) == n, (len(value), n)
        return pa.array(value.astype(_NUMPY[kind], copy=False))
    if isinstance(value, (list, tuple)):
        assert len(value) == n, (len(value), n)
        if kind == DICTIONARY:
            return pa.array(value, pa.string()).dictionary_encode()
        if kind == pa.string():
            return pa.array(value, kind)
        return pa.array(np.fromiter(value, _NUMPY[kind], n))  # ~2x pa.array(list) here
    if kind == DICTIONARY:
        return pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([value]))
    if kind == pa.string():
        return pa.array([value] * n, kind)
    return pa.array(np.full(n, value, _NUMPY[kind]))


def table_of(name: str, n: int, columns: Mapping[str, Sequence[Any] | Any]) -> pa.Table:
    """An Arrow table of ``name``'s schema: a sequence per column, a constant repeated, or
    the type's zero for a column not given."""
    schema = SCHEMAS[name]
    arrays = [
        array_of(field.type, n, columns.get(field.name, _DEFAULTS[field.type])) for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def concat(name: str, parts: list[pa.Table]) -> pa.Table:
    if not parts:
        return SCHEMAS[name].empty_table()
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


# order_events: per record type, its columns from the record's fields ({column: field})
# and constants; the event type is the record's name.
ORDER_FIELDS: dict[type, dict[str, str]] = {
    engine.Accepted: {"instrument_id": "instrument_id", "order_id": "order_id",
                      "account_id": "account_id", "side": "side", "kind": "kind",
                      "price": "price", "qty": "qty"},
    engine.Rested: {"instrument_id": "instrument_id", "order_id": "order_id",
                    "account_id": "account_id", "side": "side", "price": "price", "qty": "qty"},
    engine.Filled: {"instrument_id": "instrument_id", "order_id": "order_id",
                    "account_id": "account_id", "side": "side", "qty": "filled_qty"},
    engine.Cancelled: {"instrument_id": "instrument_id", "order_id": "order_id",
                       "account_id": "account_id", "qty": "remaining_qty", "reason": "reason",
                       "detail": "detail"},
    engine.Expired: {"instrument_id": "instrument_id", "order_id": "order_id",
                     "account_id": "account_id", "qty": "remaining_qty", "reason": "reason",
                     "detail": "detail"},
    engine.Rejected: {"instrument_id": "instrument_id", "order_id": "order_id",
                      "account_id": "account_id", "reason": "reason", "kind": "request",
                      "detail": "detail"},
    engine.AmendApplied: {"instrument_id": "instrument_id", "order_id": "order_id",
                          "account_id": "account_id", "price": "new_price", "qty": "new_qty"},
    domain.OrderAccepted: {"instrument_id": "instrument_id", "order_id": "order_id",
                           "account_id": "account_id", "side": "side", "kind": "kind",
                           "price": "price", "qty": "qty", "hold_asset": "hold_asset",
                           "hold_delta": "hold_amount"},
    domain.OrderRejected: {"instrument_id": "instrument_id", "order_id": "order_id",
                           "account_id": "account_id", "side": "side", "kind": "kind",
                           "price": "price", "qty": "qty", "reason": "reason",
                           "detail": "detail"},
    domain.CancelRequested: {"instrument_id": "instrument_id", "order_id": "order_id",
                             "account_id": "account_id"},
    # an amend on the account side: the order's bounds (held for) and the hold it added
    domain.OrderAmended: {"instrument_id": "instrument_id", "order_id": "order_id",
                          "account_id": "account_id", "price": "price_bound",
                          "qty": "qty_bound", "hold_asset": "hold_asset",
                          "hold_delta": "hold_added"},
    # the engine confirmed an amend: the order's bounds after it and the hold it released
    # (hold_delta: −hold_released)
    domain.AmendSettled: {"instrument_id": "instrument_id", "order_id": "order_id",
                          "account_id": "account_id", "price": "price_bound",
                          "qty": "qty_bound", "hold_asset": "hold_asset"},
    domain.FillSettled: {"instrument_id": "instrument_id", "order_id": "order_id",
                         "account_id": "account_id", "side": "side", "kind": "liquidity",
                         "price": "price", "qty": "qty", "trade_id": "trade_id",
                         "hold_asset": "hold_asset"},
    domain.HoldReleased: {"order_id": "order_id", "account_id": "account_id",
                          "reason": "end_reason", "hold_asset": "asset"},
}  # fmt: skip
