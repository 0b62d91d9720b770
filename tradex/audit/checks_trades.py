"""Trades against their settlement, in numpy over the scan's columns.

- ``fill_leg``: every engine ``Trade`` has exactly its two ``FillLeg`` s in ``settlements``
  (maker and taker: each one's order, account, side, price and quantity as the trade says);
  a FillLeg of no trade, or a second one of a side, is reported too;
- ``fill_settled``: every Trade has exactly its two ``FillSettled`` in ``account-events``,
  the same way; a trade whose FillLeg the account processors have not consumed yet (past
  the ``accounts`` group's committed position of ``settlements``) is *pending*, not missing;
- ``fee``: each FillSettled's notional, fee, cumulative ``fee_micro`` and hold consumed,
  recomputed from its order's OrderAccepted (tick and lot size, maker/taker rate), fills of
  an order in log order (``tradex.domain.units.fee_step``);
- ``hold_released``: every ``OrderEnded`` has its ``HoldReleased`` (pending as above), and
  every HoldReleased its OrderEnded;
- ``amend_settled``: every ``AmendConfirmed`` has its ``AmendSettled`` (the same order and
  ``amend_time_ns``; pending as above), every AmendSettled its AmendConfirmed, and no
  amend is settled twice;
- ``never_accepted``: no FillLeg, OrderEnded or AmendConfirmed for an order no
  OrderAccepted names;
- ``settlement_rejected``: no ``CommandRejected`` of a settlement record (FillLeg,
  OrderEnded, AmendConfirmed: the account side refusing what the engine decided).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradex.audit.checks_ledger import _running, dense_rank, member, sort_order
from tradex.audit.findings import Findings
from tradex.audit.scan import SETTLEMENT_TYPES, Gathered
from tradex.domain.journal import FEES_ACCOUNT
from tradex.domain.types import PPM

MAKER, TAKER = 0, 1
SAFE_PRODUCT_MAX = 1 << 62  # notional x rate beyond this: computed with Python ints


@dataclass
class TradeFigures:
    trades: int
    fill_legs: int
    fills_settled: int
    pending: int  # settlement records the account processors have not consumed yet


def _liquidity(found: Gathered, column: np.ndarray) -> np.ndarray:
    return np.where(column == found.intern_id("TAKER"), TAKER, MAKER)


def _pending(found: Gathered, gs: np.ndarray, consumed: Mapping[int, int]) -> np.ndarray:
    """Whether each settlements record ``gs`` is at or past the consumed position."""
    if not consumed or len(gs) == 0:
        return np.zeros(len(gs), np.bool_)
    partition, offset = found.positions(gs)
    table = np.full(int(partition.max()) + 1, 1 << 62, np.int64)
    for p, position in consumed.items():
        if p < len(table):
            table[p] = position
    return offset >= table[partition]


def _match_sides(
    found: Gathered,
    trades: dict[str, np.ndarray],
    legs: dict[str, np.ndarray],
    check: str,
    what: str,
    out: Findings,
    exempt: np.ndarray | None = None,
) -> np.ndarray:
    """Each trade's maker and taker among ``legs`` (FillLeg or FillSettled rows); returns the
    legs' trade ids that were found."""
    liquidity = _liquidity(found, legs["liquidity"])
    keys = legs["trade_id"] * 2 + liquidity
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    dup = np.flatnonzero(np.r_[False, sorted_keys[1:] == sorted_keys[:-1]])
    out.many(check, legs["g"][order[dup]], f"a second {what} of the same side of its trade")
    known = member(legs["trade_id"], trades["trade_id"])
    out.many(check, legs["g"][~known], f"a {what} of a trade the engine never made")
    buy, sell = found.intern_id("BUY"), found.intern_id("SELL")
    taker_side = trades["taker_side"]
    maker_side = np.where(taker_side == buy, sell, buy)
    for liq, order_col, account_col, side in (
        (MAKER, "maker_order_id", "maker_account_id", maker_side),
        (TAKER, "taker_order_id", "taker_account_id", taker_side),
    ):
        wanted = trades["trade_id"] * 2 + liq
        at = np.minimum(np.searchsorted(sorted_keys, wanted), max(len(keys) - 1, 0))
        have = (sorted_keys[at] == wanted) if len(keys) else np.zeros(len(wanted), np.bool_)
        missing = ~have if exempt is None else ~have & ~exempt[liq]
        name = "maker" if liq == MAKER else "taker"
        out.many(check, trades["g"][missing], f"the trade has no {name} {what}")
        rows = order[at[have]]
        t = np.flatnonzero(have)
        for field, expected in (
            ("order_id", trades[order_col][t]), ("account_id", trades[account_col][t]),
            ("side", side[t]), ("price", trades["price"][t]), ("qty", trades["qty"][t]),
        ):  # fmt: skip
            got = legs[field][rows]
            bad = np.flatnonzero(got != expected)
            out.many(
                check, legs["g"][rows[bad]], _differs(found, what, name, field, got, expected, bad)
            )
    return np.asarray(legs["trade_id"])


def _differs(
    found: Gathered,
    what: str,
    name: str,
    field: str,
    got: np.ndarray,
    expected: np.ndarray,
    bad: np.ndarray,
) -> Callable[[int], str]:
    def shown(value: Any) -> str:
        return found.name(int(value)) if field == "side" else str(int(value))

    def text(j: int) -> str:
        i = bad[j]
        return (f"the {name} {what}'s {field} is {shown(got[i])}, the trade says "
                f"{shown(expected[i])}")  # fmt: skip

    return text


def _settled_pending(
    found: Gathered,
    trades: dict[str, np.ndarray],
    legs: dict[str, np.ndarray],
    consumed: Mapping[int, int],
) -> np.ndarray:
    """[maker, taker] x trade: its FillLeg is not consumed yet (no FillSettled expected)."""
    exempt = np.zeros((2, len(trades["g"])), np.bool_)
    if not consumed or len(legs["g"]) == 0:
        return exempt
    pending = _pending(found, legs["g"], consumed)
    if not pending.any():
        return exempt
    liquidity = _liquidity(found, legs["liquidity"])
    for liq in (MAKER, TAKER):
        ids = legs["trade_id"][pending & (liquidity == liq)]
        exempt[liq] = member(trades["trade_id"], ids)
    return exempt


def check_fees(found: Gathered, out: Findings) -> None:
    """``fee`` (module doc)."""
    fills, accepted = found.tables["FillSettled"], found.tables["OrderAccepted"]
    n = len(fills["g"])
    if n == 0:
        return
    order_of = np.argsort(accepted["order_id"], kind="stable")
    ids = accepted["order_id"][order_of]
    at = np.minimum(np.searchsorted(ids, fills["order_id"]), max(len(ids) - 1, 0))
    known = (ids[at] == fills["order_id"]) if len(ids) else np.zeros(n, np.bool_)
    # (a fill of an order never accepted is the holds' hold_not_opened)
    rows = order_of[at]
    tick, lot = accepted["tick_size"][rows], accepted["lot_size"][rows]
    liquidity = _liquidity(found, fills["liquidity"])
    rate = np.where(liquidity == MAKER, accepted["maker_fee_ppm"][rows],
                    accepted["taker_fee_ppm"][rows])  # fmt: skip
    notional = fills["price"] * fills["qty"] * tick
    big = (np.abs(notional) > SAFE_PRODUCT_MAX // np.maximum(np.abs(rate), 1)) | (
        np.abs(fills["price"]) * np.abs(fills["qty"]) > SAFE_PRODUCT_MAX // np.maximum(tick, 1)
    )
    step = notional * rate
    # Fills of one order in log order (an order's fills are all in its account's partition).
    by_order = sort_order(fills["g"], fills["order_id"])
    sorted_ids = fills["order_id"][by_order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    after = np.empty(n, np.int64)
    after[by_order] = _running(step[by_order], starts, n)
    before = after - step
    fee = -(-after // PPM) + (-before // PPM)
    buy = fills["side"] == found.intern_id("BUY")
    consumed = np.where(buy, notional + fee, fills["qty"] * lot)
    fee_posted = _fee_postings(found, fills)
    for field, expected in (
        ("notional", notional), ("fee", fee), ("fee_micro", after), ("hold_consumed", consumed),
    ):  # fmt: skip
        bad = np.flatnonzero(known & ~big & (fills[field] != expected))
        out.many("fee", fills["g"][bad], _fee_text(field, fills[field], expected, bad))
    bad = np.flatnonzero(known & (fee_posted != fills["fee"]))
    out.many("fee", fills["g"][bad], _fee_text("fee posting", fee_posted, fills["fee"], bad))
    if big.any():
        out.add("fee", int(fills["g"][np.flatnonzero(big)[0]]),
                f"{int(big.sum())} fills too large for the vectorised fee check: not checked")  # fmt: skip


def _fee_text(
    field: str, got: np.ndarray, expected: np.ndarray, bad: np.ndarray
) -> Callable[[int], str]:
    def text(j: int) -> str:
        i = bad[j]
        return f"{field} is {got[i]}, the order's accepted rates give {expected[i]}"

    return text


def _fee_postings(found: Gathered, fills: dict[str, np.ndarray]) -> np.ndarray:
    """Per FillSettled, the sum of its postings to the fees account."""
    p = found.postings
    fee_rows = p["account_id"] == FEES_ACCOUNT
    order = np.argsort(fills["g"])
    sorted_g = fills["g"][order]
    at = np.searchsorted(sorted_g, p["g"][fee_rows])
    at_ok = np.minimum(at, len(sorted_g) - 1)
    mine = sorted_g[at_ok] == p["g"][fee_rows]
    posted_sorted = np.zeros(len(sorted_g), np.int64)
    np.add.at(posted_sorted, at_ok[mine], p["delta"][fee_rows][mine])
    posted = np.empty(len(sorted_g), np.int64)
    posted[order] = posted_sorted
    return posted


def check_ends(found: Gathered, consumed: Mapping[int, int], out: Findings) -> None:
    """``hold_released``, ``amend_settled``, ``never_accepted``, ``settlement_rejected``
    (module doc)."""
    t = found.tables
    ended, released = t["OrderEnded"], t["HoldReleased"]
    accepted_ids = t["OrderAccepted"]["order_id"]
    missing = ~member(ended["order_id"], released["order_id"])
    if missing.any():
        missing &= ~_pending(found, ended["g"], consumed) if consumed else missing
    out.many("hold_released", ended["g"][missing], "the OrderEnded has no HoldReleased")
    orphan = ~member(released["order_id"], ended["order_id"])
    out.many("hold_released", released["g"][orphan], "a HoldReleased with no OrderEnded")
    check_amends(found, consumed, out)
    for name in ("FillLeg", "OrderEnded", "AmendConfirmed"):
        never = ~member(t[name]["order_id"], accepted_ids)
        out.many("never_accepted", t[name]["g"][never],
                 f"a {name} for an order no OrderAccepted names")  # fmt: skip
    rejected = t["CommandRejected"]
    kinds = np.array([found.intern_id(kind.__name__) for kind in SETTLEMENT_TYPES], np.int64)
    refused = member(rejected["command_type"], kinds)
    out.many("settlement_rejected", rejected["g"][refused],
             "the account side rejected a settlement the engine decided")  # fmt: skip


def check_amends(found: Gathered, consumed: Mapping[int, int], out: Findings) -> None:
    """``amend_settled`` (module doc): AmendConfirmed and AmendSettled paired by (order,
    ``amend_time_ns``), an order having several amends."""
    confirmed, settled = found.tables["AmendConfirmed"], found.tables["AmendSettled"]
    n = len(confirmed["g"])
    if n == 0 and len(settled["g"]) == 0:
        return
    # one int64 key per (order, amend time): the dense ranks of each, over both tables
    orders = dense_rank(np.concatenate((confirmed["order_id"], settled["order_id"])))
    times = dense_rank(np.concatenate((confirmed["amend_time_ns"], settled["amend_time_ns"])))
    keys = orders * (int(times.max()) + 1) + times
    confirmed_keys, settled_keys = keys[:n], keys[n:]
    missing = ~member(confirmed_keys, settled_keys)
    if missing.any() and consumed:
        missing &= ~_pending(found, confirmed["g"], consumed)
    out.many("amend_settled", confirmed["g"][missing], "the AmendConfirmed has no AmendSettled")
    orphan = ~member(settled_keys, confirmed_keys)
    out.many("amend_settled", settled["g"][orphan], "an AmendSettled with no AmendConfirmed")
    order = np.argsort(settled_keys, kind="stable")
    twice = order[1:][settled_keys[order][1:] == settled_keys[order][:-1]]
    out.many("amend_settled", settled["g"][twice], "a second AmendSettled of the same amend")


def check_trades(found: Gathered, consumed: Mapping[int, int], out: Findings) -> TradeFigures:
    """Every check of the module doc; ``consumed``: the accounts group's committed
    position per settlements partition (empty: everything counts as consumed)."""
    t = found.tables
    trades, legs, fills = t["Trade"], t["FillLeg"], t["FillSettled"]
    _match_sides(found, trades, legs, "fill_leg", "FillLeg", out)
    exempt = _settled_pending(found, trades, legs, consumed)
    _match_sides(found, trades, fills, "fill_settled", "FillSettled", out, exempt)
    check_fees(found, out)
    check_ends(found, consumed, out)
    pending = int(_pending(found, legs["g"], consumed).sum()) if consumed else 0
    return TradeFigures(len(trades["g"]), len(legs["g"]), len(fills["g"]), pending)
