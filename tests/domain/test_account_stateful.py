"""Random command sequences never break the ledger invariants (Hypothesis stateful)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.domain.conftest import make_reference
from tests.market import BTC_USD, T0
from tradex.domain import (
    AccountBook,
    AccountInput,
    ApproveWithdrawal,
    CancelOrder,
    Deposit,
    EndReason,
    FillLeg,
    Ledger,
    Liquidity,
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

    def handle(self, command: AccountInput) -> None:
        self.offset += 1
        decision = self.book.handle(command, order_id=self.offset)
        assert not decision.duplicate
        self.sent.append(command)
        for event in decision.events:
            event.validate()
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
                ]

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

    @rule(data=st.data(), reason=st.sampled_from(EndReason))
    def end(self, data: st.DataObject, reason: EndReason) -> None:
        if not self.resting:
            return
        order_id = data.draw(st.sampled_from(sorted(self.resting)))
        account = self.resting.pop(order_id)[0]
        self.handle(OrderEnded(account, order_id, BTC_USD, reason, self.now()))

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
