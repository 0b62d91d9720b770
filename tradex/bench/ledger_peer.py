"""The ledger benchmark's peer: the same account commands on ``eventsourcing`` + PostgreSQL.

The library's own idiom: an ``Aggregate`` whose command methods decide and record events
(``@event``), an ``Application`` that loads, calls and saves, and its PostgreSQL
persistence (``PERSISTENCE_MODULE=eventsourcing.postgres``). Configured as its docs
recommend for a single writer (:func:`peer_env`): the aggregate cache
(``AGGREGATE_CACHE_MAXSIZE``) without fast-forwarding (``AGGREGATE_CACHE_FASTFORWARD=n``:
a cached aggregate is not re-read from the database on every ``get``) and without a deep
copy per ``get`` (``DEEPCOPY_FROM_AGGREGATE_CACHE=n``), and its PostgreSQL database
functions for inserting events (``POSTGRES_ENABLE_DB_FUNCTIONS=y``).

Two rows: :meth:`PeerLedger.handle` saves after every command (the library's usual shape);
:meth:`PeerLedger.handle_batch` decides a batch of commands and saves every aggregate it
touched in one ``save(*aggregates)`` (one database transaction per batch, as TradeX commits
one Kafka transaction per batch). Accounts are opened and funded by :func:`open_and_fund`
before the clock starts. The decision rules are TradeX's (same hold and min-notional
arithmetic), so the balances of both runs must agree: that is the peer's correctness check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event

from tradex.domain import Deposit, PlaceOrder, Side
from tradex.domain.units import buy_hold, notional, sell_hold
from tradex.infra.settings import Settings

NAMESPACE = uuid.UUID("6f0c4c9e-2f1e-4d52-9a55-0f1b1a2b3c4d")
CACHE_MAXSIZE = 1_000_000


class Rules:
    """The one instrument's rules (TradeX reads them from reference-events)."""

    def __init__(
        self, base: str, quote: str, tick: int, lot: int, min_notional: int, maker: int, taker: int
    ) -> None:
        self.base, self.quote = base, quote
        self.tick, self.lot, self.min_notional = tick, lot, min_notional
        self.maker_ppm, self.taker_ppm = maker, taker


class PeerAccount(Aggregate):
    """Balances per asset, available and held; orders hold funds."""

    @staticmethod
    def create_id(account_id: int) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, str(account_id))

    @event("Opened")
    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.available: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.orders: dict[int, tuple[str, int]] = {}

    @event("Deposited")
    def deposit(self, command_id: str, asset: str, amount: int) -> None:
        self.available[asset] = self.available.get(asset, 0) + amount

    def place_order(self, command: PlaceOrder, order_id: int, rules: Rules) -> None:
        """Decide: accept with a hold, or reject with a reason (both are events)."""
        if notional(command.price, command.qty, rules.tick) < rules.min_notional:
            self.reject_order(command.command_id, order_id, "BELOW_MIN_NOTIONAL")
            return
        if command.side == Side.BUY:
            asset = rules.quote
            hold = buy_hold(
                command.price, command.qty, rules.tick, rules.maker_ppm, rules.taker_ppm
            )
        else:
            asset, hold = rules.base, sell_hold(command.qty, rules.lot)
        if self.available.get(asset, 0) < hold:
            self.reject_order(command.command_id, order_id, "INSUFFICIENT_FUNDS")
            return
        self.accept_order(command.command_id, order_id, asset, hold)

    @event("OrderAccepted")
    def accept_order(self, command_id: str, order_id: int, asset: str, hold: int) -> None:
        self.available[asset] -= hold
        self.held[asset] = self.held.get(asset, 0) + hold
        self.orders[order_id] = (asset, hold)

    @event("OrderRejected")
    def reject_order(self, command_id: str, order_id: int, reason: str) -> None:
        pass


class PeerLedger(Application):
    """Thin application layer: load (or open) the account, call, save."""

    def account(self, account_id: int) -> PeerAccount:
        account_uuid = PeerAccount.create_id(account_id)
        try:
            account: PeerAccount = self.repository.get(account_uuid)
        except AggregateNotFoundError:
            account = PeerAccount(account_id)
        return account

    def handle(self, command: Any, order_id: int, rules: Rules) -> None:
        """One command, one save (one database transaction)."""
        account = self.account(command.account_id)
        decide(account, command, order_id, rules)
        self.save(account)

    def handle_batch(self, batch: Sequence[tuple[Any, int]], rules: Rules) -> None:
        """Decide every command of ``batch`` in order, then save every account it touched in
        one ``save(*aggregates)`` (one database transaction)."""
        touched: dict[int, PeerAccount] = {}
        for command, order_id in batch:
            account = touched.get(command.account_id)
            if account is None:
                account = touched[command.account_id] = self.account(command.account_id)
            decide(account, command, order_id, rules)
        self.save(*touched.values())

    def balances(self, account_id: int) -> dict[str, tuple[int, int]]:
        account: PeerAccount = self.repository.get(PeerAccount.create_id(account_id))
        assets = sorted(account.available.keys() | account.held.keys())
        return {a: (account.available.get(a, 0), account.held.get(a, 0)) for a in assets}


def decide(account: PeerAccount, command: Any, order_id: int, rules: Rules) -> None:
    if isinstance(command, Deposit):
        account.deposit(command.command_id, command.asset, command.amount)
    else:
        assert isinstance(command, PlaceOrder), command
        account.place_order(command, order_id, rules)


def postgres_env(settings: Settings, database: str) -> dict[str, str]:
    """eventsourcing's settings for its PostgreSQL persistence on ``database``."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": database,
        "POSTGRES_HOST": settings.postgres_host,
        "POSTGRES_PORT": str(settings.postgres_port),
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD": settings.postgres_password,
    }


def peer_env(settings: Settings, database: str) -> dict[str, str]:
    """The library's settings for one writer that owns its aggregates (see the module doc)."""
    return {
        **postgres_env(settings, database),
        "AGGREGATE_CACHE_MAXSIZE": str(CACHE_MAXSIZE),
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    }


def open_and_fund(
    app: PeerLedger, accounts: int, funding: Sequence[tuple[Any, int]], rules: Rules, batch: int
) -> None:
    """Open accounts 1..``accounts`` and apply the ``funding`` commands, saved in batches:
    the set-up outside the clock (TradeX's accounts are opened by the reference data)."""
    for start in range(1, accounts + 1, batch):
        opened = [PeerAccount(a) for a in range(start, min(start + batch, accounts + 1))]
        app.save(*opened)
    for start in range(0, len(funding), batch):
        app.handle_batch(funding[start : start + batch], rules)


def run_peer(
    settings: Settings, database: str, accounts: int, funding: Sequence[tuple[Any, int]],
    commands: Sequence[tuple[Any, int]], rules: Rules, batch: int | None,
) -> tuple[float, PeerLedger]:  # fmt: skip
    """Open and fund the accounts (not timed), then handle ``(command, order_id)`` pairs in
    order, saving per command (``batch`` None) or per batch of ``batch`` commands; return
    (commands/s of the timed part, the application)."""
    app = PeerLedger(env=peer_env(settings, database))
    open_and_fund(app, accounts, funding, rules, batch or 5_000)
    started = time.perf_counter()
    if batch is None:
        for command, order_id in commands:
            app.handle(command, order_id, rules)
    else:
        for start in range(0, len(commands), batch):
            app.handle_batch(commands[start : start + batch], rules)
    elapsed = time.perf_counter() - started
    return len(commands) / elapsed, app
