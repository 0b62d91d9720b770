"""Figures of trades: fees cumulative per order (as the account charges them), PnL marked
to the last price, VWAP and spread (pure)."""

from __future__ import annotations

from tradex.backtest.metrics import Fees, figures
from tradex.backtest.run import Catalog
from tradex.domain.engine import Trade
from tradex.domain.orders import InstrumentRules, NewOrder
from tradex.domain.types import InstrumentKind, InstrumentStatus, OrderKind, Side, StpMode


def catalog() -> Catalog:
    c = Catalog()
    c.note(InstrumentRules(1, "X", InstrumentKind.SPOT, InstrumentStatus.TRADING, 10, 1, 0, 0,
                           100, 200, 0))  # fmt: skip
    for order_id, account, side in ((1, 1, Side.SELL), (2, 2, Side.BUY), (3, 3, Side.BUY)):
        c.note(NewOrder(order_id, account, 1, side, OrderKind.GTC, 1, 1, 0, StpMode.NONE,
                        1_000, 3_000, 0))  # fmt: skip
    return c


def trade(n: int, price: int, qty: int, taker: int) -> tuple[int, Trade]:
    return n, Trade(1, n, price, qty, Side.BUY, 1, 1, taker, taker, 0)


TRADES = [trade(1, 333, 3, 2), trade(2, 334, 1, 2), trade(3, 340, 1, 3)]


def test_fees_are_cumulative_per_order_at_its_rates_or_the_overrides() -> None:
    f = figures(TRADES, [], catalog(), Fees())
    # order 1 (maker, 1,000 ppm): notionals 9,990, 3,340, 3,400 (tick 10): fee_micro 9.99e6,
    # 13.33e6, 16.73e6 -> ceil 10, 14, 17: 10 + 4 + 3.
    assert f.accounts[1].fees == 17
    # order 2 (taker 3,000 ppm): 29.97e6 then 39.99e6 -> 30 + 10; order 3: 10.2e6 -> 11.
    assert f.accounts[2].fees == 40
    assert f.accounts[3].fees == 11
    assert f.instruments[1].fees == 17 + 40 + 11
    zero = figures(TRADES, [], catalog(), Fees(maker_ppm=0, taker_ppm=0))
    assert zero.instruments[1].fees == 0


def test_volume_vwap_and_pnl_marked_to_the_last_price() -> None:
    f = figures(TRADES, [(1, 1, 2), (2, 1, 4), (2, 2, 9)], catalog(), Fees(0, 0), frozenset({2}))
    inst = f.instruments[1]
    assert (inst.trades, inst.volume_lots, inst.last_price) == (3, 5, 340)
    assert inst.vwap_ticks == (333 * 3 + 334 + 340) / 5
    assert inst.spread_mean_ticks == 3.0
    assert f.instruments[2].spread_samples == 1
    # account 2 bought 4 lots for 9,990 + 3,340, worth 4 x 340 x 10 = 13,600 at the end
    assert f.accounts[2].pnl == 13_600 - 13_330
    assert f.accounts[1].pnl == -f.accounts[2].pnl - f.accounts[3].pnl  # zero-sum without fees
    assert f.pnl_curves[2] == [(1, 0), (2, 334 * 4 * 10 - 13_330)]
