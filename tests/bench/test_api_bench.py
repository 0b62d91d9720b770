"""`tradex bench api`'s WebSocket figures, without a server: lag from the read model,
age from the trade's engine time, completeness and duplicates per client."""

from __future__ import annotations

import numpy as np

from tradex.bench.api_load import ws_figures


def test_lag_is_from_the_read_model_and_age_from_the_trades_engine_time() -> None:
    # trade 7 made at 100.000 s, in Redis at 100.020; trade 8 made at 100.100, in at 100.130
    appeared = {7: (100.020, 100_000_000_000), 8: (100.130, 100_100_000_000)}
    arrivals = np.array([
        [0, 7, 100.030], [0, 8, 100.140],  # client 0: both, 10 ms after each appeared
        [1, 7, 100.050], [1, 7, 100.050],  # client 1: trade 7 twice, trade 8 never
        [1, 99, 100.200],  # a trade that appeared before the follower looked: not counted
    ])  # fmt: skip
    found = ws_figures(appeared, arrivals, clients=2, dropped=set(), seconds=1.0)
    assert (found["trades"], found["delivered"], found["duplicates"]) == (2, 4, 1)
    assert (found["clients_complete"], found["clients_incomplete_not_dropped"]) == (1, 1)
    assert abs(found["p50_ms"] - 20.0) < 1e-6  # lags 10, 10, 30, 30 ms
    assert abs(found["age_p50_ms"] - 45.0) < 1e-6  # ages 30, 40, 50, 50 ms
    assert abs(found["max_ms"] - 30.0) < 1e-6
    dropped = ws_figures(appeared, arrivals, clients=2, dropped={1}, seconds=1.0)
    assert dropped["clients_incomplete_not_dropped"] == 0
