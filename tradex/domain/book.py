"""The accounts of one processor (all accounts of its assigned partitions).

book = AccountBook(reference)            # reference: the ReferenceData table
for event in replayed_account_events:    # rebuild on assignment
    book.apply(event)
decision = book.handle(command, order_id=order_id(partition, offset))
# write decision.events to account-events, decision.order_requests to order-requests
# (nothing when decision.duplicate)
"""

from __future__ import annotations

from collections.abc import Iterator

from tradex.domain.account import Account, Decision
from tradex.domain.commands import AccountInput
from tradex.domain.events import AccountEvent, CommandRejected
from tradex.domain.reference import ReferenceData
from tradex.domain.types import Reason

ACCOUNTS_MAX = 1_000_000  # per processor; each costs a few hundred bytes plus its open orders


class AccountBook:
    __slots__ = ("accounts", "reference")

    def __init__(self, reference: ReferenceData) -> None:
        self.reference = reference
        self.accounts: dict[int, Account] = {}

    def account(self, account_id: int) -> Account:
        """The account, created empty on first use (a fold starts from nothing)."""
        account = self.accounts.get(account_id)
        if account is None:
            assert len(self.accounts) < ACCOUNTS_MAX, "ACCOUNTS_MAX reached: add partitions"
            account = self.accounts[account_id] = Account(account_id)
        return account

    def handle(
        self, command: AccountInput, order_id: int = 0, *, validated: bool = False
    ) -> Decision:
        """Decide and apply one input. ``order_id`` is used only by PlaceOrder;
        ``validated``: ``command.validate()`` has already run (the codec's decode runs it)."""
        account_id = command.account_id
        if account_id <= 0:  # system accounts and nonsense never get an aggregate
            event = CommandRejected(
                command.command_id, account_id, command.event_time_ns,
                type(command).__name__, Reason.UNKNOWN_ACCOUNT, f"account {account_id}",
            )  # fmt: skip
            return Decision((event,), (), False)
        account = self.accounts.get(account_id)
        if account is None:
            account = self.account(account_id)
        return account.handle(command, self.reference, order_id, validated=validated)

    def apply(self, event: AccountEvent) -> None:
        """Fold one event from ``account-events`` (rebuild)."""
        if event.account_id <= 0:
            assert isinstance(event, CommandRejected), "only rejections address no account"
            return
        self.account(event.account_id).apply(event)

    def validate_internal_state(self) -> None:
        for account in self.accounts.values():
            account.validate_internal_state()

    def __iter__(self) -> Iterator[Account]:
        return iter(self.accounts.values())
