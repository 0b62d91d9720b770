"""Compiled encoders are byte-identical to fastavro's schemaless_writer."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schemas.avro_strategies import fastavro_bytes, parsed, strategy
from tradex.schemas.compile_base import Unsupported
from tradex.schemas.compile_writer import dict_encoder
from tradex.schemas.registry import Registry

HEADER = b"\x00\x00\x00\x01\x2a"
REGISTRY = Registry.load()
SUBJECTS = sorted(REGISTRY.subjects)
PROPERTY = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# every type the compilers handle, nested and referenced by name
ALL_TYPES: dict[str, Any] = {
    "type": "record",
    "name": "AllTypes",
    "namespace": "test",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "big", "type": {"type": "long"}},
        {"name": "ratio", "type": "float"},
        {"name": "precise", "type": "double"},
        {"name": "blob", "type": "bytes"},
        {"name": "text", "type": "string"},
        {"name": "nothing", "type": "null"},
        {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}},
        {"name": "digest", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [{"name": "side", "type": "Side"}, {"name": "digest", "type": "Four"}],
            },
        },
        {"name": "inners", "type": {"type": "array", "items": "Inner"}},
        {"name": "grid", "type": {"type": "array", "items": {"type": "array", "items": "long"}}},
        {"name": "tags", "type": {"type": "map", "values": "string"}},
        {"name": "maybe", "type": ["null", "string"]},
        {"name": "maybe_after", "type": ["long", "null"]},
        {"name": "maybe_inner", "type": ["null", "test.Inner"]},
        {"name": "nulls", "type": {"type": "array", "items": "null"}},
        {"name": "with_default", "type": "string", "default": "x"},
    ],
}


@cache
def subject_case(subject: str) -> tuple[str, Any, Any]:
    """(schema text, fastavro-parsed schema, record strategy) of a registry subject."""
    text = REGISTRY.latest(subject).text
    schema = json.loads(text)
    return text, parsed(schema), strategy(schema)


@pytest.mark.parametrize("subject", SUBJECTS)
@PROPERTY
@given(data=st.data())
def test_every_subject_encodes_like_fastavro(subject: str, data: st.DataObject) -> None:
    text, parsed_schema, records = subject_case(subject)
    record = data.draw(records)
    assert dict_encoder(text, HEADER)(record) == fastavro_bytes(parsed_schema, record, HEADER)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=strategy(ALL_TYPES))
def test_every_type_encodes_like_fastavro(record: dict[str, Any]) -> None:
    encode = dict_encoder(json.dumps(ALL_TYPES), HEADER)
    assert encode(record) == fastavro_bytes(parsed(ALL_TYPES), record, HEADER)


def test_a_missing_field_takes_its_default_like_fastavro() -> None:
    record = {
        "flag": True, "small": -1, "big": 1 << 40, "ratio": 0.5, "precise": -2.25,
        "blob": b"\x00\xff", "text": "é", "nothing": None, "side": "SELL",
        "digest": b"abcd", "inner": {"side": "BUY", "digest": b"wxyz"}, "inners": [],
        "grid": [[1, -2], []], "tags": {"a": "b"}, "maybe": None, "maybe_after": 7,
        "maybe_inner": {"side": "SELL", "digest": b"0000"}, "nulls": [None, None],
    }  # fmt: skip
    expected = fastavro_bytes(parsed(ALL_TYPES), record, HEADER)
    assert dict_encoder(json.dumps(ALL_TYPES), HEADER)(record) == expected
    del record["maybe"]  # a null union without default: None, as fastavro does
    assert dict_encoder(json.dumps(ALL_TYPES), HEADER)(record) == expected


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("small", 1 << 31, OverflowError),
        ("big", 1 << 63, OverflowError),
        ("big", -(1 << 63) - 1, OverflowError),
        ("big", "1", TypeError),
        ("big", 1.5, TypeError),
        ("text", 5, AttributeError),
        ("blob", "text", TypeError),
        ("side", "HOLD", KeyError),
        ("digest", b"abc", ValueError),
        ("inner", None, AttributeError),
        ("inners", 5, TypeError),
    ],
)
def test_bad_values_raise(field: str, value: Any, error: type[Exception]) -> None:
    record = {
        "flag": True, "small": 1, "big": 1, "ratio": 0.5, "precise": 0.5, "blob": b"",
        "text": "", "nothing": None, "side": "BUY", "digest": b"abcd",
        "inner": {"side": "BUY", "digest": b"abcd"}, "inners": [], "grid": [], "tags": {},
        "maybe": None, "maybe_after": None, "maybe_inner": None, "nulls": [],
    }  # fmt: skip
    encode = dict_encoder(json.dumps(ALL_TYPES), HEADER)
    encode(record)
    with pytest.raises(error):
        encode({**record, field: value})


@pytest.mark.parametrize(
    "field_type",
    [
        ["string", "long"],  # a union fastavro resolves by value type
        ["null", "string", "long"],
        {"type": "long", "logicalType": "timestamp-millis"},
        "test.Node",  # recursive
        "nowhere.Unknown",
    ],
)
def test_unsupported_schemas_are_refused(field_type: Any) -> None:
    schema = {
        "type": "record",
        "name": "Node",
        "namespace": "test",
        "fields": [{"name": "x", "type": field_type}],
    }
    with pytest.raises(Unsupported):
        dict_encoder(json.dumps(schema), HEADER)
