"""Record keys and account routing (no Kafka: the partitioner is Kafka's murmur2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.market import T0
from tradex.domain import CreateAsset, CreateInstrument, InstrumentKind, OpenAccount, RegisterUser
from tradex.domain.reference import HaltInstrument, UpdateInstrumentRules
from tradex.infra.partitioner import partition_for
from tradex.log import keys
from tradex.log.keys import Routes, account_key, account_partition, instrument_key, reference_key


def test_entity_ids_are_ascii_decimal_keys() -> None:
    assert account_key(42) == instrument_key(42) == b"42"
    assert account_key(-1) == b"-1"  # system accounts


def test_reference_keys_name_the_entity() -> None:
    instrument = CreateInstrument("c", T0, 7, "BTC-USD", InstrumentKind.SPOT, "BTC", "USD",
                                  1, 1_000, 100, 500, 1_000, 2_000)  # fmt: skip
    assert reference_key(CreateAsset("a", T0, "BTC", 8)) == b"asset/BTC"
    assert reference_key(RegisterUser("u", T0, 3, "alice")) == b"user/3"
    assert reference_key(OpenAccount("o", T0, 42, 3)) == b"account/42"
    assert reference_key(instrument) == b"instrument/7"
    assert reference_key(HaltInstrument("h", T0, 7)) == b"instrument/7"
    assert reference_key(UpdateInstrumentRules("r", T0, 7, 100, 500, 1_000, 2_000)) == (
        b"instrument/7"
    )


@given(st.integers(-3, 10**12), st.integers(1, 64))
def test_routes_agree_with_the_partitioner(account_id: int, partitions: int) -> None:
    expected = partition_for(str(account_id).encode(), partitions)
    assert account_partition(account_id, partitions) == expected
    routes = Routes(partitions)
    assert routes.route(account_id) == (expected, account_key(account_id))
    assert routes.cache[account_id] == (expected, account_key(account_id))  # cached
    assert routes.route(account_id) is routes.cache[account_id]


def test_the_route_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "ROUTES_MAX", 3)
    routes = Routes(4)
    for account_id in range(10):
        routes.route(account_id)
        assert len(routes.cache) <= 3
    assert routes.route(9) == (account_partition(9, 4), b"9")
