"""Decimals at the edge <-> int64 ticks, lots and minor units (no I/O)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradex.queries.errors import ApiError
from tradex.queries.market_data import symbol_info
from tradex.queries.markets import Market, amount_minor, binance_symbol, decimals_of, fmt
from tradex.queries.orders import funds_detail

# BTC-USD of the demo: a lot is 0.001 BTC, a tick 1 cent per lot (10 USD per BTC)
BTC_USD = Market(1, "BTC-USD", "BTCUSD", "BTC", "USD", 8, 2, 1, 100_000, 1_000, 0, 1_000,
                 2_000, "TRADING")  # fmt: skip


def test_steps_and_formats() -> None:
    assert BTC_USD.price_step == 10
    assert BTC_USD.qty_step == Fraction(1, 1000)
    assert (BTC_USD.fmt_price(6_001), BTC_USD.fmt_qty(25)) == ("60010", "0.025")
    assert BTC_USD.fmt_quote(123_456) == "1234.56"
    assert BTC_USD.fmt_notional(6_000 * 30) == "1800.00"
    assert (fmt(Fraction(-5, 2), 2), fmt(0, 3), fmt(7, 0)) == ("-2.50", "0.000", "7")
    assert decimals_of(Fraction(1, 8)) == 3
    assert binance_symbol("btc-usd") == "BTCUSD"


def test_values_off_the_grid_are_refused_with_the_field_named() -> None:
    assert (BTC_USD.ticks("60010"), BTC_USD.lots("0.025")) == (6_001, 25)
    for call, field in (
        (lambda: BTC_USD.ticks("60005"), "price"),
        (lambda: BTC_USD.ticks("0"), "price"),
        (lambda: BTC_USD.ticks("1e5"), "price"),
        (lambda: BTC_USD.lots("0.0005", "quantity"), "quantity"),
        (lambda: BTC_USD.check_notional(1, 1), "quantity"),  # 0.01 USD < 10 USD
        (lambda: amount_minor("0.001", 2, "amount"), "amount"),
        (lambda: amount_minor("0", 2, "amount"), "amount"),
    ):
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.field == field
        assert caught.value.status == (422 if field == "amount" else 400)  # amounts: TradeX
    with pytest.raises(ApiError) as tradex:
        BTC_USD.ticks("60005", tradex=True)
    assert tradex.value.status == 422


@given(st.integers(1, (1 << 53) - 1), st.integers(1, BTC_USD.lots_max))
def test_wire_and_int64_round_trip(ticks: int, lots: int) -> None:
    assert BTC_USD.ticks(BTC_USD.fmt_price(ticks)) == ticks
    assert BTC_USD.lots(BTC_USD.fmt_qty(lots)) == lots


@given(st.integers(1, 10**6), st.integers(1, 10**9), st.integers(0, 12), st.integers(0, 12),
       st.integers(-(1 << 62), 1 << 62))  # fmt: skip
def test_integer_formats_equal_the_exact_fraction_ones(
    tick: int, lot: int, base_scale: int, quote_scale: int, n: int
) -> None:
    """The formats of the hot path (integers, steps cached per instrument) write what the
    obvious exact arithmetic writes, for any instrument's steps and scales."""
    market = BTC_USD._replace(tick_size=tick, lot_size=lot, base_scale=base_scale,
                              quote_scale=quote_scale)  # fmt: skip
    price_step = Fraction(tick * 10**base_scale, lot * 10**quote_scale)
    qty_step = Fraction(lot, 10**base_scale)
    assert market.fmt_price(n) == fmt(n * price_step, decimals_of(price_step))
    assert market.fmt_qty(n) == fmt(n * qty_step, decimals_of(qty_step))
    assert market.fmt_quote(n) == fmt(Fraction(n, 10**quote_scale), quote_scale)
    assert market.fmt_amount("BTC", n) == fmt(Fraction(n, 10**base_scale), base_scale)


def test_symbol_info_tells_a_market_orders_protection() -> None:
    """The console shows a MARKET order's protection price before sending: exchangeInfo
    gives the band and the protection the API applies (the band, 5 % without one)."""
    info = symbol_info(BTC_USD)
    assert (info["tradexPriceBandBps"], info["tradexMarketProtectionBps"]) == (0, 500)
    banded = symbol_info(BTC_USD._replace(price_band_bps=250))
    assert (banded["tradexPriceBandBps"], banded["tradexMarketProtectionBps"]) == (250, 250)
    assert BTC_USD._replace(price_band_bps=250).protection_bps == 250


def test_insufficient_funds_reads_in_the_assets_decimals() -> None:
    """The processor's detail is in minor units; a person reads the asset's decimals."""
    assert funds_detail("100000 USD available, 901800 needed", BTC_USD) == (
        "1000.00 USD available, 9018.00 USD needed"
    )
    assert funds_detail("5 BTC available, 100000 more needed", BTC_USD) == (
        "0.00000005 BTC available, 0.00100000 BTC more needed"
    )
    assert funds_detail("7 ETH available, 9 needed", BTC_USD) == "7 ETH available, 9 needed"
    assert funds_detail("instrument halted", BTC_USD) == "instrument halted"
