"""The C chain check against its slow, obvious twin (``tradex.schemas.chain.verify_chain``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tradex.audit import _audit_native as native
from tradex.domain import Deposited, Posting
from tradex.schemas.chain import HASH_SIZE, ZERO_HASH, verify_chain
from tradex.schemas.codec import Codec, EnvelopeFields

CODEC = Codec.offline()


def _chain(n: int) -> list[bytes]:
    values, prev = [], ZERO_HASH
    for i in range(n):
        event = Deposited(f"c{i}", 7, 1_000 + i, "USD", 100 + i,
                          (Posting(7, "USD", 100 + i), Posting(-1, "USD", -100 - i)))  # fmt: skip
        sealed = CODEC.encode_domain(
            event, EnvelopeFields(f"e{i}", f"c{i}", f"c{i}", "p/0", i), prev
        )
        values.append(sealed.data)
        prev = sealed.hash
    return values


def _check(values: list[bytes], batch: int) -> list[int]:
    heads = np.zeros((1, HASH_SIZE), np.uint8)
    started = np.zeros(1, np.uint8)
    status: list[int] = []
    for at in range(0, len(values), batch):
        part = values[at : at + batch]
        offsets = np.zeros(len(part) + 1, np.int64)
        np.cumsum([len(v) for v in part], out=offsets[1:])
        chain = np.zeros(len(part), np.int32)
        found = native.chain_check(b"".join(part), offsets, chain, heads, started)
        status += list(found)
    return status


def _prev_hash(value: bytes) -> bytes:
    return bytes(CODEC.decode(value).record["envelope"]["prev_hash"])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    edits=st.lists(st.tuples(st.sampled_from(["flip", "drop", "swap"]), st.integers(0, 11),
                            st.integers(6, 200)), max_size=3),
    batch=st.integers(1, 5),
)  # fmt: skip
def test_the_c_check_finds_what_verify_chain_finds(
    n: int, edits: list[tuple[str, int, int]], batch: int
) -> None:
    values = _chain(n)
    for kind, index, byte in edits:
        if not values:
            break
        i = index % len(values)
        if kind == "flip":
            v = bytearray(values[i])
            v[byte % len(v)] ^= 0x01
            values[i] = bytes(v)
        elif kind == "drop":
            del values[i]
        elif len(values) > 1:
            j = (i + 1) % len(values)
            values[i], values[j] = values[j], values[i]
    status = _check(values, batch)
    # the twin, on the records whose envelope still decodes (prev_hash read by the codec)
    links = []
    for value in values:
        try:
            links.append((_prev_hash(value), value))
        except Exception:
            links.append((b"?" * HASH_SIZE, value))
    problems = verify_chain(links)
    flagged = {int(p.split()[1].rstrip(":")) for p in problems}
    decodable = [not link[0].startswith(b"?") for link in links]
    for i, s in enumerate(status):
        if decodable[i] and s != native.CHAIN_BAD_ENVELOPE:
            assert (s != 0) == (i in flagged), (i, s, problems)
    assert (not edits) <= (status == [0] * len(values))


def test_a_clean_chain_passes_across_batches_and_a_bad_link_is_flagged() -> None:
    values = _chain(6)
    assert _check(values, 4) == [0] * 6
    swapped = [values[0], values[2], values[1], *values[3:]]
    status = _check(swapped, 2)
    assert status[0] == 0
    assert status[1] & native.CHAIN_BAD_LINK and status[2] & native.CHAIN_BAD_LINK
    assert status[3] & native.CHAIN_BAD_LINK, "the record after the swap links to the wrong one"
    assert not any(s & native.CHAIN_BAD_HASH for s in status), "each record is intact itself"
    short = _check([values[0], b"\x00" * 10, values[1]], 3)
    assert short == [0, native.CHAIN_TOO_SHORT, 0], "a short record leaves the head as it was"
