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
- **orders**: each record's facts (what :func:`.orders_fold.facts` states), gathered per
  column from its type's columns and folded with numpy by the rules of
  :data:`.orders_fold.COLUMNS` (set once: one distinct value per order, else a
  contradiction; sums; min/max times; the newest pick by engine offset) — the fold
  commutes, so grouping by column instead of log order gives the rows
  :func:`.orders_fold.apply` gives;
- the rare records (reference data, withdrawals) are rebuilt as domain records
  (:meth:`~tradex.schemas.columns.TypeColumns.records`) and folded by the row path's own
  functions.
"""

from __future__ import annotations

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
from tradex.schemas.columns import Column, ColumnSpec, Dictionary, Enum, to_pylist
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
    (domain.OrderAmended, "hold_asset", "hold_added", 1),
    (domain.AmendSettled, "hold_asset", "hold_released", -1),
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
    # one list per column of orders_fold.NAMES (the first: order ids, ascending)
    orders: list[list[Any]] = field(default_factory=list)
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
    rows.orders = _orders(batch)
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
    # the newest change of a key by (event time, partition, offset), as the row path keeps
    sort = np.lexsort((offset, part, time_ns, asset_code, account))
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


# -- orders: the facts of each record, as orders_fold.facts states them, folded by column ------

_I = orders_fold.INDEX
_N = len(orders_fold.NAMES)
_HOW = dict(orders_fold.COLUMNS)
_NOT_ENDING = {str(reason) for reason in orders_fold._NOT_ENDING}
_BIG = np.iinfo(np.int64).max


def _str(column: Column) -> np.ndarray:
    return _strings(column)


def _int(column: Column) -> np.ndarray:
    return np.asarray(column, np.int64)


def _const(value: str, n: int) -> np.ndarray:
    return np.full(n, value, dtype=object)


class _OrderFacts:
    """The facts of a batch by column: who states what (order ids, values), then folded with
    the rules of :data:`.orders_fold.COLUMNS` in a few numpy passes per column."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        self.sets: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.sums: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        # offset column -> [(ids, offsets, {picked column: values})]
        self.picks: dict[int, list[tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]]] = {}

    def add(
        self, ids: np.ndarray, times: np.ndarray, sets: dict[str, np.ndarray],
        sums: dict[str, np.ndarray] | None = None,
        pick: tuple[str, np.ndarray, dict[str, np.ndarray]] | None = None,
    ) -> None:  # fmt: skip
        if not len(ids):
            return
        self.ids.append(ids)
        self.times.append(times)
        for name, values in sets.items():
            self.sets.setdefault(_I[name], []).append((ids, values))
        for name, values in (sums or {}).items():
            self.sums.setdefault(_I[name], []).append((ids, values))
        if pick is not None:
            column, offsets, picked = pick
            self.picks.setdefault(_I[column], []).append(
                (ids, offsets, {_I[name]: values for name, values in picked.items()})
            )

    def fold(self) -> dict[int, list[Any]]:
        """Order id -> row (as :func:`.orders_fold.apply` of every fact would give)."""
        return {row[0]: list(row) for row in zip(*self.fold_columns(), strict=True)}

    def fold_columns(self) -> list[list[Any]]:
        """The rows of :meth:`fold` as columns (order ids ascending; none: [])."""
        if not self.ids:
            return []
        every = np.concatenate(self.ids)
        order_ids = np.unique(every)
        n = len(order_ids)
        at = np.searchsorted(order_ids, every)
        times = np.concatenate(self.times)
        columns: list[list[Any]] = [[None] * n for _ in range(_N)]
        columns[0] = order_ids.tolist()
        created = np.full(n, _BIG, np.int64)
        np.minimum.at(created, at, times)
        updated = np.full(n, -_BIG, np.int64)
        np.maximum.at(updated, at, times)
        columns[orders_fold._CREATED] = created.tolist()
        columns[orders_fold._UPDATED] = updated.tolist()
        for column, how in enumerate(_HOW.values()):
            if how == orders_fold.SUM:
                total = np.zeros(n, np.int64)
                for ids, values in self.sums.get(column, ()):
                    np.add.at(total, np.searchsorted(order_ids, ids), values)
                columns[column] = total.tolist()
            elif how == orders_fold.MAX and column != orders_fold._UPDATED:  # pick offsets
                columns[column] = [-1] * n
        for column, stated in self.sets.items():
            where = np.concatenate([np.searchsorted(order_ids, ids) for ids, _ in stated])
            values = np.concatenate([np.asarray(v, dtype=object) for _, v in stated])
            codes, uniques = pd.factorize(values)
            low = np.full(n, _BIG, np.int64)
            np.minimum.at(low, where, codes)
            high = np.full(n, -1, np.int64)
            np.maximum.at(high, where, codes)
            stated_rows = high >= 0
            clash = stated_rows & (low != high)
            if clash.any():
                row = int(np.flatnonzero(clash)[0])
                raise AssertionError(
                    f"order {order_ids[row]}: {orders_fold.NAMES[column]} is "
                    f"{uniques[low[row]]!r} and {uniques[high[row]]!r}"
                )
            out = np.full(n, None, dtype=object)
            out[stated_rows] = np.array(list(uniques), dtype=object)[low[stated_rows]]
            columns[column] = out.tolist()
        for column, chosen in self.picks.items():
            where = np.concatenate([np.searchsorted(order_ids, ids) for ids, _, _ in chosen])
            offsets = np.concatenate([offs for _, offs, _ in chosen])
            newest = np.lexsort((offsets, where))
            last = newest[np.r_[where[newest][1:] != where[newest][:-1], True]]
            rows = where[last]
            picked_offsets = np.array(columns[column], dtype=object)
            picked_offsets[rows] = offsets[last].tolist()
            columns[column] = picked_offsets.tolist()
            for target in chosen[0][2]:
                values = np.concatenate([np.asarray(p[target], dtype=object) for _, _, p in chosen])
                out = np.array(columns[target], dtype=object)
                out[rows] = values[last]
                columns[target] = out.tolist()
        return columns


_STATUS_ENDS = (orders_fold.EXPIRED, orders_fold.CANCELLED, orders_fold.FILLED)  # lowest rank first


def statuses(columns: list[list[Any]]) -> list[str]:
    """:func:`.orders_fold.status` of each row of ``columns`` (as :meth:`_OrderFacts.fold_columns`
    gives them), with numpy."""
    engine_end = np.array(columns[orders_fold._ENGINE_END], dtype=object)
    account_end = np.array(columns[orders_fold._ACCOUNT_END], dtype=object)
    traded = (np.array(columns[orders_fold._FILLED], np.int64) > 0) | (
        np.array(columns[orders_fold._SETTLED], np.int64) > 0
    )
    found = np.where(traded, orders_fold.PARTIALLY_FILLED, orders_fold.NEW).astype(object)
    for end in _STATUS_ENDS:  # a higher rank overwrites a lower one, as status() checks
        found[(engine_end == end) | (account_end == end)] = end
    rejected = np.array(columns[orders_fold._OUTCOME], dtype=object) == orders_fold.ACCOUNT_REJECTED
    rejected |= (engine_end == orders_fold.REJECTED) | (account_end == orders_fold.REJECTED)
    found[rejected] = orders_fold.REJECTED
    return cast(list[str], found.tolist())


def _orders(batch: ColumnarBatch) -> list[list[Any]]:
    """The batch's order rows: every fact :func:`.orders_fold.facts` states, by column."""
    types = batch.types
    facts = _OrderFacts()
    t = "event_time_ns"
    if domain.OrderAccepted in types:
        c = types[domain.OrderAccepted]
        facts.add(_int(c["order_id"]), _int(c[t]), {
            "account_id": _int(c["account_id"]), "instrument_id": _int(c["instrument_id"]),
            "side": _str(c["side"]), "kind": _str(c["kind"]), "price": _int(c["price"]),
            "qty": _int(c["qty"]), "command_id": _str(c["command_id"]),
            "account_outcome": _const(orders_fold.ACCOUNT_ACCEPTED, len(c)),
            "hold_asset": _str(c["hold_asset"]), "hold_amount": _int(c["hold_amount"]),
            "maker_fee_ppm": _int(c["maker_fee_ppm"]), "taker_fee_ppm": _int(c["taker_fee_ppm"]),
            "stp_mode": _str(c["stp_mode"]),
        })  # fmt: skip
    if domain.FillSettled in types:
        c = types[domain.FillSettled]
        facts.add(
            _int(c["order_id"]), _int(c[t]),
            {"account_id": _int(c["account_id"]), "instrument_id": _int(c["instrument_id"])},
            {"settled_qty": _int(c["qty"]), "settled_notional": _int(c["notional"]),
             "fees": _int(c["fee"])},
        )  # fmt: skip
    if domain.HoldReleased in types:
        c = types[domain.HoldReleased]
        facts.add(_int(c["order_id"]), _int(c[t]), {
            "account_id": _int(c["account_id"]), "account_end": _str(c["end_reason"]),
            "released_amount": _int(c["amount"]),
        })  # fmt: skip
    if domain.AmendSettled in types:  # the order's terms stay the engine's (orders_fold)
        c = types[domain.AmendSettled]
        facts.add(_int(c["order_id"]), _int(c[t]), {
            "account_id": _int(c["account_id"]), "instrument_id": _int(c["instrument_id"]),
        })  # fmt: skip
    if domain.OrderRejected in types:
        c = types[domain.OrderRejected]
        keep = _int(c["order_id"]) > 0  # records before order ids were carried have 0
        facts.add(_int(c["order_id"])[keep], _int(c[t])[keep], {
            "account_id": _int(c["account_id"])[keep],
            "instrument_id": _int(c["instrument_id"])[keep], "side": _str(c["side"])[keep],
            "kind": _str(c["kind"])[keep], "price": _int(c["price"])[keep],
            "qty": _int(c["qty"])[keep], "command_id": _str(c["command_id"])[keep],
            "account_outcome": _const(orders_fold.ACCOUNT_REJECTED, int(keep.sum())),
            "reject_reason": _str(c["reason"])[keep], "reject_detail": _str(c["detail"])[keep],
        })  # fmt: skip
    if domain.CancelRequested in types:
        c = types[domain.CancelRequested]
        facts.add(_int(c["order_id"]), _int(c[t]), {
            "account_id": _int(c["account_id"]), "cancel_requested_time_ns": _int(c[t]),
        })  # fmt: skip
    if engine.Trade in types:
        c = types[engine.Trade]
        qty, price = _int(c["qty"]), _int(c["price"])
        sums = {"filled_qty": qty, "filled_notional": price * qty,
                "trades": np.ones(len(c), np.int64)}  # fmt: skip
        for side in ("maker", "taker"):
            facts.add(_int(c[f"{side}_order_id"]), _int(c[t]), {
                "account_id": _int(c[f"{side}_account_id"]),
                "instrument_id": _int(c["instrument_id"]),
            }, sums)  # fmt: skip
    if engine.Accepted in types:
        c = types[engine.Accepted]
        facts.add(_int(c["order_id"]), _int(c[t]), {
            "account_id": _int(c["account_id"]), "instrument_id": _int(c["instrument_id"]),
            "side": _str(c["side"]), "kind": _str(c["kind"]), "price": _int(c["price"]),
            "qty": _int(c["qty"]),
        })  # fmt: skip
    if engine.Filled in types:
        c = types[engine.Filled]
        facts.add(_int(c["order_id"]), _int(c[t]), {
            "account_id": _int(c["account_id"]), "instrument_id": _int(c["instrument_id"]),
            "engine_end": _const(orders_fold.FILLED, len(c)),
        })  # fmt: skip
    for kind, end in ((engine.Cancelled, orders_fold.CANCELLED),
                      (engine.Expired, orders_fold.EXPIRED)):  # fmt: skip
        if kind in types:
            c = types[kind]
            facts.add(_int(c["order_id"]), _int(c[t]), {
                "account_id": _int(c["account_id"]), "instrument_id": _int(c["instrument_id"]),
                "engine_end": _const(end, len(c)), "engine_end_reason": _str(c["reason"]),
                "engine_end_detail": _str(c["detail"]),
            })  # fmt: skip
    if engine.Rejected in types:
        c = types[engine.Rejected]
        ids, times = _int(c["order_id"]), _int(c[t])
        reason, request, detail = _str(c["reason"]), _str(c["request"]), _str(c["detail"])
        new_order = request == "NewOrder"
        ending = ~np.isin(reason, list(_NOT_ENDING))
        keep = (ids > 0) & new_order & ending
        facts.add(ids[keep], times[keep], {
            "engine_end": _const(orders_fold.REJECTED, int(keep.sum())),
            "engine_end_reason": reason[keep], "engine_end_detail": detail[keep],
            "reject_reason": reason[keep], "reject_detail": detail[keep],
        })  # fmt: skip
        refused = (ids > 0) & ~new_order
        offsets = batch.offset(engine.Rejected)[refused]
        facts.add(ids[refused], times[refused], {}, None, ("refused_offset", offsets, {
            "refused_request": request[refused], "refused_reason": reason[refused],
        }))  # fmt: skip
    if engine.AmendApplied in types:
        c = types[engine.AmendApplied]
        facts.add(_int(c["order_id"]), _int(c[t]), {
            "account_id": _int(c["account_id"]), "instrument_id": _int(c["instrument_id"]),
        }, None, ("amend_offset", batch.offset(engine.AmendApplied), {
            "amended_price": _int(c["new_price"]), "amended_qty": _int(c["new_qty"]),
        }))  # fmt: skip
    return facts.fold_columns()
