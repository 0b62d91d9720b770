"""The account side of the ``redis`` fold on a columnar batch: balances and account channel
entries computed with numpy over the batch's account events, no record object per event.

The twin is :meth:`.market_fold.MarketState._account` (per record); both give the same
state, the same :class:`.market_fold.Touched` balances and the same channel entries, byte
for byte (``tests/projections/test_redis_columns.py``).

Per batch:

1. the account events of every type, in batch order (one partition's events keep their
   log order: an account's channel depends on its partition only);
2. their balance changes as rows ``(event, order in the event, account, asset, Δavailable,
   Δheld)``: each posting (``Δavailable = amount``), then the hold change of the event
   (``Δavailable = −h``, ``Δheld = h``, the table of ``domain.HOLD_DELTA_OF``; 0: none);
3. per (account, asset), the running balances: the stored ones plus cumulative sums;
4. each event's entry: its fields (``redis_layout.ACCOUNT_ENTRY_FIELDS``) and, for the
   assets its own rows changed (in the order they first change), the account's balances
   after the event — packed only for the last ``ACCOUNT_EVENTS_KEPT`` events of each
   account in the batch (the stream keeps no more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tradex import domain
from tradex.domain.events import HOLD_DELTA_OF
from tradex.projections import redis_layout as layout
from tradex.projections.entry_kernel import (
    FIELD_INT,
    FIELD_STR,
    pack_entries,
    pack_stream_ops,
)
from tradex.schemas.columns import Dictionary, Enum, Strings, TypeColumns

ACCOUNT_TYPES = frozenset(domain.ACCOUNT_EVENT_TYPES)
# the hold change of an event: (asset column, amount column, sign) — domain.HOLD_DELTA_OF
HOLD_COLUMNS: dict[type, tuple[str, str, int]] = {
    domain.WithdrawalRequested: ("asset", "amount", 1),
    domain.WithdrawalPaid: ("asset", "amount", -1),
    domain.WithdrawalReleased: ("asset", "amount", -1),
    domain.OrderAccepted: ("hold_asset", "hold_amount", 1),
    domain.OrderAmended: ("hold_asset", "hold_added", 1),
    domain.AmendSettled: ("hold_asset", "hold_released", -1),
    domain.FillSettled: ("hold_asset", "hold_consumed", -1),
    domain.HoldReleased: ("asset", "amount", -1),
}
assert HOLD_COLUMNS.keys() == HOLD_DELTA_OF.keys(), "one hold table"
POSTINGS = "postings"
POSTINGS_TYPES = frozenset((domain.Deposited, domain.WithdrawalPaid, domain.FillSettled))
ROWS_PER_EVENT_MAX = 1 << 20  # balance rows of one event (its postings and its hold)
ASSETS_MAX = 1 << 20  # distinct assets in one batch


def _strings(column: Any) -> tuple[np.ndarray, list[str]]:
    """A string column as (codes int64, the distinct values)."""
    if isinstance(column, Dictionary):
        return column.codes.astype(np.int64), column.values.to_pylist()
    assert isinstance(column, Strings), type(column)
    values = column.to_pylist()
    distinct = sorted(set(values))
    index = {v: i for i, v in enumerate(distinct)}
    return np.array([index[v] for v in values], np.int64), distinct


class _Assets:
    """Asset codes of one batch as dense ids."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def of(self, column: Any) -> np.ndarray:
        codes, values = _strings(column)
        mapping = np.empty(max(len(values), 1), np.int64)
        for i, name in enumerate(values):
            found = self.ids.get(name)
            if found is None:
                found = self.ids[name] = len(self.names)
                self.names.append(name)
            mapping[i] = found
        assert len(self.names) < ASSETS_MAX, "assets in one batch"
        return mapping[codes] if len(codes) else codes


def fold_accounts(
    wallets: dict[int, Any],
    new_wallet: Callable[[int], Any],
    types: dict[type, TypeColumns],
    touched: Any,
) -> None:
    """Apply the account events of ``types`` (a columnar batch's types) to ``wallets``;
    record the balances changed in ``touched.balances``, the accounts with new entries in
    ``touched.account_streams`` and their streams' ``xadd`` ops, packed, in
    ``touched.account_ops`` (the kept entries only)."""
    found = [(cls, columns) for cls, columns in types.items() if cls in ACCOUNT_TYPES]
    if not found:
        return
    # 1. the events in batch order
    batch_rows = np.concatenate([columns.rows for _, columns in found]).astype(np.int64)
    order = np.argsort(batch_rows, kind="stable")
    count = len(order)
    event_of = np.empty(count, np.int64)  # (type, row of its type) -> event index
    event_of[order] = np.arange(count)
    event_account = np.concatenate(
        [np.asarray(columns["account_id"], np.int64) for _, columns in found]
    )[order]
    # 2. the balance rows
    assets = _Assets()
    parts: list[tuple[np.ndarray, ...]] = []  # event, sub, account, asset, Δavailable, Δheld
    start = 0
    starts: list[int] = []
    for cls, columns in found:
        starts.append(start)
        events = event_of[start : start + len(columns)]
        start += len(columns)
        if cls in POSTINGS_TYPES:
            items = columns.items[POSTINGS]
            at = events[items.parent.astype(np.int64)]
            amounts = np.asarray(items[f"{POSTINGS}.delta"], np.int64)
            parts.append((
                at, items.index.astype(np.int64),
                np.asarray(items[f"{POSTINGS}.account_id"], np.int64),
                assets.of(items[f"{POSTINGS}.asset"]), amounts, np.zeros_like(amounts),
            ))  # fmt: skip
        hold = HOLD_COLUMNS.get(cls)
        if hold is not None:
            asset_name, amount_name, sign = hold
            amounts = np.asarray(columns[amount_name], np.int64) * sign
            nonzero = np.flatnonzero(amounts)
            at = events[nonzero]
            parts.append((
                at, np.full(len(at), ROWS_PER_EVENT_MAX, np.int64), event_account[at],
                assets.of(columns[asset_name])[nonzero], -amounts[nonzero], amounts[nonzero],
            ))  # fmt: skip
    if parts:
        ev, sub, acct, asset, d_available, d_held = (
            np.concatenate(p) for p in zip(*parts, strict=True)
        )
    else:
        ev = sub = acct = asset = d_available = d_held = np.zeros(0, np.int64)
    assert not len(sub) or int(sub.max()) <= ROWS_PER_EVENT_MAX, "rows of one event"
    log_order = np.lexsort((sub, ev))
    ev, acct, asset = ev[log_order], acct[log_order], asset[log_order]
    d_available, d_held = d_available[log_order], d_held[log_order]
    # the wallets, new ones in the order the row fold creates them (event's account first)
    everyone = np.concatenate((event_account, acct))
    first_at = np.concatenate((np.arange(count) * 2, ev * 2 + 1))
    by_first = np.argsort(first_at, kind="stable")
    unique_accounts, first = np.unique(everyone[by_first], return_index=True)
    for account_id in unique_accounts[np.argsort(first, kind="stable")].tolist():
        if account_id not in wallets:
            new_wallet(account_id)
    # 3. running balances per (account, asset)
    n_assets = max(len(assets.names), 1)
    dense = np.searchsorted(unique_accounts, acct)
    key = dense * n_assets + asset
    by_key = np.argsort(key, kind="stable")  # groups, each in log order
    key_sorted = key[by_key]
    rows_count = len(key_sorted)
    available_after = np.empty(rows_count, np.int64)
    held_after = np.empty(rows_count, np.int64)
    if rows_count:
        group_start = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
        group_end = np.r_[group_start[1:], rows_count]
        group_sizes = group_end - group_start
        keys = key_sorted[group_start]
        account_ids = unique_accounts[keys // n_assets].tolist()
        names = [assets.names[a] for a in (keys % n_assets).tolist()]
        initial = np.empty((len(keys), 2), np.int64)
        stored_lists: list[list[int]] = []
        changed = touched.balances
        for i, (account_id, name) in enumerate(zip(account_ids, names, strict=True)):
            balances = wallets[account_id].balances
            balance = balances.get(name)
            if balance is None:
                balance = balances[name] = [0, 0]
            initial[i] = balance
            stored_lists.append(balance)
            changed[account_id].add(name)
        base_available = np.repeat(initial[:, 0], group_sizes)
        base_held = np.repeat(initial[:, 1], group_sizes)
        sums_available = np.cumsum(d_available[by_key])
        sums_held = np.cumsum(d_held[by_key])
        before_available = np.repeat(np.r_[0, sums_available[group_end[:-1] - 1]], group_sizes)
        before_held = np.repeat(np.r_[0, sums_held[group_end[:-1] - 1]], group_sizes)
        available_after[by_key] = base_available + sums_available - before_available
        held_after[by_key] = base_held + sums_held - before_held
        last = group_end - 1
        final_available = available_after[by_key[last]].tolist()
        final_held = held_after[by_key[last]].tolist()
        for balance, available, held in zip(stored_lists, final_available, final_held, strict=True):
            balance[0] = available
            balance[1] = held
        # the balances after a whole event: the value at its last row of the group
        is_last = np.r_[
            (key_sorted[1:] != key_sorted[:-1]) | (ev[by_key][1:] != ev[by_key][:-1]), True
        ]
        positions = np.where(is_last, np.arange(rows_count), rows_count)
        last_of = np.minimum.accumulate(positions[::-1])[::-1]
        event_available = np.empty(rows_count, np.int64)
        event_held = np.empty(rows_count, np.int64)
        event_available[by_key] = available_after[by_key[last_of]]
        event_held[by_key] = held_after[by_key[last_of]]
    else:
        event_available = event_held = available_after
    # the event's own assets, in the order they first change
    own = np.flatnonzero(acct == event_account[ev])
    own_key = ev[own] * n_assets + asset[own]
    _, first_own = np.unique(own_key, return_index=True)
    own = own[np.sort(first_own)]  # log order: by event, then first change
    own_event = ev[own]
    # 4. seq per account; which entries the stream keeps
    by_account = np.argsort(event_account, kind="stable")
    accounts_sorted = event_account[by_account]
    account_start = np.flatnonzero(np.r_[True, accounts_sorted[1:] != accounts_sorted[:-1]])
    account_end = np.r_[account_start[1:], count]
    per_account = account_end - account_start
    rank = np.arange(count) - np.repeat(account_start, per_account)
    kept_max = layout.ACCOUNT_EVENTS_KEPT
    keep_sorted = rank >= np.repeat(per_account, per_account) - kept_max
    streams = accounts_sorted[account_start].tolist()
    seq_starts = []
    for account_id, n in zip(streams, per_account.tolist(), strict=True):
        wallet = wallets[account_id]
        seq_starts.append(wallet.seq)
        wallet.seq += n
    seq_sorted = np.repeat(np.array(seq_starts, np.int64), per_account) + rank + 1
    keep = np.zeros(count, np.bool_)
    keep[by_account[keep_sorted]] = True
    # the entries the streams keep, packed in one kernel call (account, then seq order)
    kept_sorted = by_account[keep_sorted]
    kept_count = len(kept_sorted)
    position = np.full(count, -1, np.int64)
    position[kept_sorted] = np.arange(kept_count)
    pool = _Pool()
    asset_ranges = np.array([pool.add(name.encode()) for name in assets.names], np.int64)
    own_kept = keep[own_event]
    own, own_event = own[own_kept], own_event[own_kept]
    own_counts = np.bincount(own_event, minlength=count)
    own_ends = np.cumsum(own_counts)
    own_asset = asset_ranges[asset[own]] if len(own) else np.zeros((0, 2), np.int64)
    fields_max = max(len(layout.ACCOUNT_ENTRY_FIELDS[cls.__name__]) for cls, _ in found)
    kinds = np.zeros((len(found), fields_max), np.int64)
    type_names = np.zeros((len(found), 2), np.int64)
    kind_row = np.zeros(kept_count, np.int64)
    value_a = np.zeros((kept_count, fields_max), np.int64)
    value_b = np.zeros((kept_count, fields_max), np.int64)
    for t, ((cls, columns), type_start) in enumerate(zip(found, starts, strict=True)):
        type_names[t] = pool.add(cls.__name__.encode())
        events = event_of[type_start : type_start + len(columns)]
        rows = np.flatnonzero(keep[events])
        at = position[events[rows]]
        kind_row[at] = t
        for f, name in enumerate(layout.ACCOUNT_ENTRY_FIELDS[cls.__name__]):
            kinds[t, f] = pool.field(columns[name], rows, at, value_a[:, f], value_b[:, f])
    ends = own_ends[kept_sorted]
    data, offsets = pack_entries(
        pool.bytes(), kinds, type_names, kind_row, value_a, value_b, ends - own_counts[kept_sorted],
        ends, own_asset[:, 0].copy(), own_asset[:, 1].copy(), event_available[own],
        event_held[own],
    )  # fmt: skip
    # the streams' xadd ops, packed (redis_store.Ops.packed): keys and trims in the pool
    trim_all, trim_none = pool.add(str(kept_max).encode()), pool.add(b"0")
    op_name = np.array(pool.add(b"xadd"), np.int64)
    totals = np.array([wallets[account_id].seq for account_id in streams], np.int64)
    stream_trim = np.where((totals > kept_max)[:, None], trim_all, trim_none).astype(np.int64)
    stream_key = np.array(
        [pool.add(layout.account_events(account_id).encode()) for account_id in streams], np.int64
    )
    kept_per_account = np.minimum(per_account, kept_max)
    ops = pack_stream_ops(
        data, offsets, seq_sorted[keep_sorted], pool.bytes(), op_name, stream_key.reshape(-1, 2),
        stream_trim.reshape(-1, 2), kept_per_account,
    )  # fmt: skip
    touched.account_streams = streams
    touched.account_ops.append((ops, len(streams)))


class _Pool:
    """The strings of one batch's entries as one byte buffer (``pack_entries``'s pool)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> tuple[int, int]:
        start = self.size
        self.parts.append(data)
        self.size += len(data)
        return start, self.size

    def _strings(self, strings: Strings) -> np.ndarray:
        """``strings`` added; the pool offsets of its items (n + 1)."""
        assert strings.text, "a text column"
        start, _ = self.add(strings.data)
        return strings.offsets + start

    def field(
        self, column: Any, rows: np.ndarray, at: np.ndarray, a: np.ndarray, b: np.ndarray
    ) -> int:
        """A field's values of ``rows`` put at ``at`` of ``a`` (ints, string starts) and
        ``b`` (string ends); its kind."""
        if isinstance(column, np.ndarray):
            assert column.ndim == 1, column.shape
            assert column.dtype.kind in "iu", column.dtype  # msgpack ints (no bool)
            a[at] = column[rows]
            return FIELD_INT
        if isinstance(column, Strings):
            offsets = self._strings(column)
            a[at], b[at] = offsets[rows], offsets[rows + 1]
            return FIELD_STR
        if isinstance(column, Dictionary):
            offsets = self._strings(column.values)
            codes = column.codes[rows]
            a[at], b[at] = offsets[codes], offsets[codes + 1]
            return FIELD_STR
        assert isinstance(column, Enum), type(column)
        offsets = self._strings(_symbols(column.symbols))
        codes = column.codes[rows].astype(np.int64)
        a[at], b[at] = offsets[codes], offsets[codes + 1]
        return FIELD_STR

    def bytes(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.parts), np.uint8)


def _symbols(symbols: tuple[str, ...]) -> Strings:
    encoded = [symbol.encode() for symbol in symbols]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return Strings(offsets, b"".join(encoded))
