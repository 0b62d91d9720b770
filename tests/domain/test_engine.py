"""Engine records (tradex.domain.engine): what validate() refuses, and what it lets through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.schemas.samples import samples
from tradex import domain as d
from tradex.domain.errors import InvalidRecord

ENGINE_SAMPLES = {type(s): s for s in samples() if type(s) in d.ENGINE_EVENT_TYPES}

BAD: list[tuple[type, dict[str, Any], str]] = [
    (d.Accepted, {"order_id": 0}, "order_id"),
    (d.Accepted, {"side": "HOLD"}, "side"),
    (d.Accepted, {"kind": "LIMIT"}, "order kind"),
    (d.Accepted, {"price": 0}, "price"),
    (d.Accepted, {"qty": -1}, "qty"),
    (d.Rested, {"price": -5}, "price"),
    (d.Rested, {"qty": 0}, "qty"),
    (d.Trade, {"trade_id": 0}, "trade_id"),
    (d.Trade, {"qty": 0}, "qty"),
    (d.Trade, {"taker_side": "X"}, "side"),
    (d.Trade, {"maker_order_id": -1}, "maker_order_id"),
    (d.Trade, {"taker_order_id": 0}, "taker_order_id"),
    (d.Filled, {"filled_qty": 0}, "filled_qty"),
    (d.Cancelled, {"remaining_qty": -1}, "remaining_qty"),
    (d.Cancelled, {"reason": "BORED"}, "reason"),
    (d.Expired, {"order_id": 0}, "order_id"),
    (d.Rejected, {"reason": "NOPE"}, "reason"),
    (d.AmendApplied, {"new_qty": 0}, "new_qty"),
    (d.AmendApplied, {"new_price": 0}, "new_price"),
    (d.L2Delta, {"qty": -1}, "qty"),
    (d.L2Delta, {"book_seq": -1}, "book_seq"),
    (d.L2Delta, {"price": 0}, "price"),
    (d.RulesApplied, {"price_band_bps": -1}, "price_band_bps"),
]


def test_every_engine_type_has_a_valid_sample() -> None:
    assert set(ENGINE_SAMPLES) == set(d.ENGINE_EVENT_TYPES)
    for sample in ENGINE_SAMPLES.values():
        sample.validate()
        assert sample._fields[-1] == "event_time_ns"


@pytest.mark.parametrize(("cls", "change", "message"), BAD, ids=lambda x: str(x))
def test_validate_refuses_what_the_engine_never_writes(
    cls: type, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRecord, match=message):
        ENGINE_SAMPLES[cls]._replace(**change).validate()


def test_old_records_and_rejections_of_bad_ids_are_valid() -> None:
    """0 is what a record written before event_time_ns / book_seq existed decodes to; a
    rejection names the order id as requested, even 0 or negative."""
    ENGINE_SAMPLES[d.L2Delta]._replace(book_seq=0, event_time_ns=0, qty=0).validate()
    ENGINE_SAMPLES[d.Rejected]._replace(order_id=-3, request="").validate()
    ENGINE_SAMPLES[d.Cancelled]._replace(remaining_qty=0, detail="").validate()
