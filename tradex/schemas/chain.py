"""Tamper evidence: the per-partition SHA-256 hash chain.

Every record ends with its ``hash`` (fixed 32 bytes, the last field of every schema), and
its envelope carries ``prev_hash``, the hash of the previous record the same producer wrote
to the same partition (32 zero bytes at the start of a chain, and for records that are not
chained, such as commands from the API). With ``body`` = the Avro body after the 5-byte
Confluent header:

    hash = SHA-256(prev_hash || body[:-32])

A changed record fails its own hash; a removed or reordered record breaks the link
``prev_hash == hash of the previous record``. The producing stage computes it
(:meth:`tradex.schemas.codec.Codec.seal`); an auditor checks it with :func:`verify_chain`.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha256

HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
HEADER_SIZE = 5  # magic byte + 4-byte schema id


def record_hash(prev_hash: bytes, wire_without_hash: bytes | memoryview) -> bytes:
    """SHA-256(prev_hash || body without hash); ``wire_without_hash`` still has its header."""
    assert len(prev_hash) == HASH_SIZE
    digest = sha256(prev_hash)
    digest.update(memoryview(wire_without_hash)[HEADER_SIZE:])
    return digest.digest()


def hash_ok(prev_hash: bytes, wire: bytes) -> bool:
    """Whether the record's trailing hash matches its content and ``prev_hash``."""
    if len(wire) < HEADER_SIZE + HASH_SIZE:
        return False
    return record_hash(prev_hash, memoryview(wire)[:-HASH_SIZE]) == wire[-HASH_SIZE:]


def verify_chain(links: Iterable[tuple[bytes, bytes]], start_hash: bytes = ZERO_HASH) -> list[str]:
    """Check a partition's chain given (prev_hash from the envelope, wire bytes) per record
    in log order; return the problems found (empty: intact)."""
    problems: list[str] = []
    expected_prev = start_hash
    for index, (prev_hash, wire) in enumerate(links):
        if prev_hash != expected_prev:
            problems.append(f"record {index}: prev_hash does not link to the previous record")
        if not hash_ok(prev_hash, wire):
            problems.append(f"record {index}: hash does not match its content")
        expected_prev = wire[-HASH_SIZE:]
    return problems
