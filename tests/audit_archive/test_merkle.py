"""The segment Merkle tree: RFC 6962's tree, and audit paths that prove only what they must."""

from __future__ import annotations

from hashlib import sha256

from hypothesis import given
from hypothesis import strategies as st

from tradex.audit import merkle


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written as the RFC says it (the slow, obvious twin)."""
    if not leaves:
        return sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha256(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:])).digest()


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i, b"k", i.to_bytes(4, "big")) for i in range(n)]


def test_root_is_rfc6962_for_every_size_to_70() -> None:
    for n in range(71):
        assert merkle.root(leaves_of(n)) == rfc6962_root(leaves_of(n)), n


def test_every_leaf_proves_and_nothing_else_does() -> None:
    for n in range(1, 40):
        leaves = leaves_of(n)
        top = merkle.root(leaves)
        for index in range(n):
            path = merkle.audit_path(leaves, index)
            assert len(path) <= n.bit_length()
            assert merkle.root_from_path(leaves[index], index, n, path) == top
            other = merkle.leaf_hash(index, b"k", b"forged")
            assert merkle.root_from_path(other, index, n, path) != top
            if n > 1:
                assert merkle.root_from_path(leaves[index], (index + 1) % n, n, path) != top
            assert merkle.root_from_path(leaves[index], index, n, [*path, top]) is None


def test_the_offset_is_bound_into_the_leaf() -> None:
    assert merkle.leaf_hash(1, None, b"v") != merkle.leaf_hash(2, None, b"v")
    assert merkle.leaf_hash(1, b"a", b"v") != merkle.leaf_hash(1, b"b", b"v")


@given(st.lists(st.binary(min_size=0, max_size=8), min_size=1, max_size=300), st.data())
def test_paths_round_trip(values: list[bytes], data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i, None, v) for i, v in enumerate(values)]
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.audit_path(leaves, index)
    assert merkle.root_from_path(leaves[index], index, len(leaves), path) == rfc6962_root(leaves)
