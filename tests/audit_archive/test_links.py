"""A record's link read from its bytes: the fast path equals the Avro reading of the codec."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradex.audit.links import _read_link_slowly, link_problem, read_link
from tradex.schemas.codec import Codec
from tradex.schemas.envelope import EnvelopeFields

CODEC = Codec.offline()
text = st.text(st.characters(codec="utf-8"), max_size=90)


def sealed(event_id: str, producer: str, correlation: str, seq: int, prev: bytes) -> bytes:
    from tradex.domain.events import Deposited, Posting

    event = Deposited(
        "command-1", 7, 10**18, "USD", 5, (Posting(7, "USD", 5), Posting(-1, "USD", -5))
    )
    fields = EnvelopeFields(event_id, "cause", correlation, producer, seq)
    return CODEC.encode_domain(event, fields, prev).data


@settings(max_examples=200)
@given(text, text, text, st.integers(0, 2**62), st.binary(min_size=32, max_size=32))
def test_fast_and_slow_paths_agree_with_the_codec(
    event_id: str, producer: str, correlation: str, seq: int, prev: bytes
) -> None:
    data = sealed(event_id, producer, correlation, seq, prev)
    envelope, _event = CODEC.decode_domain(data)
    link = read_link(data)
    assert link == _read_link_slowly(data)
    assert link is not None
    assert (link.event_id, link.producer, link.prev_hash, link.hash) == (
        envelope.event_id, envelope.producer, envelope.prev_hash, data[-32:],
    )  # fmt: skip
    assert link_problem(data, prev) == (link, "")
    assert (
        "does not link" in link_problem(data, bytes(32) if prev != bytes(32) else b"\x01" * 32)[1]
    )
    changed = bytearray(data)
    changed[-40] ^= 1
    assert "does not match its content" in link_problem(bytes(changed), None)[1]


def test_what_is_not_ours_has_no_link() -> None:
    for value in (None, b"", bytes(10), b"\x01" + bytes(100), bytes(5) + b"\xff" * 80):
        assert read_link(value) is None
        assert link_problem(value, None)[1]
