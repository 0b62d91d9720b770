"""Record builders of the command side: event ids, dead letters."""

from __future__ import annotations

import confluent_kafka as ck
from hypothesis import given
from hypothesis import strategies as st

from tradex.commands.records import (
    DEAD_LETTER_OUTPUT_INDEX,
    SOURCE_ACCOUNT_COMMANDS,
    EventIds,
    dead_letter,
)
from tradex.domain.ids import OFFSET_MAX, OUTPUT_INDEX_MAX, PARTITION_MAX, SOURCE_MAX, event_id
from tradex.schemas.codec import Codec

UNIX_NS_MAX = ((1 << 48) - 1) * 1_000_000


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


def test_dead_letter_keeps_the_raw_record_and_its_position() -> None:
    codec = Codec.offline()
    message = ck.Message(
        topic="t-account-commands", partition=3, offset=41, key=b"7", value=b"\x00garbage"
    )
    output = dead_letter(
        codec, "t-dead-letters", "accounts/a", SOURCE_ACCOUNT_COMMANDS, message, "undecodable", "x"
    )
    assert output.topic == "t-dead-letters"
    assert output.key == b"t-account-commands"
    assert output.partition == -1
    record = codec.decode(output.value).record
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "t-account-commands", 3, 41,
    )  # fmt: skip
    assert (record["key"], record["value"]) == (b"7", b"\x00garbage")
    assert (record["reason"], record["error"]) == ("undecodable", "x")
    assert record["envelope"]["producer"] == "accounts/a"
    tail = (41 << 8) | DEAD_LETTER_OUTPUT_INDEX  # low bits: offset, output index
    assert record["envelope"]["event_id"].endswith(f"-{tail:012x}")
