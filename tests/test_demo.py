"""End to end through the real pipeline: reference → accounts → matcher → settlement.

The demo session runs the three stages as separate processes on a fresh topic prefix; the
balances below are worked out by hand from the session's orders and fee rates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tradex import demo
from tradex.infra.settings import Settings

pytestmark = pytest.mark.integration


def test_demo_session_settles_every_fill_and_passes_the_audit(
    settings: Settings, tmp_path: Path
) -> None:
    result = demo.run(settings, tmp_path)

    assert result.report.ok, result.report.text()
    assert result.report.violations == []
    assert result.report.trades is not None and result.report.trades.trades == 2
    assert [
        (t["qty"], t["price"], t["maker_account_id"], t["taker_account_id"]) for t in result.trades
    ] == [
        (5, 6_000, demo.BOB, demo.ALICE),
        (2, 6_010, demo.BOB, demo.ALICE),
    ]
    notional = 5 * 6_000 + 2 * 6_010  # cents: 1 tick = 1 cent per lot
    taker_fee = -(-notional * 2_000 // 1_000_000)  # ceil, 0.2%
    maker_fee = -(-notional * 1_000 // 1_000_000)  # ceil, 0.1%
    withdrawal_held = 5_000_00
    assert result.balances[demo.ALICE] == {
        "BTC": (7 * demo.LOT_SATS, 0),
        "USD": (100_000_000 - notional - taker_fee - withdrawal_held, withdrawal_held),
    }
    assert result.balances[demo.BOB] == {
        "BTC": (1_000_000_000 - 7 * demo.LOT_SATS, 0),
        "USD": (notional - maker_fee, 0),
    }
    assert result.ok
