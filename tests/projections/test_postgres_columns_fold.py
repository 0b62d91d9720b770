"""The columnar fold of order facts (:class:`_OrderFacts`) equals :func:`orders_fold.apply`
fact by fact, on random facts: set-once columns, sums, times and picks by offset."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradex.projections import orders_fold
from tradex.projections.postgres_columns import _OrderFacts

SET_COLUMNS = ("account_id", "side", "command_id", "engine_end")
SUM_COLUMNS = ("filled_qty", "fees", "trades")


def _set_value(column: str, order_id: int) -> Any:
    """One value per (column, order): facts about one order never contradict."""
    return order_id * 7 if column == "account_id" else f"{column}-{order_id % 3}"


fact = st.fixed_dictionaries({
    "order_id": st.integers(1, 12),
    "time": st.integers(0, 10**6),
    "sets": st.lists(st.sampled_from(SET_COLUMNS), unique=True, max_size=3),
    "sums": st.lists(st.tuples(st.sampled_from(SUM_COLUMNS), st.integers(0, 1000)),
                     unique_by=lambda x: x[0], max_size=2),
    "pick": st.one_of(st.none(), st.tuples(st.sampled_from(("amend", "refused")),
                                           st.integers(0, 10**4))),
})  # fmt: skip


def _grouped(facts: list[dict[str, Any]]) -> _OrderFacts:
    """The facts added the way the columnar fold adds them: one group per shape."""
    out = _OrderFacts()
    for f in facts:
        ids = np.array([f["order_id"]], np.int64)
        times = np.array([f["time"]], np.int64)
        sets = {c: np.array([_set_value(c, f["order_id"])], dtype=object) for c in f["sets"]}
        sums = {c: np.array([v], np.int64) for c, v in f["sums"]}
        pick = None
        if f["pick"] is not None:
            which, offset = f["pick"]
            if which == "amend":
                picked = {"amended_price": np.array([offset % 97], np.int64),
                          "amended_qty": np.array([offset % 13], np.int64)}  # fmt: skip
                pick = ("amend_offset", np.array([offset], np.int64), picked)
            else:
                picked = {"refused_request": np.array([f"r{offset % 5}"], dtype=object),
                          "refused_reason": np.array([f"x{offset % 7}"], dtype=object)}  # fmt: skip
                pick = ("refused_offset", np.array([offset], np.int64), picked)
        out.add(ids, times, sets, sums, pick)
    return out


def _applied(facts: list[dict[str, Any]]) -> dict[int, list[Any]]:
    rows: dict[int, list[Any]] = {}
    index = orders_fold.INDEX
    for f in facts:
        oid = f["order_id"]
        sets = tuple((index[c], _set_value(c, oid)) for c in f["sets"])
        sums = tuple((index[c], v) for c, v in f["sums"])
        pick = None
        if f["pick"] is not None:
            which, offset = f["pick"]
            if which == "amend":
                pick = (index["amend_offset"], offset, (
                    (index["amended_price"], offset % 97), (index["amended_qty"], offset % 13)))  # fmt: skip
            else:
                pick = (index["refused_offset"], offset, (
                    (index["refused_request"], f"r{offset % 5}"),
                    (index["refused_reason"], f"x{offset % 7}")))  # fmt: skip
        orders_fold.apply(rows, (oid, f["time"], sets, sums, pick))
    return rows


@settings(max_examples=200, deadline=None)
@given(st.lists(fact, max_size=40))
def test_the_columnar_fold_equals_apply(facts: list[dict[str, Any]]) -> None:
    # picks with equal offsets on one order have no defined winner: keep offsets distinct
    seen: set[tuple[int, str, int]] = set()
    for f in facts:
        if f["pick"] is not None:
            key = (f["order_id"], f["pick"][0], f["pick"][1])
            if key in seen:
                f["pick"] = None
            seen.add(key)
    assert _grouped(facts).fold() == _applied(facts)


def test_a_contradiction_is_an_error() -> None:
    facts = _OrderFacts()
    one = np.array([5], np.int64)
    facts.add(one, one, {"side": np.array(["BUY"], dtype=object)})
    facts.add(one, one, {"side": np.array(["SELL"], dtype=object)})
    with pytest.raises(AssertionError, match="order 5: side is"):
        facts.fold()
