"""Shared reference data for the domain tests: BTC (scale 8), USD (scale 2), BTC-USD."""

from __future__ import annotations

import pytest

from tradex.domain import (
    AccountBook,
    CreateAsset,
    CreateInstrument,
    InstrumentKind,
    OpenAccount,
    ReferenceData,
    RegisterUser,
)

BTC_USD = 1
T0 = 1_700_000_000_000_000_000
TICK = 1  # 1 cent per lot per tick
LOT = 1_000  # 0.00001 BTC per lot
MAKER_PPM = 1_000  # 0.1 %
TAKER_PPM = 2_000  # 0.2 %


def make_reference(accounts: tuple[int, ...] = (1, 2, 3)) -> ReferenceData:
    ref = ReferenceData()
    commands = [
        CreateAsset("a1", T0, "BTC", 8),
        CreateAsset("a2", T0, "USD", 2),
        CreateInstrument(
            "i1",
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
        RegisterUser("u1", T0, 7, "alice"),
    ]
    commands += [OpenAccount(f"open{a}", T0, a, 7) for a in accounts]
    for command in commands:
        decision = ref.decide(command)
        assert type(decision.events[0]).__name__ != "ReferenceCommandRejected", decision
    return ref


@pytest.fixture
def reference() -> ReferenceData:
    return make_reference()


@pytest.fixture
def book(reference: ReferenceData) -> AccountBook:
    return AccountBook(reference)
