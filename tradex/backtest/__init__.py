"""``tradex backtest``: the real matching engine re-run over a recorded ``order-requests``
stream with changes (docs/backtest.md)."""
