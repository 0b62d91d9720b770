from __future__ import annotations

from tests.schemas.samples import samples
from tradex.schemas.chain import ZERO_HASH, hash_ok, record_hash, verify_chain
from tradex.schemas.codec import Codec, EnvelopeFields


def chain(codec: Codec, count: int) -> list[tuple[bytes, bytes]]:
    links, prev = [], ZERO_HASH
    for seq, obj in enumerate(samples()[:count]):
        sealed = codec.encode_domain(
            obj, EnvelopeFields(f"e{seq}", "", "", "accounts/0", seq), prev
        )
        envelope, _ = codec.decode_domain(sealed.data)
        assert envelope.prev_hash == prev
        links.append((prev, sealed.data))
        prev = sealed.hash
    return links


def test_intact_chain_verifies() -> None:
    assert verify_chain(chain(Codec.offline(), 10)) == []


def test_changed_removed_and_reordered_records_are_detected() -> None:
    links = chain(Codec.offline(), 10)
    prev, data = links[4]
    changed = bytearray(data)
    changed[30] ^= 1
    assert not hash_ok(prev, bytes(changed))
    assert verify_chain([*links[:4], (prev, bytes(changed)), *links[5:]]) != []
    assert verify_chain(links[:4] + links[5:]) != []  # removed
    assert verify_chain([*links[:4], links[5], links[4], *links[6:]]) != []  # reordered
    # a forger who recomputes the changed record's hash still breaks the next link
    forged = bytes(changed[:-32]) + record_hash(prev, bytes(changed[:-32]))
    assert hash_ok(prev, forged)
    problems = verify_chain([*links[:4], (prev, forged), *links[5:]])
    assert problems == ["record 5: prev_hash does not link to the previous record"]
