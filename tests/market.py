"""The test market, pure domain: BTC (scale 8), USD (scale 2), spot BTC-USD, one user.

Shared by the domain tests and the Kafka tests (tests/commands/support.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradex.domain import CreateAsset, CreateInstrument, InstrumentKind, OpenAccount, RegisterUser

T0 = 1_700_000_000_000_000_000
BTC_USD = 1
TICK = 1  # 1 cent per lot per tick
LOT = 1_000  # 0.00001 BTC per lot
MAKER_PPM = 1_000  # 0.1 %
TAKER_PPM = 2_000  # 0.2 %
USER_ID = 7


def reference_commands(accounts: Sequence[int]) -> list[Any]:
    """The reference commands of the market, then one account per id for the user."""
    commands: list[Any] = [
        CreateAsset("a-btc", T0, "BTC", 8),
        CreateAsset("a-usd", T0, "USD", 2),
        CreateInstrument(
            "i-btc-usd",
            T0,
            BTC_USD,
            "BTC-USD",
            InstrumentKind.SPOT,
            "BTC",
            "USD",
            TICK,
            LOT,
            100,
            500,
            MAKER_PPM,
            TAKER_PPM,
        ),
        RegisterUser("u-7", T0, USER_ID, "alice"),
    ]
    commands += [OpenAccount(f"open-{a}", T0, a, USER_ID) for a in accounts]
    return commands
