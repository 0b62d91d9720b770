"""The simulated traders of one instrument: pure, seeded, and blind to the live market.

An agent sees only what is the same in every run of a seed (docs/sim.md, "Determinism"):
the instrument's fair-value path, the logical step, its own *requested* orders, and the
seeded ``random.Random`` of its instrument. It never sees fills, acks or the book, whose
timing varies. Each call returns :class:`Emit` records — a command (command id set, event
time 0: the flow stamps it) and, for a cancel or an amend, the command id of the order it
targets (the runner puts in that order's id: its PlaceOrder's log position).

Roles: :class:`MarketMaker` (both sides, several levels around fair value, inventory skew
from a fill *model*, cancel/replace by amend or cancel + place), :class:`NoiseTaker`
(MARKET, IOC, some FOK), :class:`MomentumTaker`, :class:`MeanReversionTaker`,
:class:`Sweeper` (rare large market orders through several levels), :class:`PostOnlyUser`,
:class:`FokUser`, and :class:`Treasury` (deposits, withdrawals and their approval by an
admin other than the requester).
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tradex.domain import (
    ApproveWithdrawal,
    CancelOrder,
    Deposit,
    ModifyOrder,
    OrderKind,
    PlaceOrder,
    RejectWithdrawal,
    RequestWithdrawal,
    Side,
    StpMode,
)

BPS = 10_000
PCT = 100
QUOTE_LEVELS_MAX = 10
HISTORY_STEPS_MAX = 256  # fair values an agent may look back on (the flow keeps as many)
RESTING_MAX = 200  # orders a post-only user keeps; the oldest is cancelled beyond
PENDING_WITHDRAWALS_MAX = 1_000  # per instrument's treasury, waiting for the checker


class Emit(NamedTuple):
    command: Any  # an account command, event_time_ns 0
    target: str = ""  # CancelOrder / ModifyOrder: the command id of the order's PlaceOrder


@dataclass
class View:
    """What every agent of one instrument may look at, updated once per step."""

    instrument_id: int
    lot_size: int
    rng: random.Random
    new_id: Callable[[], str]
    fair_ticks: int
    history: deque[int]  # past fair values in ticks, newest last (bounded)
    ema_micro: int  # a slow moving average of the fair value, in micro-ticks
    step: int = 0

    def ticks_of(self, bps: int) -> int:
        """``bps`` basis points of the fair value, in whole ticks (>= 1)."""
        return max(1, self.fair_ticks * bps // BPS)

    def place(
        self, account: int, side: Side, kind: OrderKind, price: int, qty: int,
        stp: StpMode = StpMode.NONE,
    ) -> Emit:  # fmt: skip
        assert qty > 0, qty
        price = max(1, price)
        return Emit(PlaceOrder(self.new_id(), account, 0, self.instrument_id, side, kind, price,
                               qty, 0, stp, actor=account))  # fmt: skip

    def cancel(self, account: int, target: str) -> Emit:
        return Emit(CancelOrder(self.new_id(), account, 0, 0, actor=account), target)

    def chance(self, percent: int) -> bool:
        return self.rng.randrange(PCT) < percent

    def side(self) -> Side:
        return Side.BUY if self.rng.randrange(2) else Side.SELL

    def qty(self, unit: int, cap: int) -> int:
        """A geometric size: ``unit`` lots, each further unit with probability 0.55."""
        qty = unit
        while qty + unit <= cap and self.rng.randrange(PCT) < 55:
            qty += unit
        return qty


def cross_price(m: View, side: Side, bps: int) -> int:
    """A price ``bps`` through the fair value on the aggressive side."""
    gap = m.ticks_of(bps)
    return m.fair_ticks + gap if side == Side.BUY else m.fair_ticks - gap


@dataclass
class Quote:
    command_id: str  # of the PlaceOrder (an amend keeps the order and its id)
    price: int
    qty: int
    amends: int = 0


@dataclass
class MarketMaker:
    """Quotes ``levels`` bids and asks around fair value minus an inventory skew.

    Its inventory is a model, not its fills: a quote the fair value has moved through is
    taken as filled (bought or sold) and, ``cancel_stale_pct`` of the time, cancelled at
    the next requote (refused as UNKNOWN_ORDER if it was filled), else forgotten — until
    more than ``forgotten_max`` are: then the oldest is cancelled (the maker's open orders
    stay bounded, far below the account's limit, whatever the fills). Every ``requote_steps`` (staggered by ``phase``) each level whose target
    price moved by at least ``tolerance_bps`` is amended in place (``amend_pct`` of the
    time, at most ``amends_max`` times per order: one filled unseen would be refused each
    time) or cancelled and placed anew; new quotes are post-only ``post_only_pct`` of the
    time, else GTC."""

    account: int
    half_spread_bps: int = 3
    level_gap_bps: int = 2
    levels: int = 3
    unit_lots: int = 1
    requote_steps: int = 8
    phase: int = 0
    skew_bps_per_lot: int = 1
    skew_bps_max: int = 20
    tolerance_bps: int = 1
    amend_pct: int = 50
    amends_max: int = 2  # then cancel and place: a quote filled unseen is not amended forever
    post_only_pct: int = 30
    cancel_stale_pct: int = 0  # the rest of the quotes modelled as filled are forgotten
    forgotten_max: int = 200  # ... until this many: then the oldest is cancelled
    inventory_lots: int = 0
    quotes: dict[tuple[Side, int], Quote] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)  # modelled as filled since the requote
    forgotten: deque[str] = field(default_factory=deque)  # modelled as filled, not cancelled

    def __post_init__(self) -> None:
        assert 0 < self.levels <= QUOTE_LEVELS_MAX, self.levels
        assert 0 < self.requote_steps <= HISTORY_STEPS_MAX, self.requote_steps

    def observe(self, low_ticks: int, high_ticks: int) -> None:
        """The fill model: quotes the fair value reached since the last requote (it went
        from ``low_ticks`` to ``high_ticks``) count as filled."""
        for key, quote in list(self.quotes.items()):
            side = key[0]
            if side == Side.BUY and low_ticks <= quote.price:
                self.inventory_lots += quote.qty
            elif side == Side.SELL and high_ticks >= quote.price:
                self.inventory_lots -= quote.qty
            else:
                continue
            self.stale.append(quote.command_id)
            del self.quotes[key]

    def mid_ticks(self, m: View) -> int:
        """Fair value minus the skew: long inventory lowers both quotes (sell more, buy less)."""
        skew_bps = max(-self.skew_bps_max,
                       min(self.skew_bps_max, self.inventory_lots * self.skew_bps_per_lot))  # fmt: skip
        return m.fair_ticks - m.fair_ticks * skew_bps // BPS

    def targets(self, m: View) -> dict[tuple[Side, int], int]:
        mid, half, gap = (
            self.mid_ticks(m),
            m.ticks_of(self.half_spread_bps),
            m.ticks_of(self.level_gap_bps),
        )
        out = {}
        for level in range(self.levels):
            out[(Side.BUY, level)] = max(1, mid - half - level * gap)
            out[(Side.SELL, level)] = mid + half + level * gap
        return out

    def act(self, m: View) -> list[Emit]:
        if (m.step + self.phase) % self.requote_steps:
            return []
        since = [m.fair_ticks, *itertools.islice(reversed(m.history), self.requote_steps - 1)]
        self.observe(min(since), max(since))
        out = []
        for command_id in self.stale:
            if m.chance(self.cancel_stale_pct):
                out.append(m.cancel(self.account, command_id))
            else:
                self.forgotten.append(command_id)
        self.stale.clear()
        while len(self.forgotten) > self.forgotten_max:  # bounds the maker's open orders
            out.append(m.cancel(self.account, self.forgotten.popleft()))
        tolerance = m.ticks_of(self.tolerance_bps)
        for key, price in self.targets(m).items():
            quote = self.quotes.get(key)
            if quote is not None and abs(quote.price - price) < tolerance:
                continue
            if quote is not None and quote.amends < self.amends_max and m.chance(self.amend_pct):
                out.append(Emit(ModifyOrder(m.new_id(), self.account, 0, 0, price, 0,
                                            actor=self.account), quote.command_id))  # fmt: skip
                quote.price = price
                quote.amends += 1
                continue
            if quote is not None:
                out.append(m.cancel(self.account, quote.command_id))
            kind = OrderKind.POST_ONLY if m.chance(self.post_only_pct) else OrderKind.GTC
            qty = m.qty(self.unit_lots * (key[1] + 1), self.unit_lots * (key[1] + 1) * 4)
            # a quote meeting one of the maker's own (one forgotten, still resting) shrinks
            # both instead of trading with itself
            emit = m.place(self.account, key[0], kind, price, qty, StpMode.DECREMENT)
            self.quotes[key] = Quote(emit.command.command_id, price, qty)
            out.append(emit)
        return out


@dataclass
class Taker:
    """Base of the agents that take liquidity: one account of ``accounts`` per action."""

    accounts: tuple[int, ...]
    unit_lots: int = 1
    cap_lots: int = 10

    def __post_init__(self) -> None:
        assert self.accounts, "a taker needs accounts"

    def act(self, m: View) -> list[Emit]:
        raise NotImplementedError


class NoiseTaker(Taker):
    """Random side; MARKET (40 %, protected 1 % through fair value), IOC (50 %, 0–4 bps
    through), FOK (10 %, 2 bps through)."""

    def act(self, m: View) -> list[Emit]:
        account, side = m.rng.choice(self.accounts), m.side()
        qty, roll = m.qty(self.unit_lots, self.cap_lots), m.rng.randrange(PCT)
        if roll < 40:
            return [m.place(account, side, OrderKind.MARKET, cross_price(m, side, 100), qty)]
        if roll < 90:
            price = cross_price(m, side, m.rng.randrange(5))
            return [m.place(account, side, OrderKind.IOC, price, qty)]
        return [m.place(account, side, OrderKind.FOK, cross_price(m, side, 2), qty)]


@dataclass
class MomentumTaker(Taker):
    """Buys after the fair value rose ``threshold_bps`` over ``lookback`` steps, sells after
    it fell as much; otherwise waits."""

    lookback: int = 40
    threshold_bps: int = 5

    def act(self, m: View) -> list[Emit]:
        if len(m.history) <= self.lookback:
            return []
        move = m.fair_ticks - m.history[-1 - self.lookback]
        if abs(move) < m.ticks_of(self.threshold_bps):
            return []
        side = Side.BUY if move > 0 else Side.SELL
        account, qty = m.rng.choice(self.accounts), m.qty(self.unit_lots, self.cap_lots)
        if m.chance(50):
            return [m.place(account, side, OrderKind.MARKET, cross_price(m, side, 100), qty)]
        return [m.place(account, side, OrderKind.IOC, cross_price(m, side, 6), qty)]


@dataclass
class MeanReversionTaker(Taker):
    """Trades against the fair value's deviation from its moving average (IOC)."""

    threshold_bps: int = 4

    def act(self, m: View) -> list[Emit]:
        average = m.ema_micro // 1_000_000
        deviation = m.fair_ticks - average
        if abs(deviation) < m.ticks_of(self.threshold_bps):
            return []
        side = Side.SELL if deviation > 0 else Side.BUY
        account, qty = m.rng.choice(self.accounts), m.qty(self.unit_lots, self.cap_lots)
        return [m.place(account, side, OrderKind.IOC, cross_price(m, side, 4), qty)]


class Sweeper(Taker):
    """A large MARKET order (``cap_lots`` scale) protected 2 % through fair value: it walks
    through several levels of the book."""

    def act(self, m: View) -> list[Emit]:
        account, side = m.rng.choice(self.accounts), m.side()
        qty = self.cap_lots + m.rng.randrange(self.cap_lots * 3)
        return [m.place(account, side, OrderKind.MARKET, cross_price(m, side, 200), qty)]


class FokUser(Taker):
    """FOK orders 0–2 bps through fair value: filled whole or not at all."""

    def act(self, m: View) -> list[Emit]:
        account, side = m.rng.choice(self.accounts), m.side()
        price = cross_price(m, side, m.rng.randrange(3))
        return [m.place(account, side, OrderKind.FOK, price, m.qty(self.unit_lots, self.cap_lots))]


@dataclass
class PostOnlyUser(Taker):
    """Post-only orders from 2 bps through to 12 bps away from fair value (those through it
    are refused: they would take); each is cancelled after its lifetime."""

    lifetime_steps_max: int = 400
    resting: deque[tuple[int, int, str]] = field(default_factory=deque)  # (due, account, id)

    def act(self, m: View) -> list[Emit]:
        out = []
        while self.resting and (self.resting[0][0] <= m.step or len(self.resting) > RESTING_MAX):
            _due, owner, command_id = self.resting.popleft()
            out.append(m.cancel(owner, command_id))
        account, side = m.rng.choice(self.accounts), m.side()
        away = m.ticks_of(m.rng.randrange(-2, 13))
        price = m.fair_ticks - away if side == Side.BUY else m.fair_ticks + away
        emit = m.place(account, side, OrderKind.POST_ONLY, price, m.qty(self.unit_lots,
                                                                          self.cap_lots))  # fmt: skip
        due = m.step + 1 + m.rng.randrange(self.lifetime_steps_max)
        # cancels go out in due order: insert keeping the deque sorted by due step
        position = len(self.resting)
        while position and self.resting[position - 1][0] > due:
            position -= 1
        self.resting.insert(position, (due, account, emit.command.command_id))
        out.append(emit)
        return out


@dataclass
class Treasury:
    """Deposits (by the first admin) and withdrawals: the owner requests, and
    ``approve_after_steps`` later the second admin approves (90 %) or rejects it."""

    accounts: tuple[int, ...]
    admins: tuple[int, int]
    assets: tuple[tuple[str, int], ...]  # (asset, a typical amount in minor units)
    withdraw_ppm: int = 3_000  # per step
    deposit_ppm: int = 1_500
    approve_after_steps: int = 50
    pending: deque[tuple[int, int, str]] = field(default_factory=deque)  # (due, account, id)

    def act(self, m: View) -> list[Emit]:
        out: list[Emit] = []
        maker, checker = self.admins
        while self.pending and self.pending[0][0] <= m.step:
            _due, account, withdrawal_id = self.pending.popleft()
            if m.chance(90):
                out.append(Emit(ApproveWithdrawal(m.new_id(), account, 0, withdrawal_id,
                                                  checker)))  # fmt: skip
            else:
                out.append(Emit(RejectWithdrawal(m.new_id(), account, 0, withdrawal_id,
                                                 checker)))  # fmt: skip
        if (
            m.rng.randrange(1_000_000) < self.withdraw_ppm
            and len(self.pending) < PENDING_WITHDRAWALS_MAX
        ):
            account = m.rng.choice(self.accounts)
            asset, typical = m.rng.choice(self.assets)
            amount = typical * (1 + m.rng.randrange(10))
            command = RequestWithdrawal(m.new_id(), account, 0, asset, amount, account)
            self.pending.append((m.step + self.approve_after_steps, account, command.command_id))
            out.append(Emit(command))
        if m.rng.randrange(1_000_000) < self.deposit_ppm:
            account = m.rng.choice(self.accounts)
            asset, typical = m.rng.choice(self.assets)
            amount = typical * (1 + m.rng.randrange(20))
            out.append(Emit(Deposit(m.new_id(), account, 0, asset, amount, maker)))
        return out
