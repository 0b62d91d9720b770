"""The idempotency window's eviction (tradex.domain.window)."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from tradex.domain.window import forget_oldest


def test_forget_oldest_drops_the_first_inserted_key_of_a_plain_dict() -> None:
    memory = {"c": 1, "a": 2, "b": 3}
    kept = forget_oldest(memory)
    assert type(kept) is OrderedDict
    assert list(kept.items()) == [("a", 2), ("b", 3)]


def test_forget_oldest_keeps_using_an_ordered_dict() -> None:
    memory = OrderedDict({"c": 1, "a": 2, "b": 3})
    kept = forget_oldest(memory)
    assert kept is memory
    assert list(kept) == ["a", "b"]
    kept["c"] = 4  # re-inserted: now the newest
    assert list(forget_oldest(kept)) == ["b", "c"]


def test_forget_oldest_of_nothing_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        forget_oldest({})
