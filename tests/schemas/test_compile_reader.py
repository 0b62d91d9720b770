"""Compiled decoders return what fastavro's schemaless_reader returns, and refuse corrupt
bytes with an error the codec turns into CodecError."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schemas.avro_strategies import fastavro_bytes, fastavro_record, parsed, strategy
from tests.schemas.test_compile_writer import (
    ALL_TYPES,
    HEADER,
    PROPERTY,
    SUBJECTS,
    subject_case,
)
from tradex.schemas.compile_base import Unsupported
from tradex.schemas.compile_reader import dict_decoder
from tradex.schemas.wire import write_long

# what a compiled decoder raises on corrupt input
CORRUPT_ERRORS = (IndexError, ValueError, struct.error)


@pytest.mark.parametrize("subject", SUBJECTS)
@PROPERTY
@given(data=st.data())
def test_every_subject_decodes_like_fastavro(subject: str, data: st.DataObject) -> None:
    text, parsed_schema, records = subject_case(subject)
    wire = fastavro_bytes(parsed_schema, data.draw(records), HEADER)
    record, end = dict_decoder(text)(wire)
    assert end == len(wire)
    assert record == fastavro_record(parsed_schema, wire, len(HEADER))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=strategy(ALL_TYPES))
def test_every_type_decodes_like_fastavro(record: dict[str, Any]) -> None:
    wire = fastavro_bytes(parsed(ALL_TYPES), record, HEADER)
    decoded, end = dict_decoder(json.dumps(ALL_TYPES))(wire)
    assert end == len(wire)
    assert decoded == fastavro_record(parsed(ALL_TYPES), wire, len(HEADER)) == record


ARRAY_OF_LONGS: dict[str, Any] = {
    "type": "record",
    "name": "Longs",
    "fields": [{"name": "xs", "type": {"type": "array", "items": "long"}}],
}


def test_blocks_with_byte_sizes_and_non_canonical_varints_decode() -> None:
    # block 1: count -2 (so a byte size follows), items 1 and -300; block 2: count 1, the
    # item 5 written in a padded (non-canonical) 3-byte varint; then the end (0)
    body = write_long(-2) + write_long(3) + write_long(1) + write_long(-300)
    body += write_long(1) + b"\x8a\x80\x00" + write_long(0)
    wire = HEADER + body
    expected = {"xs": [1, -300, 5]}
    assert fastavro_record(parsed(ARRAY_OF_LONGS), wire, len(HEADER)) == expected
    assert dict_decoder(json.dumps(ARRAY_OF_LONGS))(wire) == (expected, len(wire))


@pytest.mark.parametrize(
    "body",
    [
        b"",  # ends before the count
        write_long(2) + write_long(1),  # ends inside the block
        write_long(1) + b"\xff" * 11,  # varint longer than 10 bytes
        write_long(10**6),  # a count larger than the data
    ],
)
def test_corrupt_arrays_raise(body: bytes) -> None:
    with pytest.raises(CORRUPT_ERRORS):
        _record, end = dict_decoder(json.dumps(ARRAY_OF_LONGS))(HEADER + body)
        assert end == len(HEADER + body), "decoded past the end of the data"


@pytest.mark.parametrize(
    ("field_type", "body"),
    [
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, write_long(2)),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, write_long(-1)),
        (["null", "long"], write_long(2)),
        ("string", write_long(-1)),
        ("string", write_long(2) + b"\xff\xfe"),  # not UTF-8
        ("int", write_long(1 << 31)),
        ("boolean", b"\x02"),
        ("double", b"\x00\x00"),
    ],
)
def test_corrupt_values_raise(field_type: Any, body: bytes) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": field_type}]}
    with pytest.raises(CORRUPT_ERRORS):
        dict_decoder(json.dumps(schema))(HEADER + body)


def test_unsupported_schemas_are_refused() -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": ["string", "long"]}]}
    with pytest.raises(Unsupported):
        dict_decoder(json.dumps(schema))
