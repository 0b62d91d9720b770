"""TradeX benchmarks: `tradex bench NAME` (see ../shared/bench/README.md conventions)."""
