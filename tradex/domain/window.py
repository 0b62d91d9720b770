"""Idempotency windows: insertion-ordered memories of the last N command ids.

A plain ``dict`` keeps insertion order, but forgetting its oldest key with ``next(iter(d))``
scans every entry freed by earlier deletions (CPython compacts a dict only when it resizes):
at a full window of 10,000 ids that cost ~9 µs per command, more than deciding it. An
``OrderedDict`` pops its oldest key in O(1). A memory starts as a plain dict (cheaper per
insert; snapshots restore it as one) and becomes an ``OrderedDict`` the first time it
overflows; iteration order, and so every fold, is the same either way.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def forget_oldest(memory: dict[K, V]) -> dict[K, V]:
    """Drop the oldest key of ``memory``; return the memory to keep using (``memory``
    itself, or the first time an ``OrderedDict`` copy of it without that key)."""
    assert memory, "nothing to forget"
    size = len(memory)
    ordered = memory if isinstance(memory, OrderedDict) else OrderedDict(memory)
    ordered.popitem(last=False)
    assert len(ordered) == size - 1, "forgot more than one key"
    return ordered
