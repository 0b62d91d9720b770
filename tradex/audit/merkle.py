"""Merkle trees over the records of a log segment (RFC 6962's shape, SHA-256).

A signed checkpoint carries, per chained partition, the root of the tree over the records
it adds to the previous checkpoint; one record's inclusion is then proven by its bytes and
``log2(n)`` sibling hashes (:func:`audit_path`, :func:`root_from_path`), without the rest
of the log.

    leaf  = SHA-256(0x00 || offset (8 bytes) || key mark (4 bytes) || key || value mark || value)
    node  = SHA-256(0x01 || left || right)

(big endian; key mark = 0 for no key, else its length + 1; value mark = 0 for no value,
else 1: the fields cannot be shifted into one another.)

Offsets are bound into the leaves, so a proof also proves the record's position. The tree
is RFC 6962's (the left subtree holds the largest power of two below n leaves), built
bottom-up: an odd node at the end of a level is carried up unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()  # the root of no records (RFC 6962: hash of the empty string)
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
leaves_max = 1 << 40  # far beyond any segment; paths are at most 40 hashes


_LEAF_HEAD = struct.Struct(">cQI")


def leaf_hash(offset: int, key: bytes | None, value: bytes | None) -> bytes:
    """The leaf of the record at ``offset``: one SHA-256 over all of its bytes."""
    assert 0 <= offset < 1 << 63, offset
    digest = sha256(_LEAF_HEAD.pack(LEAF_PREFIX, offset, 0 if key is None else len(key) + 1))
    if key:
        digest.update(key)
    if value is None:
        digest.update(b"\x00")
    else:
        digest.update(b"\x01")
        digest.update(value)
    return digest.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    assert len(left) == HASH_SIZE, len(left)
    assert len(right) == HASH_SIZE, len(right)
    return sha256(NODE_PREFIX + left + right).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def root(leaves: Sequence[bytes]) -> bytes:
    """The root over ``leaves`` in order (:data:`EMPTY_ROOT` for none)."""
    assert len(leaves) < leaves_max, len(leaves)
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root, bottom first (levels where the
    node has no sibling are skipped, as :func:`root_from_path` expects)."""
    assert 0 <= index < len(leaves), (index, len(leaves))
    path: list[bytes] = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _next_level(level)
        index //= 2
    return path


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``leaf`` at ``index`` of a tree of ``size`` leaves and its ``path``
    give; None when the path has the wrong length for that place."""
    if not 0 <= index < size or size >= leaves_max:
        return None
    node, width, used = leaf, size, 0
    while width > 1:
        if index ^ 1 < width:
            if used == len(path) or len(path[used]) != HASH_SIZE:
                return None
            sibling = path[used]
            used += 1
            node = node_hash(sibling, node) if index % 2 else node_hash(node, sibling)
        width = (width + 1) // 2
        index //= 2
    return node if used == len(path) else None
