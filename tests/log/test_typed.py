"""Typed records: domain objects through the C decode path, a CodecError per bad record."""

from __future__ import annotations

import pytest

from tests.log.memory_log import MemoryLog
from tradex.domain import EXTERNAL_ACCOUNT, Deposited, Posting
from tradex.log.source import LogRecord
from tradex.log.typed import decode, read_typed, read_typed_topic, typed
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields

CODEC = Codec.offline()
T0 = 1_700_000_000_000_000_000


def _deposited(n: int) -> bytes:
    amount = 100 + n
    postings = (Posting(7, "USD", amount), Posting(EXTERNAL_ACCOUNT, "USD", -amount))
    event = Deposited(f"c{n}", 7, T0, "USD", amount, postings)
    return CODEC.encode_domain(event, EnvelopeFields(f"e{n}", f"c{n}", f"c{n}", "t", n)).data


def test_a_record_decodes_to_its_domain_object_with_its_position() -> None:
    record = LogRecord("account-events", 1, 41, 123, b"7", _deposited(1))
    found = decode(CODEC, record)
    assert (found.topic, found.partition, found.offset, found.timestamp_ms, found.key) == (
        "account-events", 1, 41, 123, b"7",
    )  # fmt: skip
    assert found.value == record.value
    assert found.error is None
    envelope, body = found.checked()
    assert isinstance(body, Deposited)
    assert body.amount == 101
    assert envelope.seq == 1
    assert found.envelope == envelope
    assert found.body == body


def test_a_bad_record_carries_its_error_and_the_read_goes_on() -> None:
    records = [
        LogRecord("t", 0, 0, 0, None, _deposited(1)),
        LogRecord("t", 0, 1, 0, None, b"\x00garbage"),
        LogRecord("t", 0, 2, 0, None, None),  # no value at all
        LogRecord("t", 0, 3, 0, None, _deposited(2)),
    ]
    found = list(typed(CODEC, records))
    assert [r.error is None for r in found] == [True, False, False, True]
    assert isinstance(found[1].error, CodecError)
    assert (found[1].envelope, found[1].body, found[2].value) == (None, None, b"")
    with pytest.raises(CodecError):
        found[1].checked()
    assert found[3].checked()[1].command_id == "c2"


def test_reads_from_a_source_range_and_topic_in_partition_order() -> None:
    log = MemoryLog()
    for n in range(4):
        log.append("account-events", n % 2, b"7", _deposited(n), gap=1)
    assert [r.checked()[1].command_id for r in read_typed(log, CODEC, "account-events", 0)] == [
        "c0", "c2",
    ]  # fmt: skip
    second = log.records[("account-events", 0)][1].offset
    assert [r.offset for r in read_typed(log, CODEC, "account-events", 0, start=second)] == [second]
    in_order = [r.checked()[1].command_id for r in read_typed_topic(log, CODEC, "account-events")]
    assert in_order == ["c0", "c2", "c1", "c3"]  # partition 0, then partition 1
