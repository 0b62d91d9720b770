"""Shared reference data for the domain tests: BTC (scale 8), USD (scale 2), BTC-USD."""

from __future__ import annotations

import pytest

from tests.market import reference_commands
from tradex.domain import AccountBook, ReferenceData


def make_reference(accounts: tuple[int, ...] = (1, 2, 3)) -> ReferenceData:
    ref = ReferenceData()
    commands = reference_commands(accounts)
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
