"""A projector's lag histogram: counting records by their Kafka timestamps in one numpy pass
(``add_stamps``, the columnar path) equals counting them one by one (``add``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tradex.log.records import LogRecord
from tradex.projections.runner import LAG_MS_MAX, LagHistogram

NOW_MS = 1_800_000_000_000


def record(timestamp_ms: int) -> LogRecord:
    return LogRecord("t", 0, 0, timestamp_ms, None, b"")


@given(st.lists(st.lists(st.integers(-5_000, LAG_MS_MAX + 5_000), max_size=60), max_size=6))
def test_counting_stamps_at_once_equals_counting_records(batches: list[list[int]]) -> None:
    by_stamps, by_records = LagHistogram(), LagHistogram()
    for lags in batches:
        stamps = [NOW_MS - lag for lag in lags]
        by_stamps.add_stamps(np.array(stamps, np.int64), NOW_MS)
        by_records.add([record(s) for s in stamps], NOW_MS)
    assert by_stamps.counts == by_records.counts
    assert by_stamps.total == by_records.total == sum(len(b) for b in batches)
    if by_stamps.total:
        assert by_stamps.percentile(0.99) == by_records.percentile(0.99)


def test_lags_below_zero_and_beyond_the_last_bucket_are_clipped() -> None:
    lag = LagHistogram()
    lag.add_stamps(np.array([NOW_MS + 7, NOW_MS - 3, NOW_MS - LAG_MS_MAX - 9], np.int64), NOW_MS)
    assert (lag.counts[0], lag.counts[3], lag.counts[LAG_MS_MAX], lag.total) == (1, 1, 1, 3)
    assert lag.percentile(1.0) == LAG_MS_MAX
