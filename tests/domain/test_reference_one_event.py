"""Every reference decision is one event, whatever the command — the API's reference
command client completes an outcome at its first event on that ground (its tail's fetch
is parked at the broker, so the end of the log would be seen only ~100 ms later)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradex.commands.async_client import ACCOUNTS, REFERENCE
from tradex.domain import (
    ChangeUserRoles,
    CreateAsset,
    CreateInstrument,
    HaltInstrument,
    InstrumentKind,
    OpenAccount,
    ReferenceData,
    RegisterUser,
    ResumeInstrument,
    UpdateInstrumentRules,
)
from tradex.domain.account import ONE_EVENT_INPUTS

T0 = 1_700_000_000_000_000_000
ids = st.integers(min_value=-1, max_value=4)  # some unknown, some invalid
small = st.integers(min_value=-5, max_value=10_000)
codes = st.sampled_from(["BTC", "USD", "ETH", "", "btc"])
roles = st.sampled_from(["", "admin", "trader", "admin,trader", "trader,admin", "nobody"])
command_ids = st.sampled_from([f"c-{n}" for n in range(12)])  # repeats: duplicates


def _commands() -> st.SearchStrategy[object]:
    return st.one_of(
        st.builds(CreateAsset, command_ids, st.just(T0), codes, st.integers(-1, 19)),
        st.builds(
            CreateInstrument,
            command_ids,
            st.just(T0),
            ids,
            st.sampled_from(["BTC-USD", "X"]),
            st.just(InstrumentKind.SPOT),
            codes,
            codes,
            small,
            small,
            small,
            small,
            small,
            small,
        ),
        st.builds(UpdateInstrumentRules, command_ids, st.just(T0), ids, small, small, small, small),
        st.builds(HaltInstrument, command_ids, st.just(T0), ids),
        st.builds(ResumeInstrument, command_ids, st.just(T0), ids),
        st.builds(
            RegisterUser, command_ids, st.just(T0), ids, st.sampled_from(["ada", "", "b"]), roles
        ),
        st.builds(ChangeUserRoles, command_ids, st.just(T0), ids, roles, ids),
        st.builds(OpenAccount, command_ids, st.just(T0), ids, ids),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_commands(), min_size=1, max_size=30))
def test_every_reference_decision_is_one_event(commands: list[object]) -> None:
    ref = ReferenceData()
    for command in commands:
        decision = ref.decide(command)  # type: ignore[arg-type]
        assert len(decision.events) == 1, (command, decision)
        assert REFERENCE.one_event(command)


def test_the_account_route_waits_for_the_end_only_for_multi_event_commands() -> None:
    from tradex.domain import CancelAllOrders, PlaceOrder

    assert PlaceOrder in ONE_EVENT_INPUTS and CancelAllOrders not in ONE_EVENT_INPUTS
    assert ACCOUNTS.one_event(PlaceOrder.__new__(PlaceOrder, *([0] * len(PlaceOrder._fields))))
    assert not ACCOUNTS.one_event(
        CancelAllOrders.__new__(CancelAllOrders, *([0] * len(CancelAllOrders._fields)))
    )
    assert REFERENCE.fetch_wait_ms > ACCOUNTS.fetch_wait_ms  # parked: nothing waits for the end
