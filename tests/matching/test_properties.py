"""Hypothesis: short arbitrary command sequences agree between engine and reference."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradex.matching.book import Book, OutputBuffers
from tradex.matching.dtypes import COMMAND_DTYPE
from tradex.matching.reference import ReferenceBook

PRICE_LEVELS_MAX = 4096
ORDERS_MAX = 64

command = st.tuples(
    st.integers(0, 9),  # op, incl. unknown ones
    st.integers(-1, 2),  # side
    st.integers(-1, 12),  # order_id: few ids, so cancels/amends/duplicates hit
    st.integers(1, 3),  # owner: STP happens
    st.integers(-1, 110),  # price
    st.integers(-1, 12),  # qty
    st.integers(-1, 5),  # stp_mode
    st.integers(-2, 3),  # protection_ticks
    st.integers(-1, 2000),  # band_bps
    st.integers(0, 2),  # halted
    st.just(0),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(command, min_size=1, max_size=60))
def test_engine_equals_reference_on_any_sequence(rows: list[tuple[int, ...]]) -> None:
    cmds = np.array(rows, dtype=COMMAND_DTYPE)
    engine = Book(orders_max=ORDERS_MAX, price_levels_max=PRICE_LEVELS_MAX)
    ref = ReferenceBook(orders_max=ORDERS_MAX, price_levels_max=PRICE_LEVELS_MAX)
    got = engine.process_all(cmds, OutputBuffers(ORDERS_MAX))
    want = ref.process(cmds)
    assert np.array_equal(got.trades, want.trades)
    assert np.array_equal(got.events, want.events)
    assert np.array_equal(got.l2, want.l2)
    assert engine.state_hash() == ref.state_hash()
    engine.validate_internal_state()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 4095), min_size=1, max_size=200, unique=True))
def test_bitmap_finds_neighbours(indices: list[int]) -> None:
    from tradex.matching.bitmap import bit_set, find_next, find_prev

    lo = np.zeros(PRICE_LEVELS_MAX // 64, np.int64)
    hi = np.zeros(1, np.int64)
    for i in indices:
        bit_set(lo, hi, i)
    s = sorted(indices)
    for probe in (0, 1, 63, 64, 2000, 4095, *s[:5]):
        below = [i for i in s if i <= probe]
        above = [i for i in s if i >= probe]
        assert find_prev(lo, hi, probe) == (below[-1] if below else -1)
        assert find_next(lo, hi, probe) == (above[0] if above else -1)
