"""Figures of a run's trades: per instrument (trades, volume, VWAP, spread) and per account
(fees, position, PnL marked to the last price). Pure, integers throughout (ticks, lots,
quote minor units); VWAP and mean spread are the only floats, for display.

Fees are recomputed here as the account processor charges them — cumulative per order
(:func:`tradex.domain.units.fee_step`) at the order's maker or taker rate — with the
order's own rates (what history charged) or with the rates a backtest overrides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tradex.domain.engine import Trade
from tradex.domain.types import Side
from tradex.domain.units import fee_step, notional

from .run import Catalog


@dataclass(frozen=True)
class Fees:
    """Rates that replace every order's (None: the order's own)."""

    maker_ppm: int | None = None
    taker_ppm: int | None = None


@dataclass
class InstrumentFigures:
    instrument_id: int
    trades: int = 0
    volume_lots: int = 0
    notional: int = 0  # quote minor units
    price_x_qty: int = 0  # ticks x lots, for the VWAP
    last_price: int = 0
    fees: int = 0
    spread_sum: int = 0  # ticks, over the samples
    spread_samples: int = 0

    @property
    def vwap_ticks(self) -> float:
        return self.price_x_qty / self.volume_lots if self.volume_lots else 0.0

    @property
    def spread_mean_ticks(self) -> float:
        return self.spread_sum / self.spread_samples if self.spread_samples else 0.0


@dataclass
class AccountFigures:
    account_id: int
    bought_lots: int = 0
    sold_lots: int = 0
    cash: int = 0  # quote minor units: sold − bought notional − fees
    fees: int = 0
    positions: dict[int, int] = field(default_factory=dict)  # instrument -> lots
    pnl: int = 0  # cash + positions at the last prices (quote minor units)


@dataclass
class Figures:
    instruments: dict[int, InstrumentFigures]
    accounts: dict[int, AccountFigures]
    pnl_curves: dict[int, list[tuple[int, int]]]  # account -> (position, pnl) after trades


def figures(
    trades: Iterable[tuple[int, Any]],
    spreads: Iterable[tuple[int, int, int]],
    catalog: Catalog,
    fees: Fees,
    curve_accounts: frozenset[int] = frozenset(),
) -> Figures:
    """The figures of ``trades`` ((position, Trade) in order; other events are skipped)."""
    instruments: dict[int, InstrumentFigures] = {}
    accounts: dict[int, AccountFigures] = {}
    fee_micro: dict[int, int] = {}  # order -> cumulative fee in millionths
    last: dict[int, int] = {}
    curves: dict[int, list[tuple[int, int]]] = {a: [] for a in sorted(curve_accounts)}
    for position, t in trades:
        if not isinstance(t, Trade):
            continue
        rules = catalog.rules.get(t.instrument_id)
        tick = rules.tick_size if rules is not None else 1
        n = notional(t.price, t.qty, tick)
        inst = instruments.get(t.instrument_id)
        if inst is None:
            inst = instruments[t.instrument_id] = InstrumentFigures(t.instrument_id)
        inst.trades += 1
        inst.volume_lots += t.qty
        inst.notional += n
        inst.price_x_qty += t.price * t.qty
        inst.last_price = last[t.instrument_id] = t.price
        maker_side = Side.SELL if t.taker_side == Side.BUY else Side.BUY
        for order_id, account_id, side, maker in (
            (t.maker_order_id, t.maker_account_id, maker_side, True),
            (t.taker_order_id, t.taker_account_id, t.taker_side, False),
        ):
            rate = _rate(catalog, fees, order_id, maker)
            fee, fee_micro[order_id] = fee_step(fee_micro.get(order_id, 0), n, rate)
            inst.fees += fee
            acc = accounts.get(account_id)
            if acc is None:
                acc = accounts[account_id] = AccountFigures(account_id)
            acc.fees += fee
            if side == Side.BUY:
                acc.bought_lots += t.qty
                acc.cash -= n + fee
                acc.positions[t.instrument_id] = acc.positions.get(t.instrument_id, 0) + t.qty
            else:
                acc.sold_lots += t.qty
                acc.cash += n - fee
                acc.positions[t.instrument_id] = acc.positions.get(t.instrument_id, 0) - t.qty
            if account_id in curves:
                curves[account_id].append((position, _marked(acc, last, catalog)))
    for position_, instrument_id, spread in spreads:
        assert spread > 0, (position_, spread)
        inst = instruments.get(instrument_id)
        if inst is None:
            inst = instruments[instrument_id] = InstrumentFigures(instrument_id)
        inst.spread_sum += spread
        inst.spread_samples += 1
    for acc in accounts.values():
        acc.pnl = _marked(acc, last, catalog)
    return Figures(dict(sorted(instruments.items())), dict(sorted(accounts.items())), curves)


def _rate(catalog: Catalog, fees: Fees, order_id: int, maker: bool) -> int:
    override = fees.maker_ppm if maker else fees.taker_ppm
    if override is not None:
        return override
    order = catalog.orders.get(order_id)
    if order is None:  # an order the inputs never showed (not in this log)
        return 0
    return order[2] if maker else order[3]


def _marked(acc: AccountFigures, last: dict[int, int], catalog: Catalog) -> int:
    """Cash plus every position at its instrument's last trade price."""
    value = acc.cash
    for instrument_id, lots in acc.positions.items():
        rules = catalog.rules.get(instrument_id)
        tick = rules.tick_size if rules is not None else 1
        value += notional(last.get(instrument_id, 0), lots, tick)
    return value
