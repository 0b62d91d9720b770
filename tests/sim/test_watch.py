"""The trades hash: per instrument in trade id order, blind to how instruments interleave,
times relative to the run's start."""

from __future__ import annotations

import pytest

from tradex.domain import Side
from tradex.domain.engine import Trade
from tradex.sim.watch import TradesDigest


def trade(instrument: int, trade_id: int, price: int = 100, time_ns: int = 1_000) -> Trade:
    return Trade(instrument, trade_id, price, 2, Side.BUY, 3, 4, 5, 6, time_ns)


def digest(trades: list[Trade], start_ns: int = 0) -> str:
    d = TradesDigest(start_ns)
    for t in trades:
        d.add(t)
    return d.hexdigest()


def test_interleaving_of_instruments_does_not_matter_and_content_does() -> None:
    a1, a2, b1 = trade(1, 1), trade(1, 2), trade(2, 1)
    assert digest([a1, b1, a2]) == digest([b1, a1, a2]) == digest([a1, a2, b1])
    assert digest([a1, a2, b1]) != digest([a1, trade(1, 2, price=101), b1])
    assert digest([a1, a2]) != digest([a1, a2, b1])


def test_times_count_from_the_start() -> None:
    assert digest([trade(1, 1, time_ns=1_500)], 500) == digest([trade(1, 1, time_ns=2_500)], 1_500)
    assert digest([trade(1, 1, time_ns=1_500)], 500) != digest([trade(1, 1, time_ns=1_500)], 0)


def test_a_trade_out_of_order_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="out of order"):
        digest([trade(1, 2), trade(1, 1)])
