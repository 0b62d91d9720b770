"""The agents, pure: given a seed and a fair value, exactly which commands they send."""

from __future__ import annotations

import itertools
import random
from collections import deque

from tradex.domain import CancelOrder, ModifyOrder, OrderKind, PlaceOrder, Side
from tradex.sim.agents import (
    MarketMaker,
    MeanReversionTaker,
    MomentumTaker,
    NoiseTaker,
    PostOnlyUser,
    Sweeper,
    Treasury,
    View,
)

FAIR = 60_000


def view(seed: int = 1, fair: int = FAIR, history: list[int] | None = None) -> View:
    ids = itertools.count()
    return View(7, 1_000_000, random.Random(seed), lambda: f"c{next(ids)}", fair,
                  deque(history or [], maxlen=256), fair * 1_000_000)  # fmt: skip


def prices(commands: list[PlaceOrder], side: Side) -> list[int]:
    return sorted(c.price for c in commands if c.side == side)


def test_maker_quotes_both_sides_around_fair_value() -> None:
    maker = MarketMaker(11, half_spread_bps=3, level_gap_bps=2, levels=3, requote_steps=1)
    out = maker.act(view())
    places = [e.command for e in out]
    assert all(isinstance(c, PlaceOrder) for c in places)
    assert prices(places, Side.BUY) == [FAIR - 18 - 24, FAIR - 18 - 12, FAIR - 18]
    assert prices(places, Side.SELL) == [FAIR + 18, FAIR + 18 + 12, FAIR + 18 + 24]
    assert {c.kind for c in places} <= {OrderKind.GTC, OrderKind.POST_ONLY}
    assert all(c.account_id == c.actor == 11 for c in places)


def test_inventory_skew_lowers_quotes_when_long_and_raises_them_when_short() -> None:
    flat = MarketMaker(11, requote_steps=1)
    long = MarketMaker(11, requote_steps=1, inventory_lots=8)
    short = MarketMaker(11, requote_steps=1, inventory_lots=-8)
    m = view()
    assert long.mid_ticks(m) < flat.mid_ticks(m) == FAIR < short.mid_ticks(m)
    quoted = {inventory: [e.command for e in MarketMaker(11, requote_steps=1,
                                                         inventory_lots=inventory).act(view())]
              for inventory in (8, 0, -8)}  # fmt: skip
    for side in (Side.BUY, Side.SELL):
        assert prices(quoted[8], side) < prices(quoted[0], side) < prices(quoted[-8], side)
    assert MarketMaker(11, inventory_lots=10**6).mid_ticks(m) == FAIR - FAIR * 20 // 10_000


def test_maker_fill_model_counts_quotes_the_fair_value_crossed_and_cancels_them() -> None:
    maker = MarketMaker(11, levels=1, requote_steps=1)
    first = maker.act(view())
    bid = next(e.command for e in first if e.command.side == Side.BUY)
    # the fair value drops through the bid: modelled as bought, then cancelled
    out = maker.act(view(fair=bid.price - 1))
    assert maker.inventory_lots == bid.qty
    cancels = [e for e in out if isinstance(e.command, CancelOrder)]
    assert all(e.target == bid.command_id for e in cancels)  # 25 %: maybe none


def test_maker_requotes_a_moved_level_by_amend_or_cancel_and_place() -> None:
    maker = MarketMaker(11, levels=2, requote_steps=1, amend_pct=50)
    maker.act(view(seed=2))
    targets = {q.command_id for q in maker.quotes.values()}
    out = maker.act(view(seed=2, fair=FAIR + 12))  # every target moved 2 bp, none crossed
    amends = [e for e in out if isinstance(e.command, ModifyOrder)]
    cancels = [e for e in out if isinstance(e.command, CancelOrder)]
    places = [e for e in out if isinstance(e.command, PlaceOrder)]
    assert len(amends) + len(cancels) == 4 and len(cancels) == len(places)
    assert {e.target for e in amends + cancels} <= targets
    assert all(e.command.new_qty == 0 and e.command.new_price > 0 for e in amends)


def test_maker_waits_for_its_requote_step_and_keeps_unmoved_quotes() -> None:
    maker = MarketMaker(11, requote_steps=4, phase=1)
    m = view()
    m.step = 1
    assert maker.act(m) == []
    m.step = 3
    assert len(maker.act(m)) == 6
    m.step = 7
    assert maker.act(m) == []  # same fair value: nothing to change


def test_noise_taker_exact_orders_for_a_seed() -> None:
    taker = NoiseTaker((21, 22, 23), unit_lots=1, cap_lots=8)
    m = view(seed=5)
    first = [taker.act(m)[0].command for _ in range(200)]
    m2 = view(seed=5)
    assert first == [taker.act(m2)[0].command for _ in range(200)]
    kinds = {c.kind for c in first}
    assert kinds == {OrderKind.MARKET, OrderKind.IOC, OrderKind.FOK}
    for c in first:
        through = c.price - FAIR if c.side == Side.BUY else FAIR - c.price
        assert through >= 0, "takers price through the fair value"
        assert 1 <= c.qty <= 8


def test_momentum_follows_the_move_and_mean_reversion_fades_it() -> None:
    rising = [FAIR - 200 + i for i in range(100)]
    m = view(history=rising)
    buy = MomentumTaker((31,), lookback=40, threshold_bps=5).act(m)
    assert [e.command.side for e in buy] == [Side.BUY]
    assert MomentumTaker((31,)).act(view(history=[FAIR] * 100)) == []
    high = view()
    high.ema_micro = (FAIR - 100) * 1_000_000
    assert [e.command.side for e in MeanReversionTaker((32,)).act(high)] == [Side.SELL]
    assert MeanReversionTaker((32,)).act(view()) == []


def test_sweeper_is_large_and_protected() -> None:
    order = Sweeper((41,), unit_lots=10, cap_lots=30).act(view())[0].command
    assert order.kind == OrderKind.MARKET and order.qty >= 30
    assert abs(order.price - FAIR) == FAIR * 200 // 10_000


def test_post_only_user_cancels_each_order_when_due_in_due_order() -> None:
    user = PostOnlyUser((51, 52), lifetime_steps_max=5)
    m = view(seed=3)
    placed, cancelled = [], []
    for step in range(40):
        m.step = step
        for emit in user.act(m):
            if isinstance(emit.command, PlaceOrder):
                assert emit.command.kind == OrderKind.POST_ONLY
                placed.append(emit.command.command_id)
            else:
                cancelled.append(emit.target)
    assert cancelled and set(cancelled) <= set(placed)
    assert len(placed) - len(cancelled) == len(user.resting) <= 5


def test_treasury_withdrawals_are_approved_by_the_other_admin() -> None:
    treasury = Treasury((61, 62), (1, 2), (("USD", 100_00),), withdraw_ppm=200_000,
                        deposit_ppm=100_000, approve_after_steps=3)  # fmt: skip
    m = view(seed=8)
    out = []
    for step in range(200):
        m.step = step
        out += [e.command for e in treasury.act(m)]
    requests = {c.command_id: c for c in out if type(c).__name__ == "RequestWithdrawal"}
    decisions = [c for c in out if type(c).__name__ in ("ApproveWithdrawal", "RejectWithdrawal")]
    deposits = [c for c in out if type(c).__name__ == "Deposit"]
    assert requests and decisions and deposits
    for request in requests.values():
        assert request.actor == request.account_id  # the owner asks
    for decision in decisions:
        request = requests[decision.withdrawal_id]
        assert decision.account_id == request.account_id
        assert decision.actor == 2 != request.actor  # maker/checker: another user decides
    assert all(d.actor == 1 for d in deposits)


def test_maker_forgets_at_most_forgotten_max_quotes_then_cancels_the_oldest() -> None:
    maker = MarketMaker(11, levels=1, requote_steps=1, cancel_stale_pct=0, amend_pct=100,
                        forgotten_max=2)  # fmt: skip
    m = view()
    cancelled, taken = [], []
    for n in range(12):
        m.step, m.fair_ticks = n, FAIR + (500 if n % 2 else -500)  # through ask, bid, ...
        m.history.clear()
        before = {q.command_id for q in maker.quotes.values()}
        out = maker.act(m)
        taken += sorted(before - {q.command_id for q in maker.quotes.values()})
        cancelled += [e.target for e in out if isinstance(e.command, CancelOrder)]
        assert len(maker.forgotten) <= 2
    assert len(taken) > 4
    assert cancelled == taken[: len(cancelled)]  # the oldest first
    assert taken[len(cancelled) :] == list(maker.forgotten)
