"""The columnar fold of the ``postgres`` read model: decoded columns in, the rows of one batch out.

The same rows as the row path (:meth:`.postgres.PostgresReadModel.write` over
:func:`.ledger_fold.fold` and :func:`.orders_fold.facts`; its twin:
``tests/projections/test_postgres_columns.py`` builds both stores from a whole exchange log
and compares them table by table), built from the columns the runner decodes in C (no
Python object per record, no ``Event``):

- **postings**, **hold changes**, **fills** and **trades** are columns (numpy arrays and
  lists) written with ``COPY``;
- **balance deltas** are grouped per (account, asset) with numpy: the sums of the postings
  and hold changes, and the position and time of the newest record that changed each (the
  greatest batch index: an account's records are all on one partition);
- **orders**: each record's facts, built from its type's columns per type, folded with
  :func:`.orders_fold.apply` (the row path's own rules: the fold commutes, so grouping the
  facts by type instead of log order gives the same rows);
- the rare records (reference data, withdrawals) are rebuilt as domain records
  (:meth:`~tradex.schemas.columns.TypeColumns.records`) and folded by the row path's own
  functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

import numpy as np
import pandas as pd

from tradex import domain
from tradex.domain import engine
from tradex.domain.journal import FEES_ACCOUNT
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS, TOPIC_TYPES
from tradex.projections import ledger_fold, orders_fold
from tradex.projections.projector import ColumnarBatch, Event
from tradex.schemas.columns import Column, ColumnSpec, Dictionary, Enum, TypeColumns, to_pylist
from tradex.schemas.envelope import Envelope

IGNORES: frozenset[type] = frozenset((engine.L2Delta, engine.Rested, engine.RulesApplied))
POSTING_TYPES: tuple[type, ...] = (domain.Deposited, domain.WithdrawalPaid, domain.FillSettled)
WITHDRAWAL_TYPES: tuple[type, ...] = (
    domain.WithdrawalRequested, domain.WithdrawalPaid, domain.WithdrawalReleased,
)  # fmt: skip
# (type, the column of the held asset, of the amount, the sign of the hold change)
HOLD_COLUMNS: tuple[tuple[type, str, str, int], ...] = (
    (domain.WithdrawalRequested, "asset", "amount", 1),
    (domain.WithdrawalPaid, "asset", "amount", -1),
    (domain.WithdrawalReleased, "asset", "amount", -1),
    (domain.OrderAccepted, "hold_asset", "hold_amount", 1),
    (domain.FillSettled, "hold_asset", "hold_consumed", -1),
    (domain.HoldReleased, "asset", "amount", -1),
)
assert {kind for kind, *_ in HOLD_COLUMNS} == set(domain.events.HOLD_DELTA_OF)
# Every value of every type (so the rare records can be rebuilt), and of the envelope only
# the event id (the postings' key).
_SPEC = ColumnSpec(None, frozenset(("event_id",)))
COLUMN_SPECS: dict[type, ColumnSpec] = {
    kind: _SPEC
    for topic in (REFERENCE_EVENTS, ACCOUNT_EVENTS, ENGINE_EVENTS)
    for kind in TOPIC_TYPES[topic]
    if kind not in IGNORES
}


@dataclass
class ColumnRows:
    """The rows of one batch, as the sink writes them (see :mod:`.postgres`)."""

    postings: list[list[Any]] = field(default_factory=list)  # one list per column
    holds: list[list[Any]] = field(default_factory=list)
    # balance deltas: account, asset, Δavailable, Δheld, time, partition, offset
    balances: list[list[Any]] = field(default_factory=list)
    fills: list[list[Any]] = field(default_factory=list)
    trades: list[list[Any]] = field(default_factory=list)
    orders: dict[int, list[Any]] = field(default_factory=dict)
    reference: ledger_fold.LedgerRows = field(default_factory=ledger_fold.LedgerRows)


def _strings(column: Column) -> np.ndarray:
    """Any string-like column as a numpy array of str (object)."""
    if isinstance(column, Enum):
        return np.array(column.symbols, dtype=object)[column.codes]
    if isinstance(column, Dictionary):
        return np.array(column.values.to_pylist(), dtype=object)[column.codes]
    return np.array(to_pylist(column), dtype=object)


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def fold_columns(batch: ColumnarBatch) -> ColumnRows:
    """The rows of ``batch`` (its records in log order within each partition)."""
    rows = ColumnRows()
    types = batch.types
    _ledger(batch, rows)
    _fills_and_trades(batch, rows)
    orders: dict[int, list[Any]] = {}
    apply = orders_fold.apply
    for fact in _order_facts(batch):
        apply(orders, fact)
    rows.orders = orders
    # the rare records, rebuilt as domain records and folded in log order (the newest state
    # of a batch wins, as on the row path)
    rare: list[tuple[int, str, int, int, Any]] = []
    for kind in (*WITHDRAWAL_TYPES, *TOPIC_TYPES[REFERENCE_EVENTS]):
        if kind not in types:
            continue
        topic = REFERENCE_EVENTS if kind in TOPIC_TYPES[REFERENCE_EVENTS] else ACCOUNT_EVENTS
        columns = types[kind]
        found = zip(
            columns.rows.tolist(), batch.partition(kind).tolist(), batch.offset(kind).tolist(),
            columns.records(), strict=True,
        )  # fmt: skip
        rare += [(row, topic, p, o, body) for row, p, o, (_envelope, body) in found]
    no_envelope = cast(Envelope, None)  # neither fold reads it
    for _row, topic, p, o, body in sorted(rare, key=itemgetter(0)):
        event = Event(topic, p, o, no_envelope, body)
        if topic == REFERENCE_EVENTS:
            ledger_fold._reference_event(rows.reference, event)
        else:
            ledger_fold._withdrawal(rows.reference, event)
    return rows


# -- the ledger: postings, hold changes, balances ------------------------------------------------


def _ledger(batch: ColumnarBatch, rows: ColumnRows) -> None:
    types = batch.types
    # postings: one row per item of each posting type's array
    event_ids: list[np.ndarray] = []
    indexes: list[np.ndarray] = []
    accounts: list[np.ndarray] = []
    assets: list[np.ndarray] = []
    deltas: list[np.ndarray] = []
    times: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    order: list[np.ndarray] = []
    for kind in POSTING_TYPES:
        if kind not in types:
            continue
        columns = types[kind]
        items = columns.items["postings"]
        parent = items.parent
        event_ids.append(_strings(columns["envelope.event_id"])[parent])
        indexes.append(items.index.astype(np.int64))
        accounts.append(np.asarray(items["postings.account_id"], np.int64))
        assets.append(_strings(items["postings.asset"]))
        deltas.append(np.asarray(items["postings.delta"], np.int64))
        times.append(np.asarray(columns["event_time_ns"], np.int64)[parent])
        parts.append(batch.partition(kind).astype(np.int64)[parent])
        offsets.append(batch.offset(kind)[parent])
        order.append(columns.rows.astype(np.int64)[parent])
    p_event = _cat(event_ids, object)
    p_account = _cat(accounts, np.int64)
    p_asset = _cat(assets, object)
    p_delta = _cat(deltas, np.int64)
    p_time = _cat(times, np.int64)
    p_part = _cat(parts, np.int64)
    p_offset = _cat(offsets, np.int64)
    rows.postings = [
        p_event.tolist(), _cat(indexes, np.int64).tolist(), p_account.tolist(), p_asset.tolist(),
        p_delta.tolist(), p_time.tolist(), p_part.tolist(), p_offset.tolist(),
    ]  # fmt: skip
    # hold changes: one row per record whose hold change is not 0
    h_account: list[np.ndarray] = []
    h_asset: list[np.ndarray] = []
    h_delta: list[np.ndarray] = []
    h_time: list[np.ndarray] = []
    h_part: list[np.ndarray] = []
    h_offset: list[np.ndarray] = []
    h_order: list[np.ndarray] = []
    for kind, asset_column, amount_column, sign in HOLD_COLUMNS:
        if kind not in types:
            continue
        columns = types[kind]
        amount = np.asarray(columns[amount_column], np.int64) * sign
        keep = amount != 0
        h_account.append(np.asarray(columns["account_id"], np.int64)[keep])
        h_asset.append(_strings(columns[asset_column])[keep])
        h_delta.append(amount[keep])
        h_time.append(np.asarray(columns["event_time_ns"], np.int64)[keep])
        h_part.append(batch.partition(kind).astype(np.int64)[keep])
        h_offset.append(batch.offset(kind)[keep])
        h_order.append(columns.rows.astype(np.int64)[keep])
    ha, hs, hd = _cat(h_account, np.int64), _cat(h_asset, object), _cat(h_delta, np.int64)
    ht, hp, ho = _cat(h_time, np.int64), _cat(h_part, np.int64), _cat(h_offset, np.int64)
    rows.holds = [hp.tolist(), ho.tolist(), ha.tolist(), hs.tolist(), hd.tolist(), ht.tolist()]
    # balances: Δtotal from postings, Δheld from holds (Δavailable = Δtotal − Δheld)
    account = np.concatenate((p_account, ha))
    asset = np.concatenate((p_asset, hs))
    if not len(account):
        return
    asset_code, names = pd.factorize(asset)
    available = np.concatenate((p_delta, -hd))
    held = np.concatenate((np.zeros(len(p_delta), np.int64), hd))
    time_ns = np.concatenate((p_time, ht))
    part = np.concatenate((p_part, hp))
    offset = np.concatenate((p_offset, ho))
    index = np.concatenate((_cat(order, np.int64), _cat(h_order, np.int64)))
    sort = np.lexsort((index, asset_code, account))
    account, asset_code = account[sort], asset_code[sort]
    starts = np.flatnonzero(
        np.concatenate(
            ([True], (account[1:] != account[:-1]) | (asset_code[1:] != asset_code[:-1]))
        )
    )
    last = np.concatenate((starts[1:], [len(sort)])) - 1  # the newest change of each key
    rows.balances = [
        account[starts].tolist(),
        names[asset_code[starts]].tolist(),
        np.add.reduceat(available[sort], starts).tolist(),
        np.add.reduceat(held[sort], starts).tolist(),
        time_ns[sort][last].tolist(),
        part[sort][last].tolist(),
        offset[sort][last].tolist(),
    ]


# -- fills and trades ----------------------------------------------------------------------------


def _fills_and_trades(batch: ColumnarBatch, rows: ColumnRows) -> None:
    types = batch.types
    if domain.FillSettled in types:
        c = types[domain.FillSettled]
        items = c.items["postings"]
        fee_asset = np.full(len(c), "", dtype=object)
        fees = np.asarray(items["postings.account_id"]) == FEES_ACCOUNT
        if fees.any():  # the first fees posting of each record (items are in record order)
            parents, first = np.unique(items.parent[fees], return_index=True)
            fee_asset[parents] = _strings(items["postings.asset"])[fees][first]
        rows.fills = [
            to_pylist(c["order_id"]), to_pylist(c["trade_id"]), to_pylist(c["account_id"]),
            to_pylist(c["instrument_id"]), _strings(c["side"]).tolist(),
            _strings(c["liquidity"]).tolist(), to_pylist(c["price"]), to_pylist(c["qty"]),
            to_pylist(c["notional"]), to_pylist(c["fee"]), fee_asset.tolist(),
            to_pylist(c["event_time_ns"]), batch.partition(domain.FillSettled).tolist(),
            batch.offset(domain.FillSettled).tolist(),
        ]  # fmt: skip
    if engine.Trade in types:
        c = types[engine.Trade]
        rows.trades = [
            to_pylist(c["trade_id"]), to_pylist(c["instrument_id"]), to_pylist(c["price"]),
            to_pylist(c["qty"]), _strings(c["taker_side"]).tolist(),
            to_pylist(c["maker_order_id"]), to_pylist(c["maker_account_id"]),
            to_pylist(c["taker_order_id"]), to_pylist(c["taker_account_id"]),
            to_pylist(c["event_time_ns"]), batch.partition(engine.Trade).tolist(),
            batch.offset(engine.Trade).tolist(),
        ]  # fmt: skip


# -- orders: the facts of each record, as orders_fold.facts states them --------------------------

_I = orders_fold.INDEX
_ACCOUNT_ID, _INSTRUMENT_ID, _SIDE, _KIND = (
    _I["account_id"], _I["instrument_id"], _I["side"], _I["kind"],
)  # fmt: skip
_PRICE, _QTY, _COMMAND_ID, _OUTCOME = (
    _I["price"],
    _I["qty"],
    _I["command_id"],
    _I["account_outcome"],
)
_FILLED, _SETTLED, _ENGINE_END, _ACCOUNT_END = (
    _I["filled_qty"], _I["settled_qty"], _I["engine_end"], _I["account_end"],
)  # fmt: skip
_NOT_ENDING = {str(reason) for reason in orders_fold._NOT_ENDING}


def _lists(columns: TypeColumns, *names: str) -> list[list[Any]]:
    out = []
    for name in names:
        column = columns[name]
        out.append(
            column.to_pylist() if isinstance(column, Enum | Dictionary) else to_pylist(column)
        )
    return out


def _order_facts(batch: ColumnarBatch) -> Iterator[orders_fold.Fact]:
    """Every fact :func:`.orders_fold.facts` states about the batch's records, by type."""
    types = batch.types
    t = "event_time_ns"
    if domain.OrderAccepted in types:
        c = types[domain.OrderAccepted]
        hold_asset, hold_amount = _I["hold_asset"], _I["hold_amount"]
        maker, taker = _I["maker_fee_ppm"], _I["taker_fee_ppm"]
        for oid, tm, acc, ins, side, kind, price, qty, cid, ha, hm, mk, tk in zip(*_lists(
            c, "order_id", t, "account_id", "instrument_id", "side", "kind", "price", "qty",
            "command_id", "hold_asset", "hold_amount", "maker_fee_ppm", "taker_fee_ppm",
        ), strict=True):  # fmt: skip
            yield (oid, tm, (
                (_ACCOUNT_ID, acc), (_INSTRUMENT_ID, ins), (_SIDE, side), (_KIND, kind),
                (_PRICE, price), (_QTY, qty), (_COMMAND_ID, cid),
                (_OUTCOME, orders_fold.ACCOUNT_ACCEPTED), (hold_asset, ha), (hold_amount, hm),
                (maker, mk), (taker, tk),
            ), (), None)  # fmt: skip
    if domain.FillSettled in types:
        c = types[domain.FillSettled]
        notional, fees = _I["settled_notional"], _I["fees"]
        for oid, tm, acc, ins, qty, no, fee in zip(*_lists(
            c, "order_id", t, "account_id", "instrument_id", "qty", "notional", "fee"
        ), strict=True):  # fmt: skip
            yield (oid, tm, ((_ACCOUNT_ID, acc), (_INSTRUMENT_ID, ins)),
                   ((_SETTLED, qty), (notional, no), (fees, fee)), None)  # fmt: skip
    if domain.HoldReleased in types:
        c = types[domain.HoldReleased]
        released = _I["released_amount"]
        for oid, tm, acc, end, amount in zip(*_lists(
            c, "order_id", t, "account_id", "end_reason", "amount"
        ), strict=True):  # fmt: skip
            yield (oid, tm, ((_ACCOUNT_ID, acc), (_ACCOUNT_END, end), (released, amount)), (),
                   None)  # fmt: skip
    if domain.OrderRejected in types:
        c = types[domain.OrderRejected]
        reason_i, detail_i = _I["reject_reason"], _I["reject_detail"]
        for oid, tm, acc, ins, side, kind, price, qty, cid, reason, detail in zip(*_lists(
            c, "order_id", t, "account_id", "instrument_id", "side", "kind", "price", "qty",
            "command_id", "reason", "detail",
        ), strict=True):  # fmt: skip
            if oid > 0:
                yield (oid, tm, (
                    (_ACCOUNT_ID, acc), (_INSTRUMENT_ID, ins), (_SIDE, side), (_KIND, kind),
                    (_PRICE, price), (_QTY, qty), (_COMMAND_ID, cid),
                    (_OUTCOME, orders_fold.ACCOUNT_REJECTED), (reason_i, reason),
                    (detail_i, detail),
                ), (), None)  # fmt: skip
    if domain.CancelRequested in types:
        c = types[domain.CancelRequested]
        requested = _I["cancel_requested_time_ns"]
        for oid, tm, acc in zip(*_lists(c, "order_id", t, "account_id"), strict=True):
            yield (oid, tm, ((_ACCOUNT_ID, acc), (requested, tm)), (), None)
    if engine.Trade in types:
        c = types[engine.Trade]
        notional, trades = _I["filled_notional"], _I["trades"]
        for ins, price, qty, mo, ma, to, ta, tm in zip(*_lists(
            c, "instrument_id", "price", "qty", "maker_order_id", "maker_account_id",
            "taker_order_id", "taker_account_id", t,
        ), strict=True):  # fmt: skip
            sums = ((_FILLED, qty), (notional, price * qty), (trades, 1))
            yield (mo, tm, ((_ACCOUNT_ID, ma), (_INSTRUMENT_ID, ins)), sums, None)
            yield (to, tm, ((_ACCOUNT_ID, ta), (_INSTRUMENT_ID, ins)), sums, None)
    if engine.Accepted in types:
        c = types[engine.Accepted]
        for oid, tm, acc, ins, side, kind, price, qty in zip(*_lists(
            c, "order_id", t, "account_id", "instrument_id", "side", "kind", "price", "qty"
        ), strict=True):  # fmt: skip
            yield (oid, tm, (
                (_ACCOUNT_ID, acc), (_INSTRUMENT_ID, ins), (_SIDE, side), (_KIND, kind),
                (_PRICE, price), (_QTY, qty),
            ), (), None)  # fmt: skip
    if engine.Filled in types:
        c = types[engine.Filled]
        for oid, tm, acc, ins in zip(*_lists(c, "order_id", t, "account_id", "instrument_id"),
                                     strict=True):  # fmt: skip
            yield (oid, tm, ((_ACCOUNT_ID, acc), (_INSTRUMENT_ID, ins),
                             (_ENGINE_END, orders_fold.FILLED)), (), None)  # fmt: skip
    reason_i, detail_i = _I["engine_end_reason"], _I["engine_end_detail"]
    for kind, end in ((engine.Cancelled, orders_fold.CANCELLED),
                      (engine.Expired, orders_fold.EXPIRED)):  # fmt: skip
        if kind in types:
            c = types[kind]
            for oid, tm, acc, ins, reason, detail in zip(*_lists(
                c, "order_id", t, "account_id", "instrument_id", "reason", "detail"
            ), strict=True):  # fmt: skip
                yield (oid, tm, ((_ACCOUNT_ID, acc), (_INSTRUMENT_ID, ins), (_ENGINE_END, end),
                                 (reason_i, reason), (detail_i, detail)), (), None)  # fmt: skip
    if engine.Rejected in types:
        c = types[engine.Rejected]
        refused, request_i, refused_reason = (
            _I["refused_offset"], _I["refused_request"], _I["refused_reason"],
        )  # fmt: skip
        reject_reason, reject_detail = _I["reject_reason"], _I["reject_detail"]
        offsets = batch.offset(engine.Rejected).tolist()
        for oid, tm, reason, request, detail, offset in zip(*_lists(
            c, "order_id", t, "reason", "request", "detail"
        ), offsets, strict=True):  # fmt: skip
            if oid <= 0:
                continue
            if request == "NewOrder":
                if reason not in _NOT_ENDING:
                    yield (oid, tm, (
                        (_ENGINE_END, orders_fold.REJECTED), (reason_i, reason),
                        (detail_i, detail), (reject_reason, reason), (reject_detail, detail),
                    ), (), None)  # fmt: skip
            else:
                yield (oid, tm, (), (), (
                    refused, offset, ((request_i, request), (refused_reason, reason)),
                ))  # fmt: skip
    if engine.AmendApplied in types:
        c = types[engine.AmendApplied]
        amend, price_i, qty_i = _I["amend_offset"], _I["amended_price"], _I["amended_qty"]
        offsets = batch.offset(engine.AmendApplied).tolist()
        for oid, tm, acc, ins, price, qty, offset in zip(*_lists(
            c, "order_id", t, "account_id", "instrument_id", "new_price", "new_qty"
        ), offsets, strict=True):  # fmt: skip
            yield (oid, tm, ((_ACCOUNT_ID, acc), (_INSTRUMENT_ID, ins)), (), (
                amend, offset, ((price_i, price), (qty_i, qty)),
            ))  # fmt: skip
