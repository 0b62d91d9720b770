"""`tradex sim`: a seeded market simulation driving the exchange through its command path.

    market = setup_market(settings, config)        # reference data, accounts, funds
    result = run(settings, config, market, on_tick)  # the agents' flow; SimResult

See docs/sim.md (agents, parameters, the determinism rule).
"""

from tradex.sim.config import ConfigError, SimConfig
from tradex.sim.market import Market, setup_market
from tradex.sim.runner import run
from tradex.sim.stats import SimResult, SimStats

__all__ = ["ConfigError", "Market", "SimConfig", "SimResult", "SimStats", "run", "setup_market"]
