"""The auditor's fold: check the ledger invariants over a stream of account events.

Independent of the aggregate: balances come from postings only, holds from the events'
hold deltas (table in ``tradex.domain.events``). Feed events in log order per account
(any interleaving across accounts), then call :meth:`Ledger.violations`:

    ledger = Ledger()
    for event in events:
        ledger.apply(event)        # checks each entry is balanced as it arrives
    assert ledger.violations() == []

Invariants: every entry balances per asset; per (account, asset) available >= 0 and
held >= 0; held == Σ open holds (orders + withdrawals); per asset the sum over all accounts
(users + external + fees + clearing) is 0; the clearing account nets to zero for every
trade whose two legs have settled. Violations are returned as text, never raised, so an
auditor sees all of them.
"""

from __future__ import annotations

from tradex.domain.errors import InvalidRecord
from tradex.domain.events import (
    AccountEvent,
    AmendSettled,
    FillSettled,
    HoldReleased,
    OrderAccepted,
    OrderAmended,
    WithdrawalPaid,
    WithdrawalReleased,
    WithdrawalRequested,
    hold_delta,
    postings_of,
)
from tradex.domain.journal import CLEARING_ACCOUNT, SYSTEM_ACCOUNTS, check_balanced
from tradex.domain.types import Side

VIOLATIONS_MAX = 1_000  # kept; the count goes on


class Ledger:
    __slots__ = (
        "balances",
        "clearing_by_trade",
        "entries",
        "held",
        "open_holds",
        "trade_sides",
        "violation_count",
        "violation_texts",
    )

    def __init__(self) -> None:
        self.balances: dict[tuple[int, str], int] = {}  # (account, asset) -> total from postings
        self.held: dict[tuple[int, str], int] = {}  # (account, asset) -> held from hold deltas
        self.open_holds: dict[
            tuple[int, str], tuple[str, int]
        ] = {}  # (account, hold key) -> (asset, amount)
        self.clearing_by_trade: dict[tuple[int, str], int] = {}  # (trade, asset) -> clearing sum
        self.trade_sides: dict[int, set[str]] = {}
        self.entries = 0
        self.violation_count = 0
        self.violation_texts: list[str] = []

    def _violation(self, text: str) -> None:
        self.violation_count += 1
        if len(self.violation_texts) < VIOLATIONS_MAX:
            self.violation_texts.append(text)

    def apply(self, event: AccountEvent) -> None:
        postings = postings_of(event)
        if postings:
            self.entries += 1
            try:
                check_balanced(postings)
            except InvalidRecord as exc:
                self._violation(f"{type(event).__name__} {event.command_id}: {exc}")
            for posting in postings:
                key = (posting.account_id, posting.asset)
                self.balances[key] = self.balances.get(key, 0) + posting.delta
        change = hold_delta(event)
        if change is not None:
            asset, delta = change
            key = (event.account_id, asset)
            self.held[key] = self.held.get(key, 0) + delta
            self._track_hold(event, asset, delta)
        if isinstance(event, FillSettled):
            self._track_trade(event)
        for posting in postings:
            if posting.account_id not in SYSTEM_ACCOUNTS:
                self._check_account(posting.account_id, posting.asset, event)
        if change is not None:
            self._check_account(event.account_id, change[0], event)

    def _track_hold(self, event: AccountEvent, asset: str, delta: int) -> None:
        if isinstance(event, WithdrawalRequested | WithdrawalPaid | WithdrawalReleased):
            hold_key = f"w/{event.withdrawal_id}"
        else:
            assert isinstance(
                event, OrderAccepted | OrderAmended | AmendSettled | FillSettled | HoldReleased
            )
            hold_key = f"o/{event.order_id}"
        key = (event.account_id, hold_key)
        previous_asset, amount = self.open_holds.get(key, (asset, 0))
        if previous_asset != asset:
            self._violation(f"{hold_key} of account {event.account_id} changes asset")
        amount += delta
        if isinstance(event, WithdrawalPaid | WithdrawalReleased | HoldReleased):
            if amount != 0:
                self._violation(
                    f"{hold_key} of account {event.account_id} closed with {amount} left"
                )
            self.open_holds.pop(key, None)
        else:
            self.open_holds[key] = (asset, amount)
            if amount < 0:
                self._violation(f"{hold_key} of account {event.account_id} went negative")

    def _track_trade(self, event: FillSettled) -> None:
        sides = self.trade_sides.setdefault(event.trade_id, set())
        if event.side in sides:
            self._violation(f"trade {event.trade_id} settled twice on the {event.side} side")
        sides.add(event.side)
        for posting in event.postings:
            if posting.account_id == CLEARING_ACCOUNT:
                key = (event.trade_id, posting.asset)
                self.clearing_by_trade[key] = self.clearing_by_trade.get(key, 0) + posting.delta

    def _check_account(self, account_id: int, asset: str, event: AccountEvent) -> None:
        key = (account_id, asset)
        held = self.held.get(key, 0)
        available = self.balances.get(key, 0) - held
        if held < 0:
            self._violation(f"account {account_id} held {asset} < 0 after {event.command_id}")
        if available < 0:
            self._violation(f"account {account_id} available {asset} < 0 after {event.command_id}")

    def available(self, account_id: int, asset: str) -> int:
        return self.balances.get((account_id, asset), 0) - self.held.get((account_id, asset), 0)

    def violations(self) -> list[str]:
        """All invariant violations so far (also the whole-ledger checks, run now)."""
        found = list(self.violation_texts)
        totals: dict[str, int] = {}
        for (_, asset), amount in self.balances.items():
            totals[asset] = totals.get(asset, 0) + amount
        found += [f"asset {a} not conserved: sums to {t}" for a, t in totals.items() if t != 0]
        holds: dict[tuple[int, str], int] = {}
        for (account_id, _), (asset, amount) in self.open_holds.items():
            holds[(account_id, asset)] = holds.get((account_id, asset), 0) + amount
        for key in self.held.keys() | holds.keys():
            if self.held.get(key, 0) != holds.get(key, 0):
                found.append(
                    f"held {key} = {self.held.get(key, 0)} but open holds sum to {holds.get(key, 0)}"
                )
        both = {Side.BUY.value, Side.SELL.value}
        for (trade_id, asset), amount in self.clearing_by_trade.items():
            if amount != 0 and self.trade_sides.get(trade_id) == both:
                found.append(f"clearing does not net for trade {trade_id} in {asset}: {amount}")
        return found

    def unsettled_trades(self) -> list[int]:
        """Trades with only one leg settled so far (clearing holds their amounts)."""
        return sorted(t for t, sides in self.trade_sides.items() if len(sides) == 1)
