"""What the operator's screens list, on the real stack: every asset with its scale (also one
no instrument trades), every instrument with its rules and status through halt, resume and
a rules update; admins only."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.queries.exchange import Exchange, wait_until

pytestmark = pytest.mark.integration


def _get(exchange: Exchange, path: str) -> list[dict[str, Any]]:
    with exchange.client(exchange.admin_token) as http:
        answer = http.get(path)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def _instrument(exchange: Exchange, symbol: str) -> dict[str, Any] | None:
    rows = _get(exchange, "/tradex/v1/admin/instruments")
    return next((r for r in rows if r["symbol"] == symbol), None)


def test_assets_and_instruments_with_rules_and_status(exchange: Exchange) -> None:
    code = f"A{uuid.uuid4().hex[:6].upper()}"
    exchange.admin("/tradex/v1/admin/assets", {"code": code, "scale": 3})
    assets = {a["asset"]: a["scale"] for a in _get(exchange, "/tradex/v1/admin/assets")}
    assert (assets[code], assets["USD"], assets["BTC"]) == (3, 2, 8)
    symbol = f"{code}-USD"
    exchange.admin("/tradex/v1/admin/instruments", {
        "symbol": symbol, "tickSize": "0.5", "stepSize": "0.1", "minNotional": "1",
        "priceBandBps": 500, "makerFeePpm": 100, "takerFeePpm": 200,
    })  # fmt: skip
    row = wait_until(lambda: _instrument(exchange, symbol), what="the new instrument")
    sizes = {name: Decimal(row.pop(name)) for name in ("tickSize", "stepSize", "minNotional")}
    assert sizes == {"tickSize": Decimal("0.5"), "stepSize": Decimal("0.1"), "minNotional": 1}
    assert row == {
        "symbol": symbol, "binanceSymbol": symbol.replace("-", ""),
        "instrumentId": row["instrumentId"], "base": code, "quote": "USD", "status": "TRADING",
        "priceBandBps": 500, "makerFeePpm": 100, "takerFeePpm": 200,
    }  # fmt: skip
    exchange.admin("/tradex/v1/admin/instruments/halt", {"symbol": symbol})
    halted = wait_until(lambda: (r := _instrument(exchange, symbol)) and r["status"] == "HALTED",
                        what="halted")  # fmt: skip
    assert halted
    exchange.admin("/tradex/v1/admin/instruments/resume", {"symbol": symbol})
    exchange.admin("/tradex/v1/admin/instruments/rules", {
        "symbol": symbol, "minNotional": "2.5", "priceBandBps": 100, "makerFeePpm": 0,
        "takerFeePpm": 300,
    })  # fmt: skip
    updated = wait_until(
        lambda: (r := _instrument(exchange, symbol)) and Decimal(r["minNotional"]) == Decimal("2.5") and r,
        what="the new rules",
    )  # fmt: skip
    assert (updated["status"], updated["priceBandBps"], updated["takerFeePpm"]) == (
        "TRADING",
        100,
        300,
    )
    trader = exchange.register("not-admin")
    with trader.http() as http:
        for path in ("/tradex/v1/admin/assets", "/tradex/v1/admin/instruments"):
            assert http.get(path).status_code == 403
