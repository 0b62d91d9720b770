"""Instruments at the API edge: Binance symbols, and decimals <-> int64 ticks, lots, units.

Inside TradeX a price is ticks, a quantity lots, an amount minor units (docs/design.md);
on the wire they are decimal strings. One tick of an instrument is ``tick_size`` quote
minor units per lot, so the decimal price step (Binance's ``tickSize``) is
``tick_size · 10^base_scale / (lot_size · 10^quote_scale)`` quote per base unit, and the
quantity step (``stepSize``) ``lot_size / 10^base_scale``. Conversions are exact
(:class:`fractions.Fraction`); a value off the grid is refused with the field named.

Symbols are Binance style everywhere on the wire: ``BTCUSD`` for ``BTC-USD``.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, NamedTuple

from tradex.domain.types import INT64_MAX
from tradex.queries.errors import (
    BAD_PRECISION,
    BAD_SYMBOL,
    FILTER_FAILURE,
    INVALID_PARAMETER,
    MANDATORY_PARAM,
    param_error,
)

PRICE_TICKS_MAX = (1 << 53) - 1  # the Redis book keeps prices exact below this
DECIMALS_MAX = 18
DECIMAL_TEXT = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,18})?$")
CATALOG_TTL_S = 1.0  # instruments are read again after this long (or on an unknown symbol)
MARKET_PROTECTION_BPS_DEFAULT = 500  # a MARKET order's protection without a band: 5 %


def binance_symbol(symbol: str) -> str:
    return symbol.replace("-", "").replace("/", "").upper()


def decimals_of(step: Fraction) -> int:
    """The fewest decimals that write ``step`` (and every multiple of it) exactly."""
    for decimals in range(DECIMALS_MAX + 1):
        if (step * 10**decimals).denominator == 1:
            return decimals
    return DECIMALS_MAX


class Steps(NamedTuple):
    """An instrument's price and quantity steps, the decimals that write them, and one
    step in units of the last decimal (None when those decimals cannot write it exactly)."""

    price: Fraction
    qty: Fraction
    price_decimals: int
    qty_decimals: int
    price_unit: int | None
    qty_unit: int | None


@functools.lru_cache(maxsize=1_024)
def steps_of(tick_size: int, lot_size: int, base_scale: int, quote_scale: int) -> Steps:
    price = Fraction(tick_size * 10**base_scale, lot_size * 10**quote_scale)
    qty = Fraction(lot_size, 10**base_scale)
    price_decimals, qty_decimals = decimals_of(price), decimals_of(qty)
    return Steps(price, qty, price_decimals, qty_decimals,
                 _unit(price, price_decimals), _unit(qty, qty_decimals))  # fmt: skip


def _unit(step: Fraction, decimals: int) -> int | None:
    scaled = step * 10**decimals
    return scaled.numerator if scaled.denominator == 1 else None


def fmt(value: Fraction | int, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals (rounded down when it has more)."""
    scaled = Fraction(value) * 10**decimals
    return fmt_units(scaled.numerator // scaled.denominator, decimals)


def fmt_units(units: int, decimals: int) -> str:
    """``units`` of the ``decimals``-th decimal as a decimal string: (12345, 2) -> 123.45."""
    sign, units = ("-", -units) if units < 0 else ("", units)
    if decimals == 0:
        return f"{sign}{units}"
    text = str(units).rjust(decimals + 1, "0")
    return f"{sign}{text[:-decimals]}.{text[-decimals:]}"


def parse_decimal(text: str, field: str, tradex: bool = False) -> Fraction:
    """A non-negative decimal string (at most 18 decimals) as an exact fraction."""
    if not isinstance(text, str) or not DECIMAL_TEXT.match(text):
        raise param_error(MANDATORY_PARAM, field,
                          f"Parameter '{field}' must be a decimal string like '0.01', got {text!r}.",
                          tradex)  # fmt: skip
    try:
        return Fraction(Decimal(text))
    except InvalidOperation as exc:  # the pattern above admits only valid decimals
        raise AssertionError(text) from exc


class Market(NamedTuple):
    instrument_id: int
    symbol: str  # TradeX's, "BTC-USD"
    binance: str  # on the wire, "BTCUSD"
    base: str
    quote: str
    base_scale: int
    quote_scale: int
    tick_size: int  # quote minor units per lot per tick
    lot_size: int  # base minor units per lot
    min_notional: int  # quote minor units
    price_band_bps: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    status: str  # TRADING | HALTED

    @property
    def steps(self) -> Steps:
        return steps_of(self.tick_size, self.lot_size, self.base_scale, self.quote_scale)

    @property
    def price_step(self) -> Fraction:
        return self.steps.price

    @property
    def qty_step(self) -> Fraction:
        return self.steps.qty

    @property
    def price_decimals(self) -> int:
        return self.steps.price_decimals

    @property
    def qty_decimals(self) -> int:
        return self.steps.qty_decimals

    # -- wire -> int64 ----------------------------------------------------------------------

    def ticks(self, text: str, field: str = "price", tradex: bool = False) -> int:
        value = parse_decimal(text, field, tradex)
        ticks = value / self.price_step
        if ticks.denominator != 1 or ticks <= 0:
            raise param_error(FILTER_FAILURE, field,
                f"Filter failure: PRICE_FILTER ({field} {text} is not a positive multiple of "
                f"tickSize {self.fmt_price(1)})", tradex)  # fmt: skip
        if ticks > PRICE_TICKS_MAX:
            raise param_error(FILTER_FAILURE, field,
                f"Filter failure: PRICE_FILTER ({field} {text} is above maxPrice "
                f"{self.fmt_price(PRICE_TICKS_MAX)})", tradex)  # fmt: skip
        return int(ticks)

    def lots(self, text: str, field: str = "quantity", tradex: bool = False) -> int:
        value = parse_decimal(text, field, tradex)
        lots = value / self.qty_step
        if lots.denominator != 1 or lots <= 0:
            raise param_error(FILTER_FAILURE, field,
                f"Filter failure: LOT_SIZE ({field} {text} is not a positive multiple of "
                f"stepSize {self.fmt_qty(1)})", tradex)  # fmt: skip
        if lots > self.lots_max:
            raise param_error(FILTER_FAILURE, field,
                f"Filter failure: LOT_SIZE ({field} {text} is above maxQty "
                f"{self.fmt_qty(self.lots_max)})", tradex)  # fmt: skip
        return int(lots)

    @property
    def protection_bps(self) -> int:
        """How far beyond the best opposite price a MARKET order without a price may fill:
        the instrument's price band, or 5 % without one."""
        assert self.price_band_bps >= 0
        return self.price_band_bps or MARKET_PROTECTION_BPS_DEFAULT

    @property
    def lots_max(self) -> int:
        return INT64_MAX // self.lot_size

    def check_notional(self, ticks: int, lots: int, tradex: bool = False) -> None:
        notional = ticks * lots * self.tick_size
        if notional < self.min_notional:
            raise param_error(FILTER_FAILURE, "quantity",
                f"Filter failure: NOTIONAL (price × quantity = {self.fmt_quote(notional)} "
                f"{self.quote} is below minNotional {self.fmt_quote(self.min_notional)})",
                tradex)  # fmt: skip
        if notional > INT64_MAX:
            raise param_error(FILTER_FAILURE, "quantity",
                "Filter failure: NOTIONAL (price × quantity is above maxNotional "
                f"{self.fmt_quote(INT64_MAX)})", tradex)  # fmt: skip

    # -- int64 -> wire ----------------------------------------------------------------------

    def fmt_price(self, ticks: int) -> str:
        steps = self.steps
        if steps.price_unit is None:
            return fmt(ticks * steps.price, steps.price_decimals)
        return fmt_units(ticks * steps.price_unit, steps.price_decimals)

    def fmt_qty(self, lots: int) -> str:
        steps = self.steps
        if steps.qty_unit is None:
            return fmt(lots * steps.qty, steps.qty_decimals)
        return fmt_units(lots * steps.qty_unit, steps.qty_decimals)

    def fmt_quote(self, minor: int) -> str:
        """Quote minor units (notional, fees) as a decimal of the quote asset."""
        return fmt_units(minor, self.quote_scale)

    def fmt_notional(self, ticks_lots: int) -> str:
        """Σ price·qty in ticks·lots (the read models' quote volumes) in the quote asset."""
        return self.fmt_quote(ticks_lots * self.tick_size)

    def fmt_amount(self, asset: str, minor: int) -> str:
        scale = self.base_scale if asset == self.base else self.quote_scale
        assert asset in (self.base, self.quote), (asset, self.symbol)
        return fmt_units(minor, scale)


def market_of(row: dict[str, Any]) -> Market:
    """A :class:`Market` from a reference row of the Redis read model (with scales)."""
    return Market(
        int(row["instrument_id"]), str(row["symbol"]), binance_symbol(str(row["symbol"])),
        str(row["base"]), str(row["quote"]), int(row["base_scale"]), int(row["quote_scale"]),
        int(row["tick_size"]), int(row["lot_size"]), int(row["min_notional"]),
        int(row["price_band_bps"]), int(row["maker_fee_ppm"]), int(row["taker_fee_ppm"]),
        str(row["status"]),
    )  # fmt: skip


class Catalog:
    """Instruments and asset scales, read again after :data:`CATALOG_TTL_S` (or when a
    symbol is unknown: a new instrument is served as soon as the read model has it)."""

    def __init__(
        self,
        instruments: Callable[[], Awaitable[dict[int, dict[str, Any]]]],
        assets: Callable[[], Awaitable[dict[str, int]]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._instruments = instruments
        self._assets = assets
        self._clock = clock
        self.read_at = -CATALOG_TTL_S
        self._reading: asyncio.Future[None] | None = None
        self.by_id: dict[int, Market] = {}
        self.by_symbol: dict[str, Market] = {}
        self.scales: dict[str, int] = {}

    async def refresh(self, force: bool = False) -> None:
        now = self._clock()
        if force:  # an unknown name: read now, not with a read begun before it
            await self._read(now)
            return
        if now - self.read_at < CATALOG_TTL_S:
            return
        if self._reading is None:  # one read for every request that finds the catalog old
            self._reading = asyncio.ensure_future(self._read(now))
            self._reading.add_done_callback(self._read_done)
        await asyncio.shield(self._reading)

    def _read_done(self, _done: asyncio.Future[None]) -> None:
        self._reading = None

    async def _read(self, now: float) -> None:
        rows = await self._instruments()
        markets = [market_of(row) for row in rows.values() if row.get("base_scale") is not None]
        by_symbol = {m.binance: m for m in markets}
        assert len(by_symbol) == len(markets), "two instruments with one Binance symbol"
        self.by_id = {m.instrument_id: m for m in markets}
        self.by_symbol = by_symbol
        self.scales = await self._assets()
        self.read_at = now

    async def markets(self) -> list[Market]:
        await self.refresh()
        return sorted(self.by_id.values(), key=lambda m: m.instrument_id)

    async def market(self, symbol: str, field: str = "symbol", tradex: bool = False) -> Market:
        await self.refresh()
        key = binance_symbol(symbol)
        found = self.by_symbol.get(key)
        if found is None:
            await self.refresh(force=True)
            found = self.by_symbol.get(key)
        if found is None:
            raise param_error(BAD_SYMBOL, field, f"Invalid symbol {symbol!r}.", tradex)
        return found

    async def by_instrument(self, instrument_id: int) -> Market | None:
        await self.refresh()
        found = self.by_id.get(instrument_id)
        if found is None:
            await self.refresh(force=True)
            found = self.by_id.get(instrument_id)
        return found

    async def scale(self, asset: str, field: str = "asset", tradex: bool = True) -> int:
        await self.refresh()
        if asset not in self.scales:
            await self.refresh(force=True)
        if asset not in self.scales:
            raise param_error(INVALID_PARAMETER, field, f"Unknown asset {asset!r}.", tradex)
        return self.scales[asset]


def amount_minor(text: str, scale: int, field: str, tradex: bool = True) -> int:
    """A decimal amount of an asset with ``scale`` decimals, in minor units (> 0)."""
    value = parse_decimal(text, field, tradex) * 10**scale
    if value.denominator != 1 or value <= 0 or value > INT64_MAX:
        raise param_error(BAD_PRECISION, field,
            f"Parameter '{field}' must be > 0 with at most {scale} decimals, got {text}.",
            tradex)  # fmt: skip
    return int(value)


def fmt_amount(minor: int, scale: int) -> str:
    return fmt_units(minor, scale)
