"""The C codec (tradex.schemas._native_codec) against its pure-Python twin and fastavro.

tests/schemas/test_codec.py already runs the default codec (the C one) against fastavro;
here: every domain type is served by C, C and the Python twin agree byte for byte on
random records and on random or mangled input (same value or both CodecError), the
SHA-256 of the chain, and the program checks of the extension itself.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schemas.domain_strategies import ENVELOPES, domain_records, outcome
from tests.schemas.samples import samples
from tradex.domain import Deposited, Posting
from tradex.schemas import _native_codec as native
from tradex.schemas import compile_native
from tradex.schemas.bindings import BINDINGS, from_record
from tradex.schemas.chain import HASH_SIZE, ZERO_HASH, hash_ok
from tradex.schemas.codec import Codec, CodecError, EnvelopeFields
from tradex.schemas.envelope import RECORD_SIZE_MAX, Sealed
from tradex.schemas.wire import LONG_MAX, LONG_MIN

NATIVE = Codec.offline()
TWIN = Codec.offline(native=False)
REFERENCE = Codec.offline(specialised=False)
ENV = EnvelopeFields("0190f0c2-0000-7000-8000-000000000001", "cause", "corr", "accounts/0", 3)
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BuiltinFunction = type(len)


def test_every_bound_type_is_served_by_the_c_codec() -> None:
    assert NATIVE.native
    assert not TWIN.native
    for name, binding in BINDINGS.items():
        assert type(NATIVE._domain_writers[binding.cls]) is BuiltinFunction, name
        reader = NATIVE._domain_readers[NATIVE.schema_id(name)]
        assert type(reader.decode) is BuiltinFunction, name
        assert type(TWIN._domain_writers[binding.cls]) is not BuiltinFunction, name


@pytest.mark.parametrize("name", sorted(BINDINGS))
@PROPERTY
@given(data=st.data(), envelope=ENVELOPES, prev_hash=st.binary(min_size=32, max_size=32))
def test_c_codec_matches_the_python_twin_and_fastavro(
    name: str, data: st.DataObject, envelope: EnvelopeFields, prev_hash: bytes
) -> None:
    obj = from_record(data.draw(domain_records(name)), BINDINGS[name])
    sealed = NATIVE.encode_domain(obj, envelope, prev_hash)
    assert type(sealed) is Sealed
    assert sealed == TWIN.encode_domain(obj, envelope, prev_hash)
    assert sealed == REFERENCE.encode_domain(obj, envelope, prev_hash)
    assert hash_ok(prev_hash, sealed.data)
    # The decoders before validate(): random values mostly fail validate() (for Trade or
    # FillSettled nearly always), which would leave the decoded value unchecked.
    wire_id = NATIVE.schema_id(name)
    raw = NATIVE._domain_readers[wire_id].decode(sealed.data)
    assert raw == TWIN._domain_readers[wire_id].decode(sealed.data)
    assert (type(raw[1]), raw[1], raw[2]) == (type(obj), obj, len(sealed.data))
    ours = outcome(lambda: NATIVE.decode_domain(sealed.data))
    assert ours == outcome(lambda: TWIN.decode_domain(sealed.data))
    if ours is not CodecError:  # CodecError: a random value the domain's validate refuses
        envelope_out, obj_out = ours
        assert type(obj_out) is type(obj)
        assert obj_out == obj
        assert envelope_out.prev_hash == prev_hash
        assert envelope_out.event_id == envelope.event_id


def _raised(decode: Any, data: Any) -> BaseException:
    with pytest.raises(Exception) as info:
        decode(data)
    return info.value


def test_c_decode_domain_checks_and_raises_like_the_python_path() -> None:
    """Codec.decode_domain is the C Readers' (header, body, end and validate() in one call);
    each failure is the CodecError the Python path raises: same text, same cause."""
    assert type(NATIVE.decode_domain) is BuiltinFunction
    good = NATIVE.encode_domain(samples()[7], ENV).data
    unbalanced = Deposited("c1", 1, 5, "USD", 5, (Posting(1, "USD", 5), Posting(-1, "USD", -4)))
    cases = {
        "trailing": good + b"\x00",
        "truncated": good[:-1],
        "corrupt": good[:40] + b"\xff" * 8 + good[48:],
        "invalid": NATIVE.encode_domain(unbalanced, ENV).data,
        "bad magic": b"\x01" + good[1:],
        "too short": good[:20],
        "unknown id": good[:1] + (999_999).to_bytes(4, "big") + good[5:],
    }
    for case, data in cases.items():
        ours = _raised(NATIVE.decode_domain, data)
        python = _raised(NATIVE._decode_domain_python, data)
        assert type(ours) is CodecError, case
        assert str(ours) == str(python), case
        assert type(ours.__cause__) is type(python.__cause__), case
        assert str(ours.__cause__) == str(python.__cause__), case
    assert "unbalanced" in str(_raised(NATIVE.decode_domain, cases["invalid"]))
    envelope, obj = NATIVE.decode_domain(good)
    assert (envelope, obj) == NATIVE._decode_domain_python(good)
    assert NATIVE.decode_domain(bytearray(good)) == (envelope, obj)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        NATIVE.decode_domain(None)  # type: ignore[arg-type]


def test_readers_refuse_bad_arguments() -> None:
    def fallback(data: bytes) -> Any:
        return data

    readers = native.Readers(CodecError, (ValueError,), fallback)
    assert readers.decode_domain(b"short") == b"short"  # not framed: the fallback's answer
    encoder = NATIVE._domain_writers[Deposited].__self__  # type: ignore[attr-defined]
    decoder = NATIVE._domain_readers[NATIVE.schema_id("Deposited")].decode.__self__  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        readers.add(1, encoder, "s", "n", None)
    with pytest.raises(TypeError):
        readers.add(1, decoder, "s", "n", 5)
    with pytest.raises(TypeError):
        native.Readers(5, (ValueError,), fallback)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.Readers(CodecError, (ValueError,), None)
    readers.add(7, decoder, "tradex.account.Deposited", "Deposited", None)
    data = NATIVE.encode_domain(samples()[0], ENV).data
    wire_id = int.from_bytes(data[1:5], "big")
    readers.add(wire_id, decoder, "tradex.account.Deposited", "Deposited", None)
    assert readers.decode_domain(data)[1] == samples()[0]


@pytest.mark.parametrize("obj", samples(), ids=lambda o: type(o).__name__)
@settings(max_examples=60, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
       cut=st.integers(-60, 3))  # fmt: skip
def test_mangled_bytes_decode_like_the_twin_or_raise_codec_error(
    obj: Any, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(NATIVE.encode_domain(obj, ENV).data)
    for index, value in edits:
        if index < len(data):
            data[index] = value
    mangled = bytes(data[:cut] if cut < 0 else data + b"\x00" * cut)
    assert outcome(lambda: NATIVE.decode_domain(mangled)) == outcome(
        lambda: TWIN.decode_domain(mangled)
    )


@pytest.mark.parametrize("name", sorted(BINDINGS))
@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=300))
def test_random_bodies_raise_codec_error_or_decode_like_the_twin(name: str, body: bytes) -> None:
    header = b"\x00" + NATIVE.schema_id(name).to_bytes(4, "big")
    data = header + body
    assert outcome(lambda: NATIVE.decode_domain(data)) == outcome(lambda: TWIN.decode_domain(data))


def test_program_decoder_raises_plain_errors_on_truncation() -> None:
    data = NATIVE.encode_domain(samples()[7], ENV).data
    decode = NATIVE._domain_readers[NATIVE.schema_id("FillSettled")].decode
    assert decode(data)[2] == len(data)
    for size in range(len(data) - HASH_SIZE):  # every cut inside the body
        with pytest.raises((IndexError, ValueError)):
            decode(data[:size])
    with pytest.raises(TypeError):
        decode(bytearray(data))  # type: ignore[arg-type]


def _bad_values() -> list[Any]:
    good = samples()[0]
    order = samples()[4]
    return [
        good._replace(amount="5"),
        good._replace(amount=5.0),
        good._replace(account_id=1 << 63),
        good._replace(account_id=-(1 << 63) - 1),
        good._replace(asset=None),
        good._replace(asset=b"USD"),
        good._replace(asset="\ud800"),  # a lone surrogate: no UTF-8
        good._replace(postings=((1, "USD"),)),
        good._replace(postings=5),
        good._replace(postings=(None,)),
        order._replace(side="HOLD"),
        order._replace(side=1),
        order._replace(side=["BUY"]),
        Deposited("c1", 1, 5, "USD", 1 << 64, (Posting(1, "USD", 5),)),
    ]


@pytest.mark.parametrize("bad", _bad_values(), ids=repr)
def test_bad_values_raise_codec_error_in_both(bad: Any) -> None:
    for codec in (NATIVE, TWIN):
        with pytest.raises(CodecError):
            codec.encode_domain(bad, ENV)


def test_rows_as_lists_and_bools_as_ints_encode_like_the_twin() -> None:
    good = samples()[0]
    odd = good._replace(postings=[[1, "USD", 5], (-1, "USD", -5)], amount=True)
    assert NATIVE.encode_domain(odd, ENV) == TWIN.encode_domain(odd, ENV)


def test_prev_hash_and_size_limits() -> None:
    good = samples()[0]
    for codec in (NATIVE, TWIN):
        with pytest.raises(CodecError, match="prev_hash"):
            codec.encode_domain(good, ENV, b"short")
    big = good._replace(command_id="x" * (RECORD_SIZE_MAX + 1))
    for codec in (NATIVE, TWIN):
        with pytest.raises(CodecError, match="RECORD_SIZE_MAX"):
            codec.encode_domain(big, ENV)
    fits = good._replace(command_id="x" * (RECORD_SIZE_MAX - 400))
    assert NATIVE.encode_domain(fits, ENV) == TWIN.encode_domain(fits, ENV)


@settings(max_examples=200, deadline=None)
@given(prev_hash=st.binary(min_size=32, max_size=32), body=st.binary(max_size=600))
def test_sha256_of_the_chain(prev_hash: bytes, body: bytes) -> None:
    expected = hashlib.sha256(prev_hash + body).digest()
    assert native.chain_hash(prev_hash, body) == expected
    assert native.sha256_portable(prev_hash + body) == expected


def test_sha256_backend_is_named() -> None:
    assert native.SHA256_BACKEND in ("openssl", "portable")
    assert native.sha256_portable(b"") == hashlib.sha256(b"").digest()
    assert native.chain_hash(ZERO_HASH, b"abc") == hashlib.sha256(ZERO_HASH + b"abc").digest()


def test_program_refuses_bad_op_trees() -> None:
    header = b"\x00\x00\x00\x00\x01"
    long_op = (compile_native.OP_LONG, compile_native.SRC_ROW, 0, 0, 0, None, None, 0)
    native.Program.encoder((long_op,), 1, 6, header, Sealed)  # fine
    bad_trees: list[tuple[Any, ...]] = [
        ((99, 0, 0, 0, 0, None, None, 0),),  # unknown code
        ((compile_native.OP_LONG, 0, 5, 0, 0, None, None, 0),),  # outside the row
        ((compile_native.OP_LONG, 0, 0),),  # short op
        ((compile_native.OP_ARRAY, 0, 0, 0, 0, None, None, 0),),  # array without its item
        ((compile_native.OP_ENUM, 0, 0, 2, 0, None, None, 0),),  # enum without symbols
        ((compile_native.OP_LONG, compile_native.SRC_FIELDS, 9, 0, 0, None, None, 0),),
        ((compile_native.OP_LONG, compile_native.SRC_CONST, 0, 0, 0, None, None, 0),),
    ]
    for ops in bad_trees:
        with pytest.raises(ValueError):
            native.Program.encoder(ops, 1, 6, header, Sealed)
    with pytest.raises(ValueError):
        native.Program.encoder((long_op,), 1, 6, b"\x00", Sealed)  # header of 1 byte
    with pytest.raises(TypeError):
        native.Program.encoder((long_op,), 1, 6, header, dict)
    read_long = (compile_native.OP_LONG, 0, 1, 0, 0, None, None, 0)
    with pytest.raises(ValueError, match="never filled"):
        native.Program.decoder((read_long,), 1, Sealed)  # slot 0 (the envelope) unfilled
    with pytest.raises(ValueError, match="filled twice"):
        native.Program.decoder((read_long, read_long), 0, Sealed)
    deep: Any = (compile_native.OP_LONG, compile_native.SRC_SELF, 0, 0, 0, None, None, 0)
    for _ in range(native.NESTING_MAX + 1):
        deep = (compile_native.OP_ARRAY, compile_native.SRC_SELF, 0, 0, 0, None, (deep,), 0)
    top = (deep[0], compile_native.SRC_ROW, *deep[2:])
    with pytest.raises(ValueError, match="too deep"):
        native.Program.encoder((top,), 1, 6, header, Sealed)


def test_encoder_cannot_decode_and_decoder_cannot_encode() -> None:
    obj = samples()[0]
    encoder = NATIVE._domain_writers[type(obj)].__self__  # type: ignore[attr-defined]
    decoder = NATIVE._domain_readers[NATIVE.schema_id("Deposited")].decode.__self__  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        encoder.decode_domain(b"\x00" * 40)
    with pytest.raises(TypeError):
        decoder.encode_domain(obj, ENV, ZERO_HASH)
    with pytest.raises(TypeError):
        encoder.encode_domain(obj, ENV)


@pytest.mark.parametrize("obj", samples(), ids=lambda o: type(o).__name__)
def test_appender_matches_encode_domain_in_c_and_in_the_twin(obj: Any) -> None:
    class Out(NamedTuple):
        topic: str
        value: bytes
        key: bytes | None
        partition: int

    prev_hash = bytes(range(32))
    sealed = TWIN.encode_domain(obj, ENV, prev_hash)
    for codec in (NATIVE, TWIN):
        outputs: list[Any] = []
        append = codec.appender(type(obj))
        digest = append(outputs, Out, "topic", b"key", 3, obj, prev_hash, *ENV)
        assert digest == sealed.hash
        assert outputs == [Out("topic", sealed.data, b"key", 3)]
        assert type(outputs[0]) is Out
    assert type(NATIVE.appender(type(obj))) is BuiltinFunction
    with pytest.raises(TypeError):
        NATIVE.appender(type(obj))(None, Out, "t", None, -1, obj, prev_hash, *ENV)
    with pytest.raises(TypeError):
        NATIVE.appender(type(obj))([], dict, "t", None, -1, obj, prev_hash, *ENV)
    with pytest.raises(TypeError):
        NATIVE.appender(type(obj))([], Out, "t", None, -1, obj, prev_hash)


JUNK = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(LONG_MIN, LONG_MAX),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.binary(max_size=40),
        st.sampled_from(["BUY", "SELL", "USD", "GTC", "NONE", "MAKER", "FILLED"]),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner, inner),
    max_leaves=8,
)


@pytest.mark.parametrize("obj", samples(), ids=lambda o: type(o).__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_junk_field_values_encode_like_the_twin_or_raise_codec_error(
    obj: Any, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(obj) - 1))
    values = list(obj)
    values[index] = data.draw(JUNK)
    bad = type(obj)(*values)
    assert outcome(lambda: NATIVE.encode_domain(bad, ENV)) == outcome(
        lambda: TWIN.encode_domain(bad, ENV)
    )
