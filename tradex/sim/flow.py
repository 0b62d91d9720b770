"""The order flow of a run: every instrument's agents, stepped in a fixed order.

    for emit in order_flow(config, market, start_ns):
        emit.command      # stamped: event_time_ns = start_ns + n * config.step_ns
        emit.target       # cancel / amend: the PlaceOrder command id whose order it names

Steps run instrument after instrument (0, 1, …, then the next step); within a step an
instrument's fair value moves first, then its treasury, makers and one taker draw act, in
that order. The flow stops after ``config.commands`` commands. Everything is a function of
``(config.seed, config.instruments, config.accounts, config.commands)`` (and of
``start_ns``/``config.rate`` for the event times): docs/sim.md, "Determinism".
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterator

from tradex.sim.agents import (
    HISTORY_STEPS_MAX,
    Emit,
    FokUser,
    MarketMaker,
    MeanReversionTaker,
    MomentumTaker,
    NoiseTaker,
    PostOnlyUser,
    Sweeper,
    Taker,
    Treasury,
    View,
)
from tradex.sim.config import SimConfig
from tradex.sim.fair_value import MICRO, FairValue, PathParams
from tradex.sim.market import QUOTE, Market, SimInstrument

SEED_MIX = 1_000_003  # instrument i's generator: seed * SEED_MIX + i
HISTORY_MAX = HISTORY_STEPS_MAX  # fair values kept (makers' fill model, momentum takers)
EMA_SHIFT = 6  # the moving average's weight: 1 / 64 per step
EMPTY_STEPS_MAX = 1_000_000  # consecutive steps without a command (cannot happen: a bug)
MAKERS_MIN, MAKERS_MAX = 2, 6
TAKER_ACTION_PCT = 100  # steps on which one taker acts
# the takers' share of the accounts and of the actions (percent)
ROLE_ACCOUNTS_PCT = {"sweep": 3, "fok": 8, "post": 15, "momentum": 12, "meanrev": 12}
ROLE_ACTIONS = (("noise", 45), ("momentum", 12), ("meanrev", 12), ("post", 15), ("fok", 8),
                ("sweep", 1))  # fmt: skip


def split_roles(accounts: tuple[int, ...]) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    """(maker accounts, taker accounts by role) — every role at least one account."""
    makers = max(MAKERS_MIN, min(MAKERS_MAX, len(accounts) // 20))
    rest = accounts[makers:]
    roles: dict[str, tuple[int, ...]] = {}
    at = 0
    for role, pct in ROLE_ACCOUNTS_PCT.items():
        n = max(1, len(rest) * pct // 100)
        roles[role] = rest[at : at + n]
        at += n
    roles["noise"] = rest[at:]
    assert all(roles.values()), "too few accounts for every role"
    return accounts[:makers], roles


class InstrumentFlow:
    """One instrument's fair value and agents; :meth:`step` gives its commands of a step."""

    def __init__(self, config: SimConfig, market: Market, item: SimInstrument) -> None:
        spec = item.spec
        self.rng = random.Random(config.seed * SEED_MIX + item.index)
        self.fair = FairValue(spec.start_ticks, self.rng, PathParams())
        counter = itertools.count()
        prefix = f"{config.tag}{config.seed}.{item.index}."
        self.view = View(
            item.instrument_id, spec.lot_size, self.rng, lambda: f"{prefix}{next(counter)}",
            self.fair.ticks, deque(maxlen=HISTORY_MAX), self.fair.ticks * MICRO,
        )  # fmt: skip
        maker_accounts, roles = split_roles(item.accounts)
        self.makers = [
            MarketMaker(account, half_spread_bps=2 + n, levels=3, unit_lots=4 + 2 * (n % 3),
                        requote_steps=10 + 3 * n, phase=n, tolerance_bps=2)
            for n, account in enumerate(maker_accounts)
        ]  # fmt: skip
        self.takers: dict[str, Taker] = {
            "noise": NoiseTaker(roles["noise"], unit_lots=1, cap_lots=8),
            "momentum": MomentumTaker(roles["momentum"], unit_lots=2, cap_lots=12),
            "meanrev": MeanReversionTaker(roles["meanrev"], unit_lots=2, cap_lots=12),
            "post": PostOnlyUser(roles["post"], unit_lots=1, cap_lots=6),
            "fok": FokUser(roles["fok"], unit_lots=1, cap_lots=10),
            "sweep": Sweeper(roles["sweep"], unit_lots=10, cap_lots=30),
        }
        self.actions = [role for role, weight in ROLE_ACTIONS for _ in range(weight)]
        funding = market.funding(item)
        self.treasury = Treasury(
            item.accounts, market.admins,
            ((QUOTE, 100_00), (spec.base, spec.lot_size)),
        )  # fmt: skip
        assert funding[QUOTE] > 0

    def step(self, k: int) -> list[Emit]:
        view = self.view
        view.history.append(view.fair_ticks)
        view.step = k
        view.fair_ticks = self.fair.advance()
        view.ema_micro += (view.fair_ticks * MICRO - view.ema_micro) >> EMA_SHIFT
        out = self.treasury.act(view)
        for maker in self.makers:
            out += maker.act(view)
        if view.chance(TAKER_ACTION_PCT):
            out += self.takers[self.rng.choice(self.actions)].act(view)
        return out


def order_flow(config: SimConfig, market: Market, start_ns: int) -> Iterator[Emit]:
    """The run's commands in submission order, stamped (see the module doc)."""
    flows = [InstrumentFlow(config, market, item) for item in market.instruments]
    n, step_ns, empty = 0, config.step_ns, 0
    for k in itertools.count():
        before = n
        for flow in flows:
            for emit in flow.step(k):
                if n == config.commands:
                    return
                yield emit._replace(command=emit.command._replace(event_time_ns=start_ns +
                                                                  n * step_ns))  # fmt: skip
                n += 1
        empty = 0 if n > before else empty + 1
        assert empty < EMPTY_STEPS_MAX, "the flow stopped producing commands"
