"""The ledger's invariants over the whole log, in numpy over the scan's columns.

- ``journal_balanced``: every journal entry (the postings of one record) sums to zero per
  asset;
- ``negative_balance``: no user account's available or held balance of an asset is ever
  below zero, after any event (balances in log order: a user account lives in one
  ``account-events`` partition, so the scan's order is its log order);
- holds, per hold (an order's, by ``order_id``; a withdrawal's, by ``withdrawal_id``):
  ``hold_not_opened`` (a change before its OrderAccepted / WithdrawalRequested; an
  OrderAmended tops an order's hold up, an AmendSettled gives part of it back),
  ``hold_reopened``, ``hold_negative`` (consumed beyond what was held),
  ``hold_closed_with_remainder`` (HoldReleased / WithdrawalPaid / WithdrawalReleased not
  leaving it at zero), ``hold_after_close``, ``hold_asset`` (its asset changes). The held
  balance changes only through these hold changes (each belongs to one hold), so these
  make held == Σ open holds after every event;
- ``asset_conserved``: per asset, the postings of all accounts (users, fees, clearing,
  external) sum to zero, i.e. what users, fees and clearing hold is what came in from the
  external account;
- ``clearing_nets``: the clearing account nets to zero per trade whose two sides settled;
- ``maker_checker``: no withdrawal decided (paid or released) by the user who requested
  it (the events' ``actor``; 0, the system, is not a user);
- ``admin_actor``: deposits and withdrawal decisions with a user as actor only by users
  who had the ``admin`` role somewhere on ``reference-events``.

The same invariants, one event at a time, are :class:`tradex.domain.Ledger` (the slow,
obvious twin; ``tests/audit`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tradex.audit.findings import Findings
from tradex.audit.scan import Gathered
from tradex.domain.events import HOLD_DELTA_OF
from tradex.domain.journal import CLEARING_ACCOUNT

OPEN, CHANGE, CLOSE = 0, 1, 2
WITHDRAWAL_KEY_BIT = 1 << 62  # hold keys: order ids are < 2^52, withdrawals get this bit


@dataclass
class LedgerFigures:
    entries: int
    postings: int
    holds: int
    supply: dict[str, int]  # per asset: what came in from the external account (−its sum)


def sort_order(*keys: np.ndarray) -> np.ndarray:
    """The order of ``np.lexsort(keys)`` (last key primary), up to the order among equal
    rows: one argsort of the keys packed into one int64 (several times faster than
    lexsort); keys whose ranges do not fit in 63 bits together are replaced by their dense
    ranks first, widest first (one argsort each), and lexsort is the last resort."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, np.int64)
    columns = list(keys)
    lows = [int(k.min()) for k in columns]
    bits = [_bits(int(k.max()) - low + 1) for k, low in zip(columns, lows, strict=True)]
    for _round in range(len(columns)):  # bounded: each key is ranked at most once
        if sum(bits) <= 63:
            break
        widest = max(range(len(columns)), key=bits.__getitem__)
        rank = dense_rank(columns[widest])
        if _bits(int(rank.max()) + 1) >= bits[widest]:
            break  # ranking does not narrow it: lexsort
        columns[widest], lows[widest] = rank, 0
        bits[widest] = _bits(int(rank.max()) + 1)
    if sum(bits) > 63:
        return np.lexsort(keys)
    packed = np.zeros(n, np.int64)
    shift = 0
    for key, low, width in zip(columns, lows, bits, strict=True):
        packed |= (key - low) << shift
        shift += width
    return np.argsort(packed)  # ties only where the order among them does not matter


def _bits(span: int) -> int:
    """Bits to hold ``span`` values 0..span-1 (at least 1)."""
    assert span >= 1, span
    return max(span - 1, 1).bit_length()


def dense_rank(values: np.ndarray) -> np.ndarray:
    """Each value's rank among the distinct values (equal values, equal ranks; order kept)."""
    order = np.argsort(values)
    ordered = values[order]
    ranks = np.empty(len(values), np.int64)
    if len(values):
        ranks[order] = np.cumsum(np.r_[False, ordered[1:] != ordered[:-1]])
    return ranks


def member(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``np.isin(values, of)`` for integer columns: one sort of ``of`` and a binary search
    per value (numpy's isin hashes or sorts both together: ~3x slower on these columns)."""
    if len(values) == 0 or len(of) == 0:
        return np.zeros(len(values), np.bool_)
    ordered = np.sort(of)
    at = np.searchsorted(ordered, values)
    np.minimum(at, len(ordered) - 1, out=at)
    return np.asarray(ordered[at] == values)


def _group_starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal ``keys`` (sorted) starts."""
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def _running(values: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Cumulative sums restarting at each group start."""
    total = np.cumsum(values)
    before = np.zeros(n, np.int64)
    if len(starts):
        offsets = np.r_[0, total[starts[1:] - 1]]
        sizes = np.diff(np.r_[starts, n])
        before = np.repeat(offsets, sizes)
    return total - before


def check_journal(found: Gathered, out: Findings) -> int:
    """``journal_balanced``; the number of entries."""
    p = found.postings
    g, asset, delta = p["g"], p["asset"], p["delta"]
    if len(g) == 0:
        return 0
    order = sort_order(asset, g)
    g, asset, delta = g[order], asset[order], delta[order]
    key_change = np.r_[True, (g[1:] != g[:-1]) | (asset[1:] != asset[:-1])]
    starts = np.flatnonzero(key_change)
    sums = np.add.reduceat(delta, starts)
    bad = np.flatnonzero(sums != 0)
    out.many(
        "journal_balanced",
        g[starts[bad]],
        lambda j: (
            f"journal entry unbalanced in {found.name(int(asset[starts[bad[j]]]))}: "
            f"sums to {int(sums[bad[j]])}"
        ),
    )
    return int((g[1:] != g[:-1]).sum()) + 1


def _hold_rows(found: Gathered) -> dict[str, np.ndarray]:
    """One row per hold change: g, account, asset, delta, hold key, kind (OPEN...)."""
    t = found.tables
    parts: list[tuple[np.ndarray, ...]] = []

    def add(name: str, asset: str, sign: int, key: str, kind: int) -> None:
        rows = t[name]
        keys = rows[key] if key == "order_id" else rows[key] | WITHDRAWAL_KEY_BIT
        n = len(rows["g"])
        parts.append((rows["g"], rows["account_id"], rows[asset], sign * rows[_AMOUNT[name]],
                      keys, np.full(n, kind, np.int64)))  # fmt: skip

    add("OrderAccepted", "hold_asset", 1, "order_id", OPEN)
    add("OrderAmended", "hold_asset", 1, "order_id", CHANGE)  # topped up to the new bounds
    add("AmendSettled", "hold_asset", -1, "order_id", CHANGE)  # narrowed to the engine's terms
    add("FillSettled", "hold_asset", -1, "order_id", CHANGE)
    add("HoldReleased", "asset", -1, "order_id", CLOSE)
    add("WithdrawalRequested", "asset", 1, "withdrawal_id", OPEN)
    add("WithdrawalPaid", "asset", -1, "withdrawal_id", CLOSE)
    add("WithdrawalReleased", "asset", -1, "withdrawal_id", CLOSE)
    names = ("g", "account_id", "asset", "delta", "key", "kind")
    return {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(names)}


_AMOUNT = {
    "OrderAccepted": "hold_amount", "OrderAmended": "hold_added", "AmendSettled": "hold_released",
    "FillSettled": "hold_consumed", "HoldReleased": "amount",
    "WithdrawalRequested": "amount", "WithdrawalPaid": "amount", "WithdrawalReleased": "amount",
}  # fmt: skip
assert set(_AMOUNT) == {kind.__name__ for kind in HOLD_DELTA_OF}, "the domain's hold table"


def check_holds(found: Gathered, out: Findings) -> dict[str, np.ndarray]:
    """The hold checks (module doc); returns the hold rows (for the balances)."""
    rows = _hold_rows(found)
    n = len(rows["g"])
    if n == 0:
        return rows
    order = sort_order(rows["g"], rows["key"], rows["account_id"])
    g, account, asset, delta, key, kind = (rows[c][order] for c in
                                           ("g", "account_id", "asset", "delta", "key", "kind"))  # fmt: skip
    starts = _group_starts(_pair_ids(account, key))
    first = np.zeros(n, np.bool_)
    first[starts] = True
    group = np.cumsum(first) - 1
    running = _running(delta, starts, n)
    what = np.where(key & WITHDRAWAL_KEY_BIT, "withdrawal", "order")
    out.many("hold_not_opened", g[first & (kind != OPEN)],
             "changes a hold that was never opened (no OrderAccepted / WithdrawalRequested "
             "before it): a settlement for an order never accepted, or a withdrawal never "
             "requested")  # fmt: skip
    out.many("hold_reopened", g[~first & (kind == OPEN)], "opens a hold that is already open")
    neg = np.flatnonzero(running < 0)
    out.many(
        "hold_negative",
        g[neg],
        lambda j: f"the {what[neg[j]]}'s hold goes below zero: {running[neg[j]]}",
    )
    left = np.flatnonzero((kind == CLOSE) & (running != 0))
    out.many(
        "hold_closed_with_remainder",
        g[left],
        lambda j: f"closes the {what[left[j]]}'s hold with {running[left[j]]} left",
    )
    closes = (kind == CLOSE).astype(np.int64)
    closed_before = _running(closes, starts, n) - closes > 0
    out.many("hold_after_close", g[closed_before], "changes a hold already closed")
    asset_changed = asset != asset[starts][group]
    out.many("hold_asset", g[asset_changed], "changes the asset of its hold")
    return {"g": g, "account_id": account, "asset": asset, "delta": delta}


def _pair_ids(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense ids of the (a, b) pairs of sorted rows (equal pairs, equal ids)."""
    if len(a) == 0:
        return np.zeros(0, np.int64)
    change = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    return np.cumsum(change) - 1


def check_balances(found: Gathered, holds: dict[str, np.ndarray], out: Findings) -> None:
    """``negative_balance`` (module doc)."""
    p = found.postings
    users = p["account_id"] > 0
    g = np.concatenate((p["g"][users], holds["g"]))
    account = np.concatenate((p["account_id"][users], holds["account_id"]))
    asset = np.concatenate((p["asset"][users], holds["asset"]))
    d_total = np.concatenate((p["delta"][users], np.zeros(len(holds["g"]), np.int64)))
    d_held = np.concatenate((np.zeros(int(users.sum()), np.int64), holds["delta"]))
    n = len(g)
    if n == 0:
        return
    # Within one record the postings come before its hold change: both apply at once, so
    # the balance is checked after the last row of each record.
    order = sort_order(g, asset, account)
    g, account, asset = g[order], account[order], asset[order]
    d_total, d_held = d_total[order], d_held[order]
    starts = _group_starts(_pair_ids(account, asset))
    total = _running(d_total, starts, n)
    held = _running(d_held, starts, n)
    last_of_record = np.r_[(g[1:] != g[:-1]) | (account[1:] != account[:-1])
                           | (asset[1:] != asset[:-1]), True]  # fmt: skip
    bad_held = np.flatnonzero(last_of_record & (held < 0))
    bad_available = np.flatnonzero(last_of_record & (total - held < 0))
    for check_rows, part in ((bad_held, "held"), (bad_available, "available")):
        values = held if part == "held" else total - held
        out.many(
            "negative_balance",
            g[check_rows],
            _balance_text(found, account, asset, values, check_rows, part),
        )


def _balance_text(
    found: Gathered,
    account: np.ndarray,
    asset: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    part: str,
) -> Callable[[int], str]:
    def text(j: int) -> str:
        i = rows[j]
        return f"account {account[i]} {part} {found.name(int(asset[i]))} = {values[i]} < 0"

    return text


def check_conservation(found: Gathered, out: Findings) -> dict[str, int]:
    """``asset_conserved``; per asset, the supply (what came in from the external account)."""
    p = found.postings
    supply: dict[str, int] = {}
    present = np.bincount(p["asset"]) if len(p["asset"]) else np.zeros(0, np.int64)
    for asset in np.flatnonzero(present).tolist():
        mine = p["asset"] == asset
        total = int(p["delta"][mine].sum())
        external = int(p["delta"][mine & (p["account_id"] == -1)].sum())
        supply[found.name(asset)] = -external
        if total != 0:
            out.add("asset_conserved", -1,
                    f"{found.name(asset)}: postings of all accounts sum to {total}, not 0 "
                    f"(users + fees + clearing hold {total - external}, the external account "
                    f"gave {-external})")  # fmt: skip
    return supply


def check_clearing(found: Gathered, out: Findings) -> None:
    """``clearing_nets``: per trade settled on both sides, clearing sums to zero per asset."""
    fills = found.tables["FillSettled"]
    p = found.postings
    clearing = p["account_id"] == CLEARING_ACCOUNT
    if not clearing.any() or len(fills["g"]) == 0:
        return
    fill_order = np.argsort(fills["g"])
    fill_g = fills["g"][fill_order]
    at = np.searchsorted(fill_g, p["g"][clearing])
    inside = at < len(fill_g)
    at = np.minimum(at, len(fill_g) - 1)
    from_fill = inside & (fill_g[at] == p["g"][clearing])
    trade = fills["trade_id"][fill_order][at][from_fill]
    asset = p["asset"][clearing][from_fill]
    delta = p["delta"][clearing][from_fill]
    g = p["g"][clearing][from_fill]
    sides = _settled_sides(fills)
    order = sort_order(asset, trade)
    trade, asset, delta, g = trade[order], asset[order], delta[order], g[order]
    starts = _group_starts(_pair_ids(trade, asset))
    sums = np.add.reduceat(delta, starts) if len(starts) else np.zeros(0, np.int64)
    both = member(trade[starts], sides)
    bad = np.flatnonzero((sums != 0) & both)
    ends = np.r_[starts[1:], len(trade)] - 1
    out.many(
        "clearing_nets",
        g[ends[bad]],
        lambda j: (
            f"clearing does not net for trade {trade[starts[bad[j]]]} in "
            f"{found.name(int(asset[starts[bad[j]]]))}: {sums[bad[j]]}"
        ),
    )


def _settled_sides(fills: dict[str, np.ndarray]) -> np.ndarray:
    """The trades with at least two FillSettled."""
    trades = np.sort(fills["trade_id"])
    return trades[1:][trades[1:] == trades[:-1]]


def check_maker_checker(found: Gathered, out: Findings) -> None:
    """A withdrawal's decision (WithdrawalPaid / Released) with a non-zero ``actor`` equal
    to its WithdrawalRequested's ``actor``: the maker checked their own request (the
    account processor refuses that: docs/ledger.md). Withdrawals are few: a dict."""
    t = found.tables
    asked = t["WithdrawalRequested"]
    keys = zip(asked["account_id"].tolist(), asked["withdrawal_id"].tolist(), strict=True)
    makers = dict(zip(keys, asked["actor"].tolist(), strict=True))
    for name in ("WithdrawalPaid", "WithdrawalReleased"):
        rows = t[name]
        for g, account, withdrawal, actor in zip(
            rows["g"].tolist(), rows["account_id"].tolist(), rows["withdrawal_id"].tolist(),
            rows["actor"].tolist(), strict=True,
        ):  # fmt: skip
            if actor and makers.get((account, withdrawal)) == actor:
                out.add("maker_checker", g, f"withdrawal {found.name(withdrawal)} of account "
                        f"{account} decided ({name}) by user {actor}, who requested it")  # fmt: skip


ADMIN_COMMANDS = ("Deposited", "WithdrawalPaid", "WithdrawalReleased")  # admin-only causes


def check_admin_actors(found: Gathered, out: Findings) -> None:
    """A Deposited / WithdrawalPaid / WithdrawalReleased with a non-zero ``actor`` who never
    had the ``admin`` role anywhere on ``reference-events`` (registered with it or given it
    by a UserRolesChanged). The account processor decides by the reference events it has
    read so far, which the log does not order against the account events; "never, in any
    prefix" is what the log alone proves (an actor whose admin role was dropped earlier is
    not caught)."""
    t = found.tables
    admins: set[int] = set()
    for name in ("UserRegistered", "UserRolesChanged"):
        rows = t[name]
        for user, roles in zip(rows["user.user_id"].tolist(), rows["user.roles"].tolist(),
                               strict=True):  # fmt: skip
            if "admin" in found.name(roles).split(","):
                admins.add(user)
    for name in ADMIN_COMMANDS:
        rows = t[name]
        actors = rows["actor"]
        suspect = np.flatnonzero(
            (actors != 0) & ~member(actors, np.array(sorted(admins), np.int64))
        )
        for j in suspect.tolist():
            out.add("admin_actor", int(rows["g"][j]), f"{name} by user {int(actors[j])}, who "
                    "never had the admin role on reference-events")  # fmt: skip


def check_ledger(found: Gathered, out: Findings) -> LedgerFigures:
    entries = check_journal(found, out)
    holds = check_holds(found, out)
    check_balances(found, holds, out)
    supply = check_conservation(found, out)
    check_clearing(found, out)
    check_maker_checker(found, out)
    check_admin_actors(found, out)
    return LedgerFigures(entries, len(found.postings["g"]), len(holds["g"]), supply)
