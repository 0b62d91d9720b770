"""The ``clickhouse`` read model: trades, fills, postings, order events and the book, for
analytics (:mod:`tradex.projections.analytics` queries it).

Integers everywhere (ticks, lots, minor units, nanoseconds); every row keeps its event
time and its log position (``log_topic``, ``log_partition``, ``log_offset``,
``log_index``), which ends its table's sorting key (see :mod:`.clickhouse_store`).

| table | one row per | sorting key (then the position) |
|---|---|---|
| assets | AssetCreated | code |
| instruments | instrument reference event (created, rules, halt, resume) | instrument_id |
| trades | engine Trade | instrument_id, event_time_ns |
| fills | FillSettled (one leg: account, side, price, qty, notional, fee) | account_id, instrument_id, event_time_ns |
| postings | journal posting (Deposited, WithdrawalPaid, FillSettled); log_index = its index | account_id, asset, event_time_ns |
| order_events | engine order event or account-side order event (a Trade: the taker's order, the maker's as counter_order_id) | order_id, event_time_ns |
| book_updates | engine L2Delta, with the book's top after it | instrument_id, event_time_ns, book_seq |

Reader views besides one per table: ``book_top`` (the top after each book update) and
``instruments_current`` (each instrument's latest rules with its assets' scales).

The runner hands this projector its batches as columns (``columnar``): the fold is
:func:`.analytics_columns.fold_columns`, numpy over decoded columns. :func:`fold` here is
its row twin (``Projector.apply`` with decoded events: tests, the bench): per batch it
groups events by type and builds each table's columns with one ``zip`` over the records
of a type. Both keep each instrument's book in :class:`.book_state.BookState` (arrays and a
Numba kernel) to give the top after each update; on open it is rebuilt from
``book_updates`` below the stored positions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from tradex import domain
from tradex.domain import engine
from tradex.infra.clickhouse import ClickHouse
from tradex.log.source import Place
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS
from tradex.projections.analytics_columns import COLUMN_SPECS, fold_columns
from tradex.projections.analytics_tables import (
    ORDER_FIELDS,
    READER_VIEWS,
    TABLES,
    concat,
    table_of,
)
from tradex.projections.book import LEVELS_MAX, Book
from tradex.projections.book_state import SIDE_BUY, SIDE_SELL, BookState
from tradex.projections.clickhouse_store import ClickHouseProjector, Table, below
from tradex.projections.projector import ColumnarBatch, Event
from tradex.schemas.columns import ColumnSpec

__all__ = ["LEVELS_MAX", "Book", "BookState", "ClickHouseReadModel", "fold", "load_books"]


def _fields(events: Sequence[Event]) -> dict[str, Sequence[Any]]:
    """The records' fields as columns (one zip), plus their positions."""
    bodies = [e.body for e in events]
    columns: dict[str, Sequence[Any]] = dict(
        zip(type(bodies[0])._fields, zip(*bodies, strict=True), strict=True)
    )
    columns["log_partition"] = [e.partition for e in events]
    columns["log_offset"] = [e.offset for e in events]
    return columns


def _negated(values: Sequence[int]) -> list[int]:
    return [-v for v in values]


# columns computed from a record type's fields (beyond renaming)
_ORDER_COMPUTED: dict[type, Callable[[dict[str, Sequence[Any]]], dict[str, Any]]] = {
    engine.AmendApplied: lambda f: {
        "detail": ["lost_priority" if lost else "" for lost in f["lost_priority"]]
    },
    domain.AmendSettled: lambda f: {"hold_delta": _negated(f["hold_released"])},
    domain.FillSettled: lambda f: {"hold_delta": _negated(f["hold_consumed"])},
    domain.HoldReleased: lambda f: {"hold_delta": _negated(f["amount"])},
}


def _order_part(kind: type, fields: dict[str, Sequence[Any]], topic: str) -> pa.Table:
    columns: dict[str, Any] = {
        column: fields[field] for column, field in ORDER_FIELDS[kind].items()
    }
    computed = _ORDER_COMPUTED.get(kind)
    if computed is not None:
        columns.update(computed(fields))
    columns.update(
        event_type=kind.__name__, event_time_ns=fields["event_time_ns"], log_topic=topic,
        log_partition=fields["log_partition"], log_offset=fields["log_offset"],
    )  # fmt: skip
    return table_of("order_events", len(fields["log_offset"]), columns)


def _trade_order_part(f: dict[str, Sequence[Any]]) -> pa.Table:
    """The order_events row of a Trade: the taker's order, the maker's as the counter
    order (a maker's fills: ``counter_order_id = its id``)."""
    return table_of("order_events", len(f["log_offset"]), {
        "event_type": "Trade", "instrument_id": f["instrument_id"], "price": f["price"],
        "qty": f["qty"], "trade_id": f["trade_id"], "event_time_ns": f["event_time_ns"],
        "order_id": f["taker_order_id"], "account_id": f["taker_account_id"],
        "side": f["taker_side"], "kind": "TAKER", "counter_order_id": f["maker_order_id"],
        "log_topic": ENGINE_EVENTS, "log_partition": f["log_partition"],
        "log_offset": f["log_offset"],
    })  # fmt: skip


def _postings(groups: dict[type, list[Event]]) -> pa.Table:
    """One row per journal posting; ``log_index`` is the posting's index in its event."""
    parts = []
    for kind in (domain.Deposited, domain.WithdrawalPaid, domain.FillSettled):
        events = groups.get(kind)
        if not events:
            continue
        entries = [e.body.postings for e in events]
        counts = np.fromiter(map(len, entries), np.int64, len(entries))
        flat = [posting for entry in entries for posting in entry]
        n = len(flat)
        assert n == int(counts.sum()), (n, counts.sum())
        account, asset, delta = zip(*flat, strict=True)
        starts = np.cumsum(counts) - counts
        parts.append(table_of("postings", n, {
            "account_id": account, "asset": asset, "delta": delta, "event_type": kind.__name__,
            "event_time_ns": pa.array(np.repeat([e.body.event_time_ns for e in events], counts)),
            "log_partition": pa.array(np.repeat([e.partition for e in events], counts)),
            "log_offset": pa.array(np.repeat([e.offset for e in events], counts)),
            "log_index": pa.array((np.arange(n) - np.repeat(starts, counts)).astype(np.int32)),
        }))  # fmt: skip
    return concat("postings", parts)


_INSTRUMENT_EVENTS = (
    domain.InstrumentCreated,
    domain.InstrumentRulesUpdated,
    domain.InstrumentHalted,
    domain.InstrumentResumed,
)


def _reference(groups: dict[type, list[Event]], tables: dict[str, pa.Table]) -> None:
    events = groups.get(domain.AssetCreated)
    if events:
        tables["assets"] = table_of("assets", len(events), {
            "code": [e.body.asset.code for e in events],
            "scale": [e.body.asset.scale for e in events],
            "event_time_ns": [e.body.event_time_ns for e in events],
            "log_partition": [e.partition for e in events],
            "log_offset": [e.offset for e in events],
        })  # fmt: skip
    parts = []
    for kind in _INSTRUMENT_EVENTS:
        events = groups.get(kind, [])
        if not events:
            continue
        instruments = [e.body.instrument for e in events]
        columns: dict[str, Any] = dict(
            zip(domain.Instrument._fields, zip(*instruments, strict=True), strict=True)
        )
        columns.update(
            event_type=kind.__name__, event_time_ns=[e.body.event_time_ns for e in events],
            log_partition=[e.partition for e in events], log_offset=[e.offset for e in events],
        )  # fmt: skip
        parts.append(table_of("instruments", len(events), columns))
    if parts:
        tables["instruments"] = concat("instruments", parts)


def fold(events: Sequence[Event], books: BookState) -> dict[str, pa.Table]:
    """The rows of a batch by table (``books`` moves on with the book updates): the row
    fold, twin of :func:`.analytics_columns.fold_columns` (which the runner uses)."""
    groups: dict[type, list[Event]] = {}
    for event in events:
        kind = type(event.body)
        found = groups.get(kind)
        if found is None:
            groups[kind] = [event]
        else:
            found.append(event)
    tables: dict[str, pa.Table] = {}
    _reference(groups, tables)
    # each record type's fields as columns, once (a type may feed several tables)
    fields = {kind: _fields(found) for kind, found in groups.items() if kind in _COLUMNAR}
    trades = fields.get(engine.Trade)
    if trades:
        tables["trades"] = table_of("trades", len(trades["log_offset"]), trades)
    fills = fields.get(domain.FillSettled)
    if fills:
        tables["fills"] = table_of("fills", len(fills["log_offset"]), fills)
    tables["postings"] = _postings(groups)
    order_parts = [_trade_order_part(trades)] if trades else []
    for kind in ORDER_FIELDS:
        columns = fields.get(kind)
        if columns:
            topic = ENGINE_EVENTS if kind.__module__ == engine.__name__ else ACCOUNT_EVENTS
            order_parts.append(_order_part(kind, columns, topic))
    tables["order_events"] = concat("order_events", order_parts)
    deltas = groups.get(engine.L2Delta)
    if deltas:
        book_columns: dict[str, Any] = dict(fields[engine.L2Delta])
        n = len(deltas)
        sides = [SIDE_BUY if side == "BUY" else SIDE_SELL for side in book_columns["side"]]
        tops = books.apply(*(
            np.fromiter(values, np.int64, n)
            for values in (book_columns["instrument_id"], sides, book_columns["price"],
                           book_columns["qty"], book_columns["book_seq"])
        ))  # fmt: skip
        book_columns.update(
            bid_price=tops.bid_price, bid_qty=tops.bid_qty, ask_price=tops.ask_price,
            ask_qty=tops.ask_qty,
        )  # fmt: skip
        tables["book_updates"] = table_of("book_updates", n, book_columns)
    return tables


# the record types whose fields become columns (the rest: reference rows, postings)
_COLUMNAR = frozenset((engine.Trade, engine.L2Delta, *ORDER_FIELDS))


def load_books(ch: ClickHouse, database: str, positions: Mapping[Place, int]) -> BookState:
    """The books as of ``positions``, from the book updates below them."""
    where = below(positions, ENGINE_EVENTS)
    levels: dict[int, list[tuple[int, int, int]]] = {}
    for instrument_id, side, price, lots in ch.query_rows(
        f"SELECT instrument_id, side, price, argMax(qty, log_offset) AS lots "
        f"FROM {database}.book_updates WHERE {where} "
        "GROUP BY instrument_id, side, price HAVING lots > 0 ORDER BY instrument_id, side, price"
    ):
        assert side in ("BUY", "SELL"), side
        code = SIDE_BUY if side == "BUY" else SIDE_SELL
        levels.setdefault(instrument_id, []).append((code, price, lots))
    books = BookState()
    for instrument_id, seq in ch.query_rows(
        f"SELECT instrument_id, argMax(book_seq, log_offset) FROM {database}.book_updates "
        f"WHERE {where} GROUP BY instrument_id"
    ):
        books.load(instrument_id, seq, levels.get(instrument_id, []))
    return books


class ClickHouseReadModel(ClickHouseProjector):
    name: ClassVar[str] = "clickhouse"
    topics: ClassVar[tuple[str, ...]] = (REFERENCE_EVENTS, ACCOUNT_EVENTS, ENGINE_EVENTS)
    tables: ClassVar[tuple[Table, ...]] = TABLES
    reader_views: ClassVar[tuple[tuple[str, str], ...]] = READER_VIEWS
    # no row comes from these (their positions still move)
    ignores: ClassVar[frozenset[type]] = frozenset((
        domain.UserRegistered, domain.UserRolesChanged, domain.AccountOpened,
        domain.ReferenceCommandRejected,
        domain.CommandRejected, domain.WithdrawalRequested, domain.WithdrawalReleased,
        engine.RulesApplied,
    ))  # fmt: skip

    columnar: ClassVar[bool] = True
    column_specs: ClassVar[Mapping[type, ColumnSpec]] = COLUMN_SPECS
    # ~50 MB of record values per batch; an insert per table per batch costs ~5-10 ms
    # whatever its size, and small parts cost merges later (measured: 7 us of CPU per
    # event in batches of 20,000, 2.2 in batches of 100,000)
    batch_records: ClassVar[int] = 200_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.book_state = BookState()

    @property
    def books(self) -> dict[int, Book]:
        """Every instrument's book as it stands (built from the arrays: slow)."""
        return self.book_state.books()

    def load(self, ch: ClickHouse, positions: Mapping[Place, int]) -> None:
        self.book_state = load_books(ch, self.database, positions)

    def rows(self, events: Sequence[Event]) -> dict[str, pa.Table]:
        return fold(events, self.book_state)

    def column_rows(self, batch: ColumnarBatch) -> dict[str, pa.Table]:
        return fold_columns(batch, self.book_state)
