"""Random command sequences never break the ledger invariants (Hypothesis stateful).

The matcher model applies an amend some steps after the account decided it (fills at the
old terms may come first, as fills in flight do) and confirms it (``AmendConfirmed``: the
account releases the fall at once, exactly to what the order can still consume), or
refuses it (its new total at or below what the engine filled meanwhile, or its price
outside the band: the order's own terms confirmed), and decrements live orders to prevent
self-trades (confirmed too, answering no amend); cancel-alls run in small chunks with their continuations
fed back later. The ledger auditor (``Ledger``) checks that every order's hold closes at
exactly 0 (no leak), and the account that held == the sum of open holds.
"""

from __future__ import annotations

import hypothesis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.domain.conftest import make_reference
from tests.market import BTC_USD, T0
from tradex.domain import (
    AccountBook,
    AccountInput,
    AmendConfirmed,
    ApproveWithdrawal,
    CancelAllOrders,
    CancelOrder,
    CancelOrderRequest,
    CommandRejected,
    Deposit,
    EndReason,
    FillLeg,
    Ledger,
    Liquidity,
    ModifyOrder,
    NewOrder,
    OrderAccepted,
    OrderEnded,
    OrderKind,
    OrderRejected,
    PlaceOrder,
    RejectWithdrawal,
    RequestWithdrawal,
    Side,
    WithdrawalRequested,
)
from tradex.domain import account as account_module
from tradex.domain.commands import decrement_amend_time
from tradex.domain.orders import AmendOrder

ACCOUNTS = (1, 2, 3)
accounts = st.sampled_from(ACCOUNTS)
assets = st.sampled_from(("BTC", "USD"))
amounts = st.integers(min_value=1, max_value=50_000_000)
bad_numbers = st.integers(min_value=-3, max_value=0)
prices = st.integers(min_value=1, max_value=2_000)
qtys = st.integers(min_value=1, max_value=200)


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.book = AccountBook(make_reference(ACCOUNTS))
        self.ledger = Ledger()
        self.time_ns = T0
        self.offset = 0
        self.trade_id = 0
        # the matcher model: order_id -> [account, side, price, open qty]
        self.resting: dict[int, list] = {}
        self.withdrawals: list[tuple[int, str]] = []
        self.sent: list[AccountInput] = []
        self.amends: list[AmendOrder] = []  # forwarded, not yet seen by the matcher model
        self.continuations: list[CancelAllOrders] = []
        self.decrements = 0  # the matcher model's engine seq for its decrements
        self.chunk = account_module.CANCEL_ALL_CHUNK
        account_module.CANCEL_ALL_CHUNK = 3  # small: continuations happen

    def teardown(self) -> None:
        account_module.CANCEL_ALL_CHUNK = self.chunk

    def handle(self, command: AccountInput) -> None:
        self.offset += 1
        decision = self.book.handle(command, order_id=self.offset)
        assert not decision.duplicate
        if not (isinstance(command, CancelAllOrders) and command.continuation):
            self.sent.append(command)
        assert len(decision.events) <= account_module.CANCEL_ALL_CHUNK
        if type(command) in account_module.ONE_EVENT_INPUTS:  # what command clients rely on
            assert len(decision.events) == 1, (command, decision.events)
        if isinstance(command, FillLeg | OrderEnded | AmendConfirmed):  # the matcher model's
            assert not isinstance(decision.events[0], CommandRejected), decision.events
        for event in decision.events:
            event.validate()
            reason = getattr(event, "reason", "")
            hypothesis.event(f"{type(event).__name__} {reason}".strip())
            if isinstance(event, OrderAccepted | OrderRejected):
                assert event.order_id == self.offset  # rejected: the id it would have had
            self.ledger.apply(event)
            if isinstance(event, WithdrawalRequested):
                self.withdrawals.append((event.account_id, event.withdrawal_id))
        for request in decision.order_requests:
            request.validate()
            if isinstance(request, NewOrder):
                self.resting[request.order_id] = [
                    request.account_id,
                    request.side,
                    request.price,
                    request.qty,
                    0,  # filled
                ]
            elif isinstance(request, AmendOrder):
                self.amends.append(request)
            elif isinstance(request, CancelAllOrders):
                self.continuations.append(request)
            else:
                assert isinstance(request, CancelOrderRequest)

    def now(self) -> int:
        self.time_ns += 1_000
        return self.time_ns

    @rule(account=accounts, asset=assets, amount=amounts)
    def deposit(self, account: int, asset: str, amount: int) -> None:
        self.handle(Deposit(f"c{self.offset}", account, self.now(), asset, amount))

    @rule(account=accounts, asset=assets, amount=bad_numbers, price=bad_numbers)
    def bad_commands(self, account: int, asset: str, amount: int, price: int) -> None:
        self.handle(Deposit(f"c{self.offset}", account, self.now(), asset, amount))
        self.handle(RequestWithdrawal(f"c{self.offset}", account, self.now(), asset, amount))
        for side in Side:
            self.handle(
                PlaceOrder(
                    f"c{self.offset}", account, self.now(), BTC_USD, side, OrderKind.GTC, price, 1
                )
            )
            self.handle(
                PlaceOrder(
                    f"c{self.offset}",
                    account,
                    self.now(),
                    BTC_USD,
                    side,
                    OrderKind.GTC,
                    100,
                    amount,
                )
            )
        self.handle(CancelOrder(f"c{self.offset}", account, self.now(), 999_999))

    @rule(account=accounts, asset=assets, amount=amounts)
    def request_withdrawal(self, account: int, asset: str, amount: int) -> None:
        self.handle(RequestWithdrawal(f"c{self.offset}", account, self.now(), asset, amount))

    @rule(data=st.data(), approve=st.booleans())
    def finish_withdrawal(self, data: st.DataObject, approve: bool) -> None:
        if not self.withdrawals:
            return
        account, withdrawal_id = data.draw(st.sampled_from(self.withdrawals))
        self.withdrawals.remove((account, withdrawal_id))
        kind = ApproveWithdrawal if approve else RejectWithdrawal
        self.handle(kind(f"c{self.offset}", account, self.now(), withdrawal_id))

    @rule(
        account=accounts,
        side=st.sampled_from(Side),
        kind=st.sampled_from(OrderKind),
        price=prices,
        qty=qtys,
        funded=st.booleans(),
    )
    def place(
        self, account: int, side: Side, kind: OrderKind, price: int, qty: int, funded: bool
    ) -> None:
        if funded:  # deposit about what the hold needs, so most orders are accepted
            asset, amount = ("USD", price * qty * 2) if side == Side.BUY else ("BTC", qty * 1_000)
            self.handle(Deposit(f"c{self.offset}", account, self.now(), asset, amount))
        self.handle(
            PlaceOrder(f"c{self.offset}", account, self.now(), BTC_USD, side, kind, price, qty)
        )

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order_ids = sorted(self.resting)
        if not order_ids:
            return
        order_id = data.draw(st.sampled_from(order_ids))
        owner = self.resting[order_id][0]
        self.handle(CancelOrder(f"c{self.offset}", owner, self.now(), order_id))

    @rule(data=st.data(), buyer_makes=st.booleans())
    def trade(self, data: st.DataObject, buyer_makes: bool) -> None:
        buys = [o for o, r in self.resting.items() if r[1] == Side.BUY and r[3] > 0]
        sells = [o for o, r in self.resting.items() if r[1] == Side.SELL and r[3] > 0]
        pairs = [(b, s) for b in buys for s in sells if self.resting[b][2] >= self.resting[s][2]]
        if not pairs:
            return
        buy_id, sell_id = data.draw(st.sampled_from(pairs))
        buy, sell = self.resting[buy_id], self.resting[sell_id]
        qty = data.draw(st.integers(min_value=1, max_value=min(buy[3], sell[3])))
        price = buy[2] if buyer_makes else sell[2]
        buy[3] -= qty
        sell[3] -= qty
        buy[4] += qty
        sell[4] += qty
        self.trade_id += 1
        t = self.now()
        buy_liq, sell_liq = (
            (Liquidity.MAKER, Liquidity.TAKER)
            if buyer_makes
            else (Liquidity.TAKER, Liquidity.MAKER)
        )
        legs = [
            FillLeg(buy[0], buy_id, self.trade_id, BTC_USD, Side.BUY, price, qty, buy_liq, t),
            FillLeg(sell[0], sell_id, self.trade_id, BTC_USD, Side.SELL, price, qty, sell_liq, t),
        ]
        for leg in data.draw(st.permutations(legs)):
            self.handle(leg)

    @rule(data=st.data(), maker=st.booleans())
    def fill_one(self, data: st.DataObject, maker: bool) -> None:
        """One leg of a trade against a party outside the model, at the order's price in the
        matcher model (after an applied amend: the new one)."""
        live = sorted(o for o, r in self.resting.items() if r[3] > 0)
        if not live:
            return
        order_id = data.draw(st.sampled_from(live))
        resting = self.resting[order_id]
        qty = data.draw(st.one_of(st.just(resting[3]), st.integers(1, resting[3])))  # all, often
        resting[3] -= qty
        resting[4] += qty
        self.trade_id += 1
        liquidity = Liquidity.MAKER if maker else Liquidity.TAKER
        self.handle(FillLeg(resting[0], order_id, self.trade_id, BTC_USD, resting[1],
                            resting[2], qty, liquidity, self.now()))  # fmt: skip

    @rule(data=st.data(), reason=st.sampled_from(EndReason))
    def end(self, data: st.DataObject, reason: EndReason) -> None:
        if not self.resting:
            return
        order_id = data.draw(st.sampled_from(sorted(self.resting)))
        account = self.resting.pop(order_id)[0]
        self.handle(OrderEnded(account, order_id, BTC_USD, reason, self.now()))

    @rule(
        data=st.data(),
        new_price=st.one_of(st.just(0), prices),
        new_qty=st.one_of(st.just(0), qtys, st.integers(min_value=1, max_value=3)),
        funded=st.booleans(),
    )
    def amend(self, data: st.DataObject, new_price: int, new_qty: int, funded: bool) -> None:
        order_ids = sorted(self.resting)
        if not order_ids or (new_price == 0 and new_qty == 0):
            return
        order_id = data.draw(st.sampled_from(order_ids))
        owner = self.resting[order_id][0]
        if funded:
            self.handle(Deposit(f"c{self.offset}", owner, self.now(), "USD", 2_000 * 400))
            self.handle(Deposit(f"c{self.offset}", owner, self.now(), "BTC", 400 * 1_000))
        self.handle(ModifyOrder(f"c{self.offset}", owner, self.now(), order_id, new_price, new_qty))

    @rule(data=st.data())
    def matcher_takes_amend(self, data: st.DataObject) -> None:
        """The matcher model reaches a forwarded amend: applied (0 keeps a field), or
        refused with the order left as it was — its new total not above what filled
        meanwhile, or (drawn) a new price outside the band — and then the order's own
        terms are confirmed."""
        if not self.amends:
            return
        amend = self.amends.pop(0)
        resting = self.resting.get(amend.order_id)
        if resting is None or resting[3] == 0:
            return  # ended (or filled) meanwhile: the engine rejects it, confirming nothing
        total = amend.new_qty or resting[3] + resting[4]
        if total <= resting[4] or data.draw(st.integers(0, 4)) == 0:
            total = resting[3] + resting[4]  # amend_qty_too_low / price_band: as it was
        else:
            resting[2] = amend.new_price or resting[2]
            resting[3] = total - resting[4]
        owner = resting[0]
        self.handle(AmendConfirmed(owner, amend.order_id, BTC_USD, resting[2], total,
                                   amend.event_time_ns, self.now()))  # fmt: skip
        order = self.book.account(owner).orders[amend.order_id]
        if not order.amends:  # nothing pending: the bounds are the terms
            assert (order.price, order.qty) == (resting[2], total)
            if resting[3] and data.draw(st.booleans()):
                # the worst case: the rest fills at once at the limit at the higher (taker)
                # rate, which must consume exactly what is left of the hold
                qty = resting[3]
                resting[3], resting[4] = 0, total
                self.trade_id += 1
                self.handle(FillLeg(owner, amend.order_id, self.trade_id, BTC_USD, resting[1],
                                    resting[2], qty, Liquidity.TAKER, self.now()))  # fmt: skip
                assert order.hold_remaining == 0, order.hold_remaining

    @rule(data=st.data())
    def matcher_decrements(self, data: st.DataObject) -> None:
        """The matcher model decrements a live order to prevent a self-trade (DECREMENT):
        its terms after it are confirmed with an amend time < 0 (no amend answered; those
        still pending keep their terms in the bounds), then maybe the rest fills at once at
        the limit at the taker rate, which must consume exactly what is left of the hold."""
        live = sorted(o for o, r in self.resting.items() if r[3] > 1)
        if not live:
            return
        order_id = data.draw(st.sampled_from(live))
        resting = self.resting[order_id]
        resting[3] -= data.draw(st.integers(1, resting[3] - 1))
        owner, total = resting[0], resting[3] + resting[4]
        self.decrements += 1
        self.handle(AmendConfirmed(owner, order_id, BTC_USD, resting[2], total,
                                   decrement_amend_time(self.decrements), self.now()))  # fmt: skip
        order = self.book.account(owner).orders[order_id]
        if not order.amends and data.draw(st.booleans()):
            assert (order.price, order.qty) == (resting[2], total)
            qty = resting[3]
            resting[3], resting[4] = 0, total
            self.trade_id += 1
            self.handle(FillLeg(owner, order_id, self.trade_id, BTC_USD, resting[1],
                                resting[2], qty, Liquidity.TAKER, self.now()))  # fmt: skip
            assert order.hold_remaining == 0, order.hold_remaining

    @rule(account=accounts, one_instrument=st.booleans())
    def cancel_all(self, account: int, one_instrument: bool) -> None:
        instrument = BTC_USD if one_instrument else 0
        self.handle(CancelAllOrders(f"c{self.offset}", account, self.now(), instrument))

    @rule()
    def continue_cancel_all(self) -> None:
        if self.continuations:
            self.handle(self.continuations.pop(0)._replace(event_time_ns=self.now()))

    @rule(data=st.data(), ended=st.booleans())
    def client_id_like_a_settlement(self, data: st.DataObject, ended: bool) -> None:
        """A client's command id that reads as the next settlement's: the settlement still
        settles (handle asserts it is not a duplicate), in its own window."""
        if not self.resting:
            return
        order_id = data.draw(st.sampled_from(sorted(self.resting)))
        account = self.resting[order_id][0]
        cid = f"end/{order_id}" if ended else f"fill/{self.trade_id + 1}/{order_id}"
        if cid in self.book.account(account).outcomes:
            return
        self.handle(Deposit(cid, account, self.now(), "USD", 1))

    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        if not self.sent:
            return
        command = data.draw(st.sampled_from(self.sent))
        before = {a: self.book.account(a).balances() for a in ACCOUNTS}
        decision = self.book.handle(command, order_id=10**9)
        assert decision.duplicate
        assert decision.order_requests == ()
        assert before == {a: self.book.account(a).balances() for a in ACCOUNTS}

    @invariant()
    def invariants_hold(self) -> None:
        self.book.validate_internal_state()
        assert self.ledger.violations() == []
        for account in self.book:
            for asset, (available, held) in account.balances().items():
                assert self.ledger.available(account.account_id, asset) == available
                assert self.ledger.held.get((account.account_id, asset), 0) == held


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
