"""The one DeadLetter builder, as the account, reference and matcher stages use it."""

from __future__ import annotations

import hashlib

import confluent_kafka as ck

from tradex.log.dead_letters import ERROR_LENGTH_MAX, dead_letter, dead_letter_of_message
from tradex.log.ids import DEAD_LETTER_OUTPUT_INDEX, EventSource
from tradex.schemas.codec import Codec

CODEC = Codec.offline()
TIMESTAMP_MS = 1_700_000_000_123


def test_a_consumed_message_keeps_its_raw_record_and_position() -> None:
    message = ck.Message(
        topic="t-account-commands", partition=3, offset=41, key=b"7", value=b"\x00garbage",
        timestamp=(ck.TIMESTAMP_CREATE_TIME, TIMESTAMP_MS),
    )  # fmt: skip
    output = dead_letter_of_message(
        CODEC, "t-dead-letters", "accounts/a", EventSource.ACCOUNT_COMMANDS, message,
        "undecodable", "x",
    )  # fmt: skip
    assert output.topic == "t-dead-letters"
    assert output.key == b"t-account-commands"
    assert output.partition == -1
    record = CODEC.decode(output.value).record
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "t-account-commands", 3, 41,
    )  # fmt: skip
    assert (record["key"], record["value"]) == (b"7", b"\x00garbage")
    assert (record["reason"], record["error"]) == ("undecodable", "x")
    envelope = record["envelope"]
    assert envelope["producer"] == "accounts/a"
    assert envelope["event_time_ns"] == TIMESTAMP_MS * 1_000_000
    assert envelope["causation_id"] == "t-account-commands/3/41"
    tail = (41 << 8) | DEAD_LETTER_OUTPUT_INDEX  # low bits: offset, output index
    assert envelope["event_id"].endswith(f"-{tail:012x}")
    # the bytes the account processor wrote before the builder moved here
    assert hashlib.sha256(output.value).hexdigest() == (
        "07910204f94eca6de294669ed082e8f07a381c7200e354d1550c2ef2a221d65b"
    )


def test_the_matcher_layout_and_a_long_error() -> None:
    output = dead_letter(
        CODEC, "t-dead-letters", "matcher/2", EventSource.MATCHER_DEAD_LETTERS,
        "t-order-requests", 2, 99, TIMESTAMP_MS, b"1", b"\x00garbage", "undecodable",
        "e" * (ERROR_LENGTH_MAX + 10),
    )  # fmt: skip
    record = CODEC.decode(output.value).record
    assert record["envelope"]["event_id"] == "018bcfe5-687b-7002-8500-000000630000"
    assert len(record["error"]) == ERROR_LENGTH_MAX
    no_time = dead_letter(
        CODEC, "t-dead-letters", "matcher/2", EventSource.MATCHER_DEAD_LETTERS,
        "t-order-requests", 2, 100, -5, b"1", b"", "empty", "record without a value",
    )  # fmt: skip
    assert CODEC.decode(no_time.value).record["envelope"]["event_time_ns"] == 0
    # the bytes the matcher wrote before the builder moved here
    assert hashlib.sha256(no_time.value).hexdigest() == (
        "5924e46fea32aeb5e4e741d6846a426319e1f56a436372b4c0224969c91e3b17"
    )
