"""Records on ``order-requests`` (key: instrument_id), read by the matcher.

Account processors write ``NewOrder`` and ``CancelOrderRequest``; the reference processor
writes ``InstrumentRules`` (in band, so the matcher's output is a function of this topic
alone). ``AmendOrder`` is defined for the matcher's amend path; the account side does not
emit it yet (an amend that raises the hold needs a hold-change event first).
"""

from __future__ import annotations

from typing import NamedTuple

from tradex.domain.errors import InvalidRecord
from tradex.domain.types import (
    INSTRUMENT_KINDS,
    INSTRUMENT_STATUSES,
    INT64_MAX,
    ORDER_KINDS,
    SIDES,
    STP_MODES,
    InstrumentKind,
    InstrumentStatus,
    OrderKind,
    Side,
    StpMode,
)


class NewOrder(NamedTuple):
    """An order accepted by its account (funds held). MARKET: ``price`` is the protection
    price — the matcher never fills a market buy above it nor a market sell below it."""

    order_id: int
    account_id: int
    instrument_id: int
    side: Side
    kind: OrderKind
    price: int  # ticks
    qty: int  # lots
    protection_ticks: int  # extra matcher-side protection from the reference price; 0: none
    stp_mode: StpMode
    maker_fee_ppm: int  # the rates snapshotted at acceptance (the account charges these)
    taker_fee_ppm: int
    event_time_ns: int

    def validate(self) -> None:
        if self.side not in SIDES:
            raise InvalidRecord(f"unknown side {self.side!r}")
        if self.kind not in ORDER_KINDS:
            raise InvalidRecord(f"unknown order kind {self.kind!r}")
        if self.stp_mode not in STP_MODES:
            raise InvalidRecord(f"unknown stp mode {self.stp_mode!r}")
        if not 0 < self.price <= INT64_MAX:
            raise InvalidRecord(f"price must be > 0 ticks, got {self.price}")
        if not 0 < self.qty <= INT64_MAX:
            raise InvalidRecord(f"qty must be > 0 lots, got {self.qty}")
        if self.protection_ticks < 0:
            raise InvalidRecord(f"protection_ticks must be >= 0, got {self.protection_ticks}")


class CancelOrderRequest(NamedTuple):
    order_id: int
    account_id: int
    instrument_id: int
    event_time_ns: int

    def validate(self) -> None:
        if self.order_id < 0:
            raise InvalidRecord(f"order_id must be >= 0, got {self.order_id}")


class AmendOrder(NamedTuple):
    """Reduce quantity (keeps priority) or move price (loses priority); 0 keeps a field."""

    order_id: int
    account_id: int
    instrument_id: int
    new_price: int
    new_qty: int
    event_time_ns: int
    # the order's own: an amend that moves it across the book matches it with it
    stp_mode: StpMode = StpMode.NONE

    def validate(self) -> None:
        if self.stp_mode not in STP_MODES:
            raise InvalidRecord(f"unknown stp_mode {self.stp_mode!r}")
        if self.new_price < 0:
            raise InvalidRecord(f"new_price must be >= 0, got {self.new_price}")
        if self.new_qty < 0:
            raise InvalidRecord(f"new_qty must be >= 0, got {self.new_qty}")


class InstrumentRules(NamedTuple):
    instrument_id: int
    symbol: str
    kind: InstrumentKind
    status: InstrumentStatus
    tick_size: int
    lot_size: int
    min_notional: int
    price_band_bps: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    event_time_ns: int

    def validate(self) -> None:
        if self.kind not in INSTRUMENT_KINDS:
            raise InvalidRecord(f"unknown instrument kind {self.kind!r}")
        if self.status not in INSTRUMENT_STATUSES:
            raise InvalidRecord(f"unknown instrument status {self.status!r}")
        if self.tick_size <= 0:
            raise InvalidRecord(f"tick_size must be > 0, got {self.tick_size}")
        if self.lot_size <= 0:
            raise InvalidRecord(f"lot_size must be > 0, got {self.lot_size}")


OrderRequest = NewOrder | CancelOrderRequest | AmendOrder | InstrumentRules
