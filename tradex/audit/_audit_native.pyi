"""Type stub of the auditor's C kernels (source: tradex/audit/_native/audit_native.c)."""

from typing import Any

CHAIN_BAD_HASH: int
CHAIN_BAD_LINK: int
CHAIN_TOO_SHORT: int
CHAIN_BAD_ENVELOPE: int
SHA256_BACKEND: str

def chain_check(
    values: bytes, value_offsets: Any, chain: Any, heads: Any, started: Any, /
) -> bytes: ...
