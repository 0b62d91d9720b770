"""The pure parts of the report and of strategies: charts, levels, loading a strategy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradex.backtest import svg
from tradex.backtest.market import Levels, Market
from tradex.backtest.strategy import load
from tradex.matching.constants import SIDE_BUY, SIDE_SELL


def test_charts_are_byte_stable_with_round_axis_values() -> None:
    series = [svg.Series("history", "#888", [0, 10, 20], [100, 103, 101]),
              svg.Series("backtest", "#00f", [0, 10, 20], [100, 99, 104])]  # fmt: skip
    one = svg.line_chart("price", series, "input position")
    assert one == svg.line_chart("price", series, "input position")
    assert one.startswith("<svg") and one.count("<polyline") == 2
    assert svg._ticks(99, 104) == [100, 102, 104]
    assert svg._ticks(95, 106) == [95, 100, 105]
    assert svg._ticks(0, 2960) == [0, 1000, 2000]
    assert "no data" in svg.line_chart("empty", [svg.Series("a", "#000", [], [])], "x")
    bars = svg.bar_chart("pnl", ["7", "8"], [svg.Series("h", "#888", [], [5, -3])])
    assert bars.count("<rect") == 3  # the frame and two bars


def test_levels_keep_the_best_price_through_removals() -> None:
    bids = Levels(bids=True)
    for price, qty in ((10, 1), (12, 2), (11, 3)):
        bids.set(price, qty)
    assert bids.best() == 12
    bids.set(12, 0)
    assert bids.best() == 11
    assert bids.top(5) == ((11, 3), (10, 1))
    market = Market()
    rows = np.array([[1, 1, SIDE_BUY, 9, 2, 0], [2, 1, SIDE_BUY, 9, 1, 0],
                     [3, 2, SIDE_SELL, 12, 4, 0]], np.int64)  # fmt: skip
    market.seed(1, rows)
    assert market.book(1).bids.top(1) == ((9, 3),)
    assert market.book(1).spread() == 3


def test_loading_a_strategy_names_what_is_wrong(tmp_path: Path) -> None:
    file = tmp_path / "s.py"
    file.write_text(
        "def quote(view):\n    return []\n\nclass Maker:\n    def __call__(self, view):\n        return []\n\nNUMBER = 3\n"
    )
    assert load(f"{file}:quote")(None) == []  # type: ignore[arg-type]
    assert callable(load(f"{file}:Maker"))
    for spec, why in ((f"{file}:missing", "has no missing"), (f"{file}:NUMBER", "not callable"),
                      ("no_such_module_x:f", "cannot import"), ("nocolon", "expected")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            load(spec)
