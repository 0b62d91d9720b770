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

The fold keeps each instrument's book (price level -> lots) in memory to give the top
after each update; on open it is rebuilt from ``book_updates`` below the stored positions.
Per batch the fold groups events by type and builds each table's columns with one
``zip`` over the records of a type, so the per-event Python work is an append; only book
updates are walked one by one (the top depends on the order).
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
from tradex.projections.clickhouse_store import POSITION_COLUMNS, ClickHouseProjector, Table, below
from tradex.projections.projector import Event

LEVELS_MAX = 1_000_000  # price levels of one side of one book (a bound, not a target)

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
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
_ARROW = {_I64: pa.int64(), _I32: pa.int32(), _LOW: _DICTIONARY, "String": pa.string()}
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
_DEFAULTS = {pa.int64(): 0, pa.int32(): 0, pa.string(): "", _DICTIONARY: ""}


# -- the book ------------------------------------------------------------------------------


class Book:
    """One instrument's price levels (lots per price) and its best prices (0: none)."""

    __slots__ = ("asks", "best_ask", "best_bid", "bids", "seq")

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.best_bid = 0
        self.best_ask = 0
        self.seq = 0  # the last book_seq applied

    def set_level(self, side: str, price: int, qty: int) -> None:
        """The level ``price`` of ``side`` now holds ``qty`` lots (0: it is gone)."""
        assert price > 0, price
        assert qty >= 0, qty
        if side == "BUY":
            levels = self.bids
            if qty:
                levels[price] = qty
                assert len(levels) <= LEVELS_MAX, "bid levels beyond LEVELS_MAX"
                if price > self.best_bid:
                    self.best_bid = price
            else:
                assert price in levels, f"bid level {price} removed but not in the book"
                del levels[price]
                if price == self.best_bid:
                    self.best_bid = max(levels) if levels else 0
        else:
            assert side == "SELL", side
            levels = self.asks
            if qty:
                levels[price] = qty
                assert len(levels) <= LEVELS_MAX, "ask levels beyond LEVELS_MAX"
                if not self.best_ask or price < self.best_ask:
                    self.best_ask = price
            else:
                assert price in levels, f"ask level {price} removed but not in the book"
                del levels[price]
                if price == self.best_ask:
                    self.best_ask = min(levels) if levels else 0

    def check(self) -> None:
        assert self.best_bid == (max(self.bids) if self.bids else 0), "best bid"
        assert self.best_ask == (min(self.asks) if self.asks else 0), "best ask"
        assert not self.bids or not self.asks or self.best_bid < self.best_ask, "crossed"


def apply_deltas(
    deltas: Sequence[engine.L2Delta], books: dict[int, Book]
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Apply book updates in log order; the top after each: bid and ask price and lots."""
    bid_price: list[int] = []
    bid_qty: list[int] = []
    ask_price: list[int] = []
    ask_qty: list[int] = []
    for delta in deltas:
        book = books.get(delta.instrument_id)
        if book is None:
            book = books[delta.instrument_id] = Book()
        seq = delta.book_seq
        if seq:  # 0: written before book_seq existed
            assert seq == book.seq + 1, f"book_seq {seq} after {book.seq}: a gap or a repeat"
            book.seq = seq
        book.set_level(delta.side, delta.price, delta.qty)
        best_bid, best_ask = book.best_bid, book.best_ask
        bid_price.append(best_bid)
        bid_qty.append(book.bids[best_bid] if best_bid else 0)
        ask_price.append(best_ask)
        ask_qty.append(book.asks[best_ask] if best_ask else 0)
    return bid_price, bid_qty, ask_price, ask_qty


# -- columns ------------------------------------------------------------------------------


def _fields(events: Sequence[Event]) -> dict[str, Sequence[Any]]:
    """The records' fields as columns (one zip), plus their positions."""
    bodies = [e.body for e in events]
    columns: dict[str, Sequence[Any]] = dict(
        zip(type(bodies[0])._fields, zip(*bodies, strict=True), strict=True)
    )
    columns["log_partition"] = [e.partition for e in events]
    columns["log_offset"] = [e.offset for e in events]
    return columns


def _array(kind: pa.DataType, n: int, value: Sequence[Any] | Any) -> pa.Array:
    """A column of ``kind``: from an Arrow array or a sequence of n values, or a constant
    repeated n times (built without n Python objects)."""
    if isinstance(value, pa.Array):
        assert len(value) == n, (len(value), n)
        return value if value.type == kind else value.cast(kind)
    if isinstance(value, (list, tuple)):
        assert len(value) == n, (len(value), n)
        if kind == _DICTIONARY:
            return pa.array(value, pa.string()).dictionary_encode()
        if kind == pa.string():
            return pa.array(value, kind)
        return pa.array(np.fromiter(value, _NUMPY[kind], n))  # ~2x pa.array(list) here
    if kind == _DICTIONARY:
        return pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([value]))
    if kind == pa.string():
        return pa.array([value] * n, kind)
    return pa.array(np.full(n, value, _NUMPY[kind]))


def _table(name: str, n: int, columns: Mapping[str, Sequence[Any] | Any]) -> pa.Table:
    """An Arrow table of ``name``'s schema: a sequence per column, a constant repeated, or
    the type's zero for a column not given."""
    schema = SCHEMAS[name]
    arrays = [
        _array(field.type, n, columns.get(field.name, _DEFAULTS[field.type])) for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _concat(name: str, parts: list[pa.Table]) -> pa.Table:
    if not parts:
        return SCHEMAS[name].empty_table()
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


# order_events: per record type, its columns from the record's fields ({column: field})
# and constants; the event type is the record's name.
_ORDER_FIELDS: dict[type, dict[str, str]] = {
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
    domain.FillSettled: {"instrument_id": "instrument_id", "order_id": "order_id",
                         "account_id": "account_id", "side": "side", "kind": "liquidity",
                         "price": "price", "qty": "qty", "trade_id": "trade_id",
                         "hold_asset": "hold_asset"},
    domain.HoldReleased: {"order_id": "order_id", "account_id": "account_id",
                          "reason": "end_reason", "hold_asset": "asset"},
}  # fmt: skip


def _negated(values: Sequence[int]) -> list[int]:
    return [-v for v in values]


# columns computed from a record type's fields (beyond renaming)
_ORDER_COMPUTED: dict[type, Callable[[dict[str, Sequence[Any]]], dict[str, Any]]] = {
    engine.AmendApplied: lambda f: {
        "detail": ["lost_priority" if lost else "" for lost in f["lost_priority"]]
    },
    domain.FillSettled: lambda f: {"hold_delta": _negated(f["hold_consumed"])},
    domain.HoldReleased: lambda f: {"hold_delta": _negated(f["amount"])},
}


def _order_part(kind: type, fields: dict[str, Sequence[Any]], topic: str) -> pa.Table:
    columns: dict[str, Any] = {
        column: fields[field] for column, field in _ORDER_FIELDS[kind].items()
    }
    computed = _ORDER_COMPUTED.get(kind)
    if computed is not None:
        columns.update(computed(fields))
    columns.update(
        event_type=kind.__name__, event_time_ns=fields["event_time_ns"], log_topic=topic,
        log_partition=fields["log_partition"], log_offset=fields["log_offset"],
    )  # fmt: skip
    return _table("order_events", len(fields["log_offset"]), columns)


def _trade_order_part(f: dict[str, Sequence[Any]]) -> pa.Table:
    """The order_events row of a Trade: the taker's order, the maker's as the counter
    order (a maker's fills: ``counter_order_id = its id``)."""
    return _table("order_events", len(f["log_offset"]), {
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
        parts.append(_table("postings", n, {
            "account_id": account, "asset": asset, "delta": delta, "event_type": kind.__name__,
            "event_time_ns": pa.array(np.repeat([e.body.event_time_ns for e in events], counts)),
            "log_partition": pa.array(np.repeat([e.partition for e in events], counts)),
            "log_offset": pa.array(np.repeat([e.offset for e in events], counts)),
            "log_index": pa.array((np.arange(n) - np.repeat(starts, counts)).astype(np.int32)),
        }))  # fmt: skip
    return _concat("postings", parts)


_INSTRUMENT_EVENTS = (
    domain.InstrumentCreated,
    domain.InstrumentRulesUpdated,
    domain.InstrumentHalted,
    domain.InstrumentResumed,
)


def _reference(groups: dict[type, list[Event]], tables: dict[str, pa.Table]) -> None:
    events = groups.get(domain.AssetCreated)
    if events:
        tables["assets"] = _table("assets", len(events), {
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
        parts.append(_table("instruments", len(events), columns))
    if parts:
        tables["instruments"] = _concat("instruments", parts)


def fold(events: Sequence[Event], books: dict[int, Book]) -> dict[str, pa.Table]:
    """The rows of a batch by table (``books`` moves on with the book updates)."""
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
        tables["trades"] = _table("trades", len(trades["log_offset"]), trades)
    fills = fields.get(domain.FillSettled)
    if fills:
        tables["fills"] = _table("fills", len(fills["log_offset"]), fills)
    tables["postings"] = _postings(groups)
    order_parts = [_trade_order_part(trades)] if trades else []
    for kind in _ORDER_FIELDS:
        columns = fields.get(kind)
        if columns:
            topic = ENGINE_EVENTS if kind.__module__ == engine.__name__ else ACCOUNT_EVENTS
            order_parts.append(_order_part(kind, columns, topic))
    tables["order_events"] = _concat("order_events", order_parts)
    deltas = groups.get(engine.L2Delta)
    if deltas:
        book_columns = fields[engine.L2Delta]
        tops = apply_deltas([e.body for e in deltas], books)
        for name, values in zip(
            ("bid_price", "bid_qty", "ask_price", "ask_qty"), tops, strict=True
        ):
            book_columns[name] = values
        tables["book_updates"] = _table("book_updates", len(deltas), book_columns)
    return tables


# the record types whose fields become columns (the rest: reference rows, postings)
_COLUMNAR = frozenset((engine.Trade, engine.L2Delta, *_ORDER_FIELDS))


def load_books(ch: ClickHouse, database: str, positions: Mapping[Place, int]) -> dict[int, Book]:
    """The books as of ``positions``, from the book updates below them."""
    where = below(positions, ENGINE_EVENTS)
    books: dict[int, Book] = {}
    for instrument_id, seq in ch.query_rows(
        f"SELECT instrument_id, argMax(book_seq, log_offset) FROM {database}.book_updates "
        f"WHERE {where} GROUP BY instrument_id"
    ):
        book = books[instrument_id] = Book()
        book.seq = seq
    levels = ch.query_rows(
        f"SELECT instrument_id, side, price, argMax(qty, log_offset) AS lots "
        f"FROM {database}.book_updates WHERE {where} "
        "GROUP BY instrument_id, side, price HAVING lots > 0 ORDER BY instrument_id, side, price"
    )
    for instrument_id, side, price, lots in levels:
        book = books[instrument_id]
        book.set_level(side, price, lots)
    for book in books.values():
        book.check()
    return books


class ClickHouseReadModel(ClickHouseProjector):
    name: ClassVar[str] = "clickhouse"
    topics: ClassVar[tuple[str, ...]] = (REFERENCE_EVENTS, ACCOUNT_EVENTS, ENGINE_EVENTS)
    tables: ClassVar[tuple[Table, ...]] = TABLES
    reader_views: ClassVar[tuple[tuple[str, str], ...]] = READER_VIEWS
    # no row comes from these (their positions still move)
    ignores: ClassVar[frozenset[type]] = frozenset((
        domain.UserRegistered, domain.AccountOpened, domain.ReferenceCommandRejected,
        domain.CommandRejected, domain.WithdrawalRequested, domain.WithdrawalReleased,
        engine.RulesApplied,
    ))  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.books: dict[int, Book] = {}

    def load(self, ch: ClickHouse, positions: Mapping[Place, int]) -> None:
        self.books = load_books(ch, self.database, positions)

    def rows(self, events: Sequence[Event]) -> dict[str, pa.Table]:
        return fold(events, self.books)
