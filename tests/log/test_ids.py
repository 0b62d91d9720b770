"""Event ids: every fast builder equals the layout of tradex.domain.ids, and the bytes are
the ones the stages wrote before the builders moved here (golden values)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradex.domain import Deposit
from tradex.domain.ids import (
    OFFSET_MAX,
    OUTPUT_INDEX_MAX,
    PARTITION_MAX,
    SOURCE_MAX,
    event_id,
    event_id_int,
    uuid_text,
)
from tradex.domain.reference import CreateAsset
from tradex.log.ids import (
    DEAD_LETTER_OUTPUT_INDEX,
    MATCHER_SOURCES,
    OUTPUTS_PER_INPUT_MAX,
    EventIds,
    EventSource,
    OutputOverflow,
    command_event_id,
    dead_letter_event_id,
    event_id_base,
    format_event_id,
    matcher_event_id,
)

UNIX_NS_MAX = ((1 << 48) - 1) * 1_000_000
T0 = 1_700_000_000_000_000_000


@given(st.integers(0, (1 << 128) - 1))
def test_uuid_text_is_the_canonical_form(value: int) -> None:
    assert uuid_text(value) == str(uuid.UUID(int=value))


def test_uuid_text_refuses_what_is_not_128_bits() -> None:
    with pytest.raises(AssertionError):
        uuid_text(1 << 128)
    with pytest.raises(AssertionError):
        uuid_text(-1)


def test_the_sources_are_the_ones_on_the_log() -> None:
    assert [(s.name, int(s)) for s in EventSource] == [
        ("ACCOUNT_COMMANDS", 0), ("SETTLEMENTS", 1), ("REFERENCE_COMMANDS", 2),
        ("MATCHER_ENGINE_EVENTS", 3), ("MATCHER_SETTLEMENTS", 4), ("MATCHER_DEAD_LETTERS", 5),
        ("PROJECTOR_DEAD_LETTERS", 6),
    ]  # fmt: skip
    assert max(EventSource) <= SOURCE_MAX
    assert {EventSource(3), EventSource(4), EventSource(5)} == MATCHER_SOURCES


@given(
    st.integers(0, UNIX_NS_MAX),
    st.integers(0, SOURCE_MAX),
    st.integers(0, PARTITION_MAX),
    st.integers(0, OFFSET_MAX),
    st.integers(0, OUTPUT_INDEX_MAX),
)
def test_event_ids_equal_the_domain_layout(
    time_ns: int, source: int, partition: int, offset: int, index: int
) -> None:
    ids = EventIds(source, partition)
    fast = EventIds.of(ids.head(time_ns, offset), index)
    assert fast == event_id(time_ns, source, partition, offset, index)
    # the cached millisecond prefix: a second input of the same millisecond, then another one
    assert EventIds.of(ids.head(time_ns, offset), index) == fast
    later = min(time_ns + 1_000_000, UNIX_NS_MAX)
    expected = event_id(later, source, partition, offset, index)
    assert EventIds.of(ids.head(later, offset), index) == expected


def test_matcher_ids_fast_path_equals_the_layout_and_overflow_fails_loudly() -> None:
    for time_ns, source, partition, offset in (
        (T0, 3, 0, 0),
        (T0 + 7, 4, 4_095, (1 << 40) - 1),
    ):
        base = event_id_base(time_ns, source, partition, offset)
        assert base == event_id_int(time_ns, source, partition, offset << 8, 0)
        for index in (0, 1, 255, 256, 4_097, OUTPUTS_PER_INPUT_MAX - 1):
            assert format_event_id(base, index) == matcher_event_id(
                time_ns, source, partition, offset, index
            )
        with pytest.raises(OutputOverflow):
            format_event_id(base, OUTPUTS_PER_INPUT_MAX)
    assert matcher_event_id(0, 3, 1, 5, OUTPUTS_PER_INPUT_MAX - 1) != matcher_event_id(
        0, 3, 1, 5, OUTPUTS_PER_INPUT_MAX - 2
    )
    with pytest.raises(OutputOverflow):
        matcher_event_id(0, 3, 1, 5, OUTPUTS_PER_INPUT_MAX)


def test_ids_are_the_bytes_written_before() -> None:
    """Golden values, computed with the code before the ids moved to tradex.log.ids."""
    assert command_event_id(Deposit("c-1", 42, T0 + 123_456_789, "USD", 10)) == (
        "018bcfe5-687b-7bdf-af47-ee8dc84af905"
    )
    assert command_event_id(CreateAsset("a-btc", T0, "BTC", 8)) == (
        "018bcfe5-6800-7753-8d9c-32deaec7a118"
    )
    base = event_id_base(T0, EventSource.MATCHER_ENGINE_EVENTS, 7, 123_456)
    assert format_event_id(base, 300) == "018bcfe5-6800-7007-8300-0001e240012c"
    ids = EventIds(EventSource.SETTLEMENTS, 3)
    assert EventIds.of(ids.head(T0, 1 << 41), 17) == "018bcfe5-6800-7003-8102-000000000011"
    matcher = dead_letter_event_id(EventSource.MATCHER_DEAD_LETTERS, T0, 2, 99)
    assert matcher == "018bcfe5-6800-7002-8500-000000630000"
    account = dead_letter_event_id(EventSource.ACCOUNT_COMMANDS, T0 + 123_000_000, 3, 41)
    assert account == "018bcfe5-687b-7003-8000-0000000029ff"
    assert account.endswith(f"{(41 << 8) | DEAD_LETTER_OUTPUT_INDEX:012x}")
