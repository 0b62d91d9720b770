from __future__ import annotations

import pytest

from tests.schemas.samples import samples
from tradex.domain import Deposited, Posting
from tradex.schemas.bindings import BINDINGS
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
