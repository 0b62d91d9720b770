"""Integer arithmetic of money: notional, fees, holds (see docs/design.md "Units").

All amounts are int64 minor units. Python ints do not overflow, so every result that goes
into a record is checked against ``INT64_MAX`` by the caller (``fits_int64``).

Fees are **cumulative per order**: an order keeps ``fee_micro`` = Σ notional_i · rate_i (in
millionths of a quote minor unit) and a fill is charged the increase of
``ceil(fee_micro / PPM)``. The total fee of an order is therefore exactly
``ceil(Σ notional_i · rate_i / PPM)``, never more than the fee part of a buy hold, however
many fills the order has (charging ``ceil`` per fill could exceed the hold).
"""

from __future__ import annotations

from decimal import Decimal

from tradex.domain.errors import DomainError
from tradex.domain.types import INT64_MAX, PPM, Reason


def fits_int64(value: int) -> bool:
    return -INT64_MAX - 1 <= value <= INT64_MAX


def ceil_div(numerator: int, denominator: int) -> int:
    assert denominator > 0
    assert numerator >= 0
    return -(-numerator // denominator)


def notional(price_ticks: int, qty_lots: int, tick_size: int) -> int:
    """Quote minor units moved by ``qty_lots`` at ``price_ticks``."""
    return price_ticks * qty_lots * tick_size


def base_amount(qty_lots: int, lot_size: int) -> int:
    """Base minor units moved by ``qty_lots``."""
    return qty_lots * lot_size


def fee_ceil(notional_minor: int, rate_ppm: int) -> int:
    """``ceil(notional * rate / 1e6)``: the fee of one whole amount."""
    return ceil_div(notional_minor * rate_ppm, PPM)


def fee_step(fee_micro_before: int, notional_minor: int, rate_ppm: int) -> tuple[int, int]:
    """Charge one fill: return (fee of this fill, fee_micro after it)."""
    assert fee_micro_before >= 0
    assert notional_minor >= 0
    fee_micro_after = fee_micro_before + notional_minor * rate_ppm
    fee = ceil_div(fee_micro_after, PPM) - ceil_div(fee_micro_before, PPM)
    assert 0 <= fee <= notional_minor or rate_ppm > PPM
    return fee, fee_micro_after


def buy_hold(
    price_ticks: int, qty_lots: int, tick_size: int, maker_ppm: int, taker_ppm: int
) -> int:
    """Quote held by a buy: notional at the limit (or protection) price plus the max-rate fee."""
    return buy_hold_of(notional(price_ticks, qty_lots, tick_size), maker_ppm, taker_ppm)


def buy_hold_of(notional_minor: int, maker_ppm: int, taker_ppm: int) -> int:
    """:func:`buy_hold` of an order whose notional is already known."""
    assert notional_minor >= 0
    rate_ppm = maker_ppm if maker_ppm > taker_ppm else taker_ppm
    assert rate_ppm >= 0
    return notional_minor + -(-(notional_minor * rate_ppm) // PPM)  # + fee_ceil


def sell_hold(qty_lots: int, lot_size: int) -> int:
    """Base held by a sell."""
    return base_amount(qty_lots, lot_size)


# -- the API edge: Decimal in, integers out (the only place Decimal appears) ----------------


def amount_to_minor(amount: Decimal, scale: int) -> int:
    """``1.5`` BTC at scale 8 -> 150_000_000; refuses sub-minor precision (BAD_LOT)."""
    minor = amount.scaleb(scale)
    if minor != minor.to_integral_value():
        raise DomainError(Reason.BAD_LOT, f"{amount} has more than {scale} decimal places")
    return int(minor)


def price_to_ticks(
    price: Decimal, tick_size: int, lot_size: int, base_scale: int, quote_scale: int
) -> int:
    """Quote-per-base decimal price -> ticks; refuses a price between ticks (BAD_TICK).

    A tick is ``tick_size`` quote minor units per lot of ``lot_size`` base minor units, so
    ``ticks = price * 10**quote_scale * lot_size / (10**base_scale * tick_size)``.
    """
    assert tick_size > 0
    assert lot_size > 0
    ticks = price.scaleb(quote_scale - base_scale) * lot_size / tick_size
    if ticks != ticks.to_integral_value():
        raise DomainError(Reason.BAD_TICK, f"price {price} is not a multiple of the tick")
    return int(ticks)


def qty_to_lots(qty: Decimal, lot_size: int, base_scale: int) -> int:
    """Base decimal quantity -> lots; refuses a quantity between lots (BAD_LOT)."""
    assert lot_size > 0
    minor = amount_to_minor(qty, base_scale)
    if minor % lot_size != 0:
        raise DomainError(Reason.BAD_LOT, f"quantity {qty} is not a multiple of the lot")
    return minor // lot_size
