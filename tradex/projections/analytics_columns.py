"""The columnar fold of the ``clickhouse`` read model: decoded columns in, Arrow tables out.

The same tables, rows and values as the row fold (:func:`.analytics_model.fold`, its twin:
``tests/projections/test_analytics_columns.py`` compares them on a whole exchange log),
built without a Python object per record: each table's columns are the decoded columns of
the record types that feed it (numpy arrays and Arrow buffers), renamed, cast, negated or
repeated per posting with numpy; enums and low-cardinality strings stay dictionary codes
all the way into ClickHouse's ``LowCardinality`` columns. The book's top after each L2
delta comes from :class:`.book_state.BookState` (a Numba kernel over the arrays, in log
order).

:data:`COLUMN_SPECS` says which values of which types the runner decodes: only those the
tables take (so, e.g., no command ids and no envelope but the payload's event time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from tradex import domain
from tradex.domain import engine
from tradex.domain.reference import Instrument
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS
from tradex.projections.analytics_tables import ORDER_FIELDS, concat, table_of
from tradex.projections.book_state import SIDE_BUY, SIDE_SELL, BookState
from tradex.projections.projector import ColumnarBatch
from tradex.schemas.columns import Column, ColumnSpec, Dictionary, Enum, Strings, TypeColumns

POSTING_TYPES = (domain.Deposited, domain.WithdrawalPaid, domain.FillSettled)
INSTRUMENT_TYPES = (
    domain.InstrumentCreated,
    domain.InstrumentRulesUpdated,
    domain.InstrumentHalted,
    domain.InstrumentResumed,
)
TRADE_FIELDS = engine.Trade._fields
FILL_FIELDS = ("account_id", "instrument_id", "order_id", "trade_id", "side", "liquidity",
               "price", "qty", "notional", "fee")  # fmt: skip
POSTING_FIELDS = ("postings.account_id", "postings.asset", "postings.delta")
# values computed into order_events beyond ORDER_FIELDS' renames
ORDER_COMPUTED_FIELDS: dict[type, tuple[str, ...]] = {
    engine.AmendApplied: ("lost_priority",),
    domain.AmendSettled: ("hold_released",),
    domain.FillSettled: ("hold_consumed",),
    domain.HoldReleased: ("amount",),
}
# strings that go into LowCardinality columns: dictionary-encoded by the decoder
DICTIONARY_STRINGS = frozenset(("hold_asset", "asset", "detail", "request", "postings.asset"))


def _spec(fields: Iterable[str]) -> ColumnSpec:
    wanted = frozenset((*fields, "event_time_ns"))
    return ColumnSpec(wanted, frozenset(), DICTIONARY_STRINGS & wanted)


def _specs() -> dict[type, ColumnSpec]:
    wanted: dict[type, set[str]] = {}
    for kind, fields in ORDER_FIELDS.items():
        wanted.setdefault(kind, set()).update(fields.values())
    for kind, computed in ORDER_COMPUTED_FIELDS.items():
        wanted[kind].update(computed)
    wanted.setdefault(engine.Trade, set()).update(TRADE_FIELDS)
    wanted[domain.FillSettled].update(FILL_FIELDS)
    for kind in POSTING_TYPES:
        wanted.setdefault(kind, set()).update(POSTING_FIELDS)
    wanted[engine.L2Delta] = set(engine.L2Delta._fields)
    wanted[domain.AssetCreated] = {"asset.code", "asset.scale"}
    for kind in INSTRUMENT_TYPES:
        wanted[kind] = {f"instrument.{field}" for field in Instrument._fields}
    return {kind: _spec(fields) for kind, fields in wanted.items()}


COLUMN_SPECS: dict[type, ColumnSpec] = _specs()


def arrow(column: Column) -> pa.Array:
    """A decoded column as Arrow (no copy of numbers; codes stay codes)."""
    if isinstance(column, np.ndarray):
        return pa.array(column)
    assert isinstance(column, Strings | Dictionary | Enum), type(column)
    return column.arrow()


def _taken(column: Column, rows: np.ndarray) -> pa.Array:
    """``column`` repeated per item (``rows``: the parent record of each item)."""
    if isinstance(column, np.ndarray):
        return pa.array(column[rows])
    assert isinstance(column, Strings | Dictionary | Enum), type(column)
    return column.take(rows).arrow()


def _positions(batch: ColumnarBatch, kind: type) -> dict[str, Any]:
    return {"log_partition": batch.partition(kind), "log_offset": batch.offset(kind)}


def _reference(batch: ColumnarBatch, tables: dict[str, pa.Table]) -> None:
    assets = batch.types.get(domain.AssetCreated)
    if assets is not None:
        tables["assets"] = table_of("assets", len(assets), {
            "code": arrow(assets["asset.code"]), "scale": assets["asset.scale"],
            "event_time_ns": assets["event_time_ns"],
            **_positions(batch, domain.AssetCreated),
        })  # fmt: skip
    parts = []
    for kind in INSTRUMENT_TYPES:
        found = batch.types.get(kind)
        if found is None:
            continue
        columns: dict[str, Any] = {
            field: arrow(found[f"instrument.{field}"]) for field in Instrument._fields
        }
        columns.update(
            event_type=kind.__name__, event_time_ns=found["event_time_ns"],
            **_positions(batch, kind),
        )  # fmt: skip
        parts.append(table_of("instruments", len(found), columns))
    if parts:
        tables["instruments"] = concat("instruments", parts)


def _postings(batch: ColumnarBatch) -> pa.Table:
    """One row per journal posting; ``log_index`` is the posting's index in its event."""
    parts = []
    for kind in POSTING_TYPES:
        found = batch.types.get(kind)
        if found is None:
            continue
        items = found.items["postings"]
        parent = items.parent
        parts.append(table_of("postings", len(items), {
            "account_id": items["postings.account_id"], "asset": arrow(items["postings.asset"]),
            "delta": items["postings.delta"], "event_type": kind.__name__,
            "event_time_ns": _taken(found["event_time_ns"], parent),
            "log_partition": batch.partition(kind)[parent],
            "log_offset": batch.offset(kind)[parent], "log_index": items.index,
        }))  # fmt: skip
    return concat("postings", parts)


def _lost_priority(lost: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        lost.astype(np.int32), pa.array(["", "lost_priority"], pa.string())
    )


def _order_part(batch: ColumnarBatch, kind: type, found: TypeColumns) -> pa.Table:
    columns: dict[str, Any] = {
        column: arrow(found[field]) for column, field in ORDER_FIELDS[kind].items()
    }
    if kind is engine.AmendApplied:
        columns["detail"] = _lost_priority(np.asarray(found["lost_priority"]))
    elif kind is domain.AmendSettled:
        columns["hold_delta"] = -np.asarray(found["hold_released"])
    elif kind is domain.FillSettled:
        columns["hold_delta"] = -np.asarray(found["hold_consumed"])
    elif kind is domain.HoldReleased:
        columns["hold_delta"] = -np.asarray(found["amount"])
    topic = ENGINE_EVENTS if kind.__module__ == engine.__name__ else ACCOUNT_EVENTS
    columns.update(
        event_type=kind.__name__, event_time_ns=found["event_time_ns"], log_topic=topic,
        **_positions(batch, kind),
    )  # fmt: skip
    return table_of("order_events", len(found), columns)


def _trade_order_part(batch: ColumnarBatch, trades: TypeColumns) -> pa.Table:
    """The order_events row of a Trade: the taker's order, the maker's as the counter order."""
    return table_of("order_events", len(trades), {
        "event_type": "Trade", "instrument_id": trades["instrument_id"],
        "price": trades["price"], "qty": trades["qty"], "trade_id": trades["trade_id"],
        "event_time_ns": trades["event_time_ns"], "order_id": trades["taker_order_id"],
        "account_id": trades["taker_account_id"], "side": arrow(trades["taker_side"]),
        "kind": "TAKER", "counter_order_id": trades["maker_order_id"],
        "log_topic": ENGINE_EVENTS, **_positions(batch, engine.Trade),
    })  # fmt: skip


def _sides(side: Column) -> np.ndarray:
    """Book sides (SIDE_BUY / SIDE_SELL, -1: another symbol) of an enum column."""
    assert isinstance(side, Enum), type(side)
    table = [SIDE_BUY if s == "BUY" else SIDE_SELL if s == "SELL" else -1 for s in side.symbols]
    return np.array(table, np.int64)[side.codes]


def _book(batch: ColumnarBatch, deltas: TypeColumns, books: BookState) -> pa.Table:
    tops = books.apply(
        np.asarray(deltas["instrument_id"]), _sides(deltas["side"]), np.asarray(deltas["price"]),
        np.asarray(deltas["qty"]), np.asarray(deltas["book_seq"]),
    )  # fmt: skip
    return table_of("book_updates", len(deltas), {
        "instrument_id": deltas["instrument_id"], "book_seq": deltas["book_seq"],
        "side": arrow(deltas["side"]), "price": deltas["price"], "qty": deltas["qty"],
        "bid_price": tops.bid_price, "bid_qty": tops.bid_qty, "ask_price": tops.ask_price,
        "ask_qty": tops.ask_qty, "event_time_ns": deltas["event_time_ns"],
        **_positions(batch, engine.L2Delta),
    })  # fmt: skip


def fold_columns(batch: ColumnarBatch, books: BookState) -> dict[str, pa.Table]:
    """The rows of a batch by table (``books`` moves on with the book updates)."""
    tables: dict[str, pa.Table] = {}
    _reference(batch, tables)
    trades = batch.types.get(engine.Trade)
    if trades is not None:
        tables["trades"] = table_of("trades", len(trades), {
            **{field: arrow(trades[field]) for field in TRADE_FIELDS},
            **_positions(batch, engine.Trade),
        })  # fmt: skip
    fills = batch.types.get(domain.FillSettled)
    if fills is not None:
        tables["fills"] = table_of("fills", len(fills), {
            **{field: arrow(fills[field]) for field in (*FILL_FIELDS, "event_time_ns")},
            **_positions(batch, domain.FillSettled),
        })  # fmt: skip
    tables["postings"] = _postings(batch)
    order_parts = [_trade_order_part(batch, trades)] if trades is not None else []
    for kind in ORDER_FIELDS:
        found = batch.types.get(kind)
        if found is not None:
            order_parts.append(_order_part(batch, kind, found))
    tables["order_events"] = concat("order_events", order_parts)
    deltas = batch.types.get(engine.L2Delta)
    if deltas is not None:
        tables["book_updates"] = _book(batch, deltas, books)
    return tables
