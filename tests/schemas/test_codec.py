from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schemas.domain_strategies import ENVELOPES, domain_records, outcome
from tests.schemas.samples import samples
from tradex.domain import Deposited, Posting
from tradex.schemas.bindings import BINDINGS, from_record
from tradex.schemas.chain import ZERO_HASH, hash_ok
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields

ENV = EnvelopeFields("0190f0c2-0000-7000-8000-000000000001", "cause", "corr", "accounts/0", 3)


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec.offline()


def test_every_bound_type_has_a_sample() -> None:
    assert {type(s).__name__ for s in samples()} == set(BINDINGS)


@pytest.mark.parametrize("obj", samples(), ids=lambda o: type(o).__name__)
def test_domain_round_trip(codec: Codec, obj: object) -> None:
    sealed = codec.encode_domain(obj, ENV, ZERO_HASH)
    assert sealed.data[0] == 0
    assert int.from_bytes(sealed.data[1:5], "big") == codec.schema_id(type(obj).__name__)
    envelope, back = codec.decode_domain(sealed.data)
    assert back == obj
    assert type(back) is type(obj)
    assert envelope.type == type(obj).__name__
    assert envelope.event_time_ns == obj.event_time_ns  # type: ignore[attr-defined]
    assert (envelope.event_id, envelope.seq, envelope.producer) == (ENV.event_id, 3, "accounts/0")
    assert hash_ok(envelope.prev_hash, sealed.data)


def test_schema_ids_are_the_registry_files(codec: Codec) -> None:
    ids = {codec.schema_id(name) for name in BINDINGS}
    assert len(ids) == len(BINDINGS)
    assert (
        codec.schema_id("Deposited") == codec.registry.latest("tradex.account.Deposited").schema_id
    )
    assert Codec.offline().schema_id("Deposited") == codec.schema_id("Deposited")


def test_plain_dict_records_encode(codec: Codec) -> None:
    record = {
        "envelope": {
            "event_id": "e", "type": "DeadLetter", "event_time_ns": 1, "causation_id": "",
            "correlation_id": "", "trace_parent": "", "producer": "accounts/0", "seq": 0,
            "prev_hash": ZERO_HASH,
        },
        "source_topic": "account-commands", "source_partition": 2, "source_offset": 9,
        "key": b"1", "value": b"\x00garbage", "reason": "CodecError", "error": "bad magic",
        "hash": ZERO_HASH,
    }  # fmt: skip
    decoded = codec.decode(codec.encode("DeadLetter", record))
    assert decoded.subject == "tradex.ops.DeadLetter"
    assert decoded.record == record


def good_bytes(codec: Codec) -> bytes:
    event = Deposited("c1", 1, 5, "USD", 5, (Posting(1, "USD", 5), Posting(-1, "USD", -5)))
    return codec.encode_domain(event, ENV).data


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b"\x01" + b[1:], "bad magic"),
        (lambda b: b[:1] + (999_999).to_bytes(4, "big") + b[5:], "unknown schema id"),
        (lambda b: b[:20], "too short"),
        (lambda b: b[:40] + b"\xff" * 8 + b[48:], "corrupt"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b"", "too short"),
    ],
)
def test_bad_bytes_raise_codec_error(codec: Codec, mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CodecError, match=message):
        codec.decode(mangle(good_bytes(codec)))


def test_invalid_domain_content_raises_codec_error(codec: Codec) -> None:
    unbalanced = Deposited("c1", 1, 5, "USD", 5, (Posting(1, "USD", 5), Posting(-1, "USD", -4)))
    data = codec.encode_domain(unbalanced, ENV).data
    with pytest.raises(CodecError, match="unbalanced"):
        codec.decode_domain(data)


def test_unencodable_record_raises_codec_error(codec: Codec) -> None:
    with pytest.raises(CodecError, match="no schema"):
        codec.encode("Nope", {})
    bad = Deposited("c1", 1, 5, "USD", 1 << 64, (Posting(1, "USD", 5),))
    with pytest.raises(CodecError):
        codec.encode_domain(bad, ENV)


# -- the compiled path against the fastavro reference path -----------------------------------

REFERENCE = Codec.offline(specialised=False)
FAST = Codec.offline()
PROPERTY = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_bound_type_is_compiled() -> None:
    for name, binding in BINDINGS.items():
        assert binding.cls in FAST._domain_writers, name
        assert FAST.schema_id(name) in FAST._domain_readers, name


@pytest.mark.parametrize("name", sorted(BINDINGS))
@PROPERTY
@given(data=st.data(), envelope=ENVELOPES, prev_hash=st.binary(min_size=32, max_size=32))
def test_compiled_domain_path_matches_fastavro(
    name: str, data: st.DataObject, envelope: EnvelopeFields, prev_hash: bytes
) -> None:
    obj = from_record(data.draw(domain_records(name)), BINDINGS[name])
    sealed = FAST.encode_domain(obj, envelope, prev_hash)
    assert sealed == REFERENCE.encode_domain(obj, envelope, prev_hash)
    assert hash_ok(prev_hash, sealed.data)
    # before validate() (which refuses most random values of some types): C == fastavro
    raw = FAST._domain_readers[FAST.schema_id(name)].decode(sealed.data)
    assert raw[1] == from_record(REFERENCE.decode(sealed.data).record, BINDINGS[name]) == obj
    ours = outcome(lambda: FAST.decode_domain(sealed.data))
    assert ours == outcome(lambda: REFERENCE.decode_domain(sealed.data))
    if ours is not CodecError:
        assert type(ours[1]) is type(obj)
        assert ours[1] == obj
    assert FAST.decode(sealed.data) == REFERENCE.decode(sealed.data)


@pytest.mark.parametrize("obj", samples(), ids=lambda o: type(o).__name__)
@settings(max_examples=30, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=3),
       cut=st.integers(-40, 3))  # fmt: skip
def test_corrupt_bytes_raise_codec_error_or_decode_like_fastavro(
    obj: Any, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(FAST.encode_domain(obj, ENV).data)
    for index, value in edits:
        if index < len(data):
            data[index] = value
    mangled = bytes(data[:cut] if cut < 0 else data + b"\x00" * cut)
    ours = outcome(lambda: FAST.decode(mangled))
    if ours is not CodecError:  # valid Avro after all: fastavro reads the same
        assert ours == REFERENCE.decode(mangled)
    outcome(lambda: FAST.decode_domain(mangled))  # CodecError or a value, nothing else


def test_bad_domain_values_raise_codec_error() -> None:
    good = samples()[0]
    for bad in (
        good._replace(amount="5"),
        good._replace(account_id=1 << 63),
        good._replace(asset=None),
        good._replace(postings=((1, "USD"),)),
        good._replace(postings=5),
    ):
        with pytest.raises(CodecError):
            FAST.encode_domain(bad, ENV)
    with pytest.raises(CodecError, match="prev_hash"):
        FAST.encode_domain(good, ENV, b"short")
    order = samples()[4]
    with pytest.raises(CodecError):
        FAST.encode_domain(order._replace(side="HOLD"), ENV)


def test_bytes_like_input_decodes() -> None:
    data = FAST.encode_domain(samples()[7], ENV).data
    for view in (bytearray(data), memoryview(data)):
        assert FAST.decode_domain(view) == FAST.decode_domain(data)  # type: ignore[arg-type]
        assert FAST.decode(view) == FAST.decode(data)  # type: ignore[arg-type]
