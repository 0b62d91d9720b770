"""Engine records (tradex.domain.engine) through the codec: the C domain path writes exactly
the bytes of the dict path the matcher used before (``Codec.seal`` of a record dict) and of
fastavro, and decodes them back, validated, in one C call.

Values are drawn valid by construction (``validate()`` passes), so every example goes all
the way through ``decode_domain``; the generic property tests in test_native.py and
test_codec.py draw any schema value, which ``validate()`` mostly refuses for these types.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schemas.domain_strategies import ENVELOPES
from tradex import domain as d
from tradex.schemas.bindings import BINDINGS, to_record
from tradex.schemas.chain import ZERO_HASH, hash_ok
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields
from tradex.schemas.wire import LONG_MAX, LONG_MIN

NATIVE = Codec.offline()
REFERENCE = Codec.offline(specialised=False)
BuiltinFunction = type(len)

ANY = st.integers(LONG_MIN, LONG_MAX)
POSITIVE = st.integers(1, LONG_MAX)
NOT_NEGATIVE = st.integers(0, LONG_MAX)
SIDE = st.sampled_from(list(d.Side))
REASON = st.sampled_from(list(d.Reason))
TEXT = st.text(max_size=30)
VALID: dict[type, Any] = {
    d.Accepted: st.builds(d.Accepted, ANY, POSITIVE, ANY, SIDE, st.sampled_from(list(d.OrderKind)),
                          POSITIVE, POSITIVE, ANY),
    d.Rested: st.builds(d.Rested, ANY, POSITIVE, ANY, SIDE, POSITIVE, POSITIVE, ANY),
    d.Trade: st.builds(d.Trade, ANY, POSITIVE, POSITIVE, POSITIVE, SIDE, POSITIVE, ANY, POSITIVE,
                       ANY, ANY),
    d.Filled: st.builds(d.Filled, ANY, POSITIVE, ANY, SIDE, POSITIVE, ANY),
    d.Cancelled: st.builds(d.Cancelled, ANY, POSITIVE, ANY, NOT_NEGATIVE, REASON, TEXT, ANY),
    d.Expired: st.builds(d.Expired, ANY, POSITIVE, ANY, NOT_NEGATIVE, REASON, TEXT, ANY),
    d.Rejected: st.builds(d.Rejected, ANY, ANY, ANY, REASON, TEXT, TEXT, ANY),
    d.AmendApplied: st.builds(d.AmendApplied, ANY, POSITIVE, ANY, POSITIVE, POSITIVE,
                              st.booleans(), ANY),
    d.L2Delta: st.builds(d.L2Delta, ANY, SIDE, POSITIVE, NOT_NEGATIVE, NOT_NEGATIVE, ANY),
    d.RulesApplied: st.builds(d.RulesApplied, ANY, NOT_NEGATIVE, st.booleans(), ANY),
}  # fmt: skip
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_engine_event_type_is_bound_and_served_in_c() -> None:
    assert set(VALID) == set(d.ENGINE_EVENT_TYPES)
    assert len(d.ENGINE_EVENT_TYPES) == 10
    for cls in d.ENGINE_EVENT_TYPES:
        assert BINDINGS[cls.__name__].cls is cls
        assert type(NATIVE._domain_writers[cls]) is BuiltinFunction, cls
        assert type(NATIVE.appender(cls)) is BuiltinFunction, cls
        reader = NATIVE._domain_readers[NATIVE.schema_id(cls.__name__)]
        assert type(reader.decode) is BuiltinFunction, cls


def dict_record(obj: Any, envelope: EnvelopeFields) -> dict[str, Any]:
    """The record dict of ``obj`` as the matcher built it before (envelope included)."""
    record = to_record(obj, BINDINGS[type(obj).__name__])
    record["envelope"] = {
        "event_id": envelope.event_id,
        "type": type(obj).__name__,
        "event_time_ns": obj.event_time_ns,
        "causation_id": envelope.causation_id,
        "correlation_id": envelope.correlation_id,
        "trace_parent": envelope.trace_parent,
        "producer": envelope.producer,
        "seq": envelope.seq,
    }
    return record


@pytest.mark.parametrize("cls", d.ENGINE_EVENT_TYPES, ids=lambda c: c.__name__)
@PROPERTY
@given(data=st.data(), envelope=ENVELOPES, prev_hash=st.binary(min_size=32, max_size=32))
def test_c_encoding_equals_the_dict_path_and_fastavro(
    cls: type, data: st.DataObject, envelope: EnvelopeFields, prev_hash: bytes
) -> None:
    obj = data.draw(VALID[cls])
    obj.validate()
    sealed = NATIVE.encode_domain(obj, envelope, prev_hash)
    name = cls.__name__
    assert sealed == NATIVE.seal(name, dict_record(obj, envelope), prev_hash)  # compiled dicts
    assert sealed == REFERENCE.seal(name, dict_record(obj, envelope), prev_hash)  # fastavro
    assert sealed == REFERENCE.encode_domain(obj, envelope, prev_hash)
    assert hash_ok(prev_hash, sealed.data)
    envelope_out, back = NATIVE.decode_domain(sealed.data)
    assert type(back) is cls
    assert back == obj
    assert envelope_out.event_time_ns == obj.event_time_ns
    assert envelope_out.type == name
    assert (envelope_out.event_id, envelope_out.seq) == (envelope.event_id, envelope.seq)
    assert envelope_out.prev_hash == prev_hash
    assert REFERENCE.decode_domain(sealed.data) == (envelope_out, back)
    assert NATIVE.decode(sealed.data).record == REFERENCE.decode(sealed.data).record


def test_an_invalid_engine_record_is_a_codec_error_on_decode() -> None:
    env = EnvelopeFields("e", "c", "r", "matcher/0", 1)
    bad = d.Trade(1, 5, 100, 0, d.Side.BUY, 1, 1, 2, 2, 7)  # qty 0: never written by the engine
    data = NATIVE.encode_domain(bad, env).data
    for codec in (NATIVE, REFERENCE):
        with pytest.raises(CodecError, match="qty must be > 0"):
            codec.decode_domain(data)


OLD_SAMPLES = (
    (d.L2Delta(3, d.Side.SELL, 101, 4, 9, 1_000), {"book_seq": 0, "event_time_ns": 0}),
    (d.Trade(3, 5, 101, 4, d.Side.BUY, 1, 2, 3, 4, 1_000), {"event_time_ns": 0}),
    (d.Rejected(3, 0, 2, d.Reason.UNKNOWN, "", "", 1_000), {"event_time_ns": 0}),
)


@pytest.mark.parametrize(
    ("obj", "zeroed"), OLD_SAMPLES, ids=[type(o).__name__ for o, _ in OLD_SAMPLES]
)
def test_records_of_the_previous_version_decode_with_zero_time_and_book_seq(
    obj: Any, zeroed: dict[str, int]
) -> None:
    """engine-events written before event_time_ns/book_seq existed stay readable (Avro
    resolution to the newest schema: the new fields take their default, 0)."""
    versions = NATIVE.registry.subjects[NATIVE.subject_of(type(obj).__name__)]
    # the newest version before these fields (later versions, e.g. Reason symbols appended,
    # may follow it)
    old = next(
        v for v in reversed(versions)
        if not set(zeroed) & {field["name"] for field in json.loads(v.text)["fields"]}
    )  # fmt: skip
    record = dict_record(obj, EnvelopeFields("e", "c", "r", "matcher/0", 1))
    record["envelope"]["prev_hash"] = ZERO_HASH
    record["hash"] = ZERO_HASH
    for field in zeroed:
        del record[field]
    buffer = io.BytesIO()
    buffer.write(b"\x00" + old.schema_id.to_bytes(4, "big"))
    schemaless_writer(buffer, parse_schema(json.loads(old.text)), record)
    envelope, back = NATIVE.decode_domain(buffer.getvalue())
    assert back == obj._replace(**zeroed)
    assert envelope.event_time_ns == obj.event_time_ns  # the envelope always had it
