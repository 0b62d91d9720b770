"""Snapshots of one partition's accounts on the compacted topic ``account-snapshots``.

A snapshot is an optimisation, never a source of truth: it says "the fold of
``account-events[p]`` records with offset < ``events_next`` is this", and a rebuild reads
the events from ``events_next`` on. It is written by the partition's single writer inside
its Kafka transaction, the one after the commit whose ``account-events`` end it names
(:meth:`tradex.infra.stage.Processor.committed`), so a snapshot is visible only if its
events are. The state is captured when the batch has been decided (:func:`capture`) and
encoded once its commit names the position (:func:`encode_capture`).

Format (internal to the account processor, versioned): JSON of the state, stored as the
records of :mod:`tradex.log.snapshot_log` (magic ``TXS1``, position ``events_next``).

What is kept per account: version, balances, open orders, pending withdrawals and the
*ids* of the remembered commands and settlements (the two idempotency windows), not their
events: a duplicate is
still recognised after a restore, and its original outcome is read from the log
(:meth:`tradex.commands.client.CommandClient.find_outcome`).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from tradex.domain.account import Account, OpenOrder
from tradex.domain.book import AccountBook
from tradex.domain.events import WithdrawalRequested
from tradex.domain.reference import ReferenceData
from tradex.infra.stage import Output
from tradex.log import snapshot_log
from tradex.log.snapshot_log import SnapshotLogError, snapshot_outputs
from tradex.log.source import LogSource
from tradex.log.topics import ACCOUNT_SNAPSHOTS

FORMAT = 2  # 2: the settlements' window apart (1: one shared window; read as no snapshot)
MAGIC = b"TXS1"


class SnapshotError(ValueError):
    """A snapshot record that cannot be read (never used then: the log is the truth)."""


class PartitionState(NamedTuple):
    """What a snapshot holds: the fold of ``account-events[partition]`` below ``events_next``."""

    partition: int
    events_next: int
    last_hash: bytes  # hash of the last event below events_next (the chain's tail)
    book: AccountBook


# -- account <-> plain data ------------------------------------------------------------------


def account_state(account: Account) -> list[Any]:
    """The account as JSON-able data (also what restore/replay equality compares)."""
    return [
        account.account_id,
        account.version,
        sorted(account.available.items()),
        sorted(account.held.items()),
        [order.to_snapshot() for order in account.orders.values()],
        [list(w) for w in account.withdrawals.values()],
        list(account.outcomes),
        list(account.settled),
    ]


def restore_account(data: list[Any]) -> Account:
    account_id, version, available, held, orders, withdrawals, outcome_ids, settled_ids = data
    account = Account(account_id)
    account.version = version
    account.available = dict((asset, amount) for asset, amount in available)
    account.held = dict((asset, amount) for asset, amount in held)
    for fields in orders:
        order = OpenOrder.from_snapshot(fields)
        account.orders[order.order_id] = order
    for fields in withdrawals:
        withdrawal = WithdrawalRequested(*fields)
        account.withdrawals[withdrawal.withdrawal_id] = withdrawal
    # Ids only: a duplicate is recognised (empty original outcome, see the module doc).
    account.outcomes = dict.fromkeys(outcome_ids, ())
    account.settled = dict.fromkeys(settled_ids, ())
    account.validate_internal_state()
    return account


# -- encode / decode ---------------------------------------------------------------------------


class Capture(NamedTuple):
    """A partition's accounts as plain data at the end of a batch, waiting for the log
    position its commit gives them: a pipelined stage decides the next batch before the
    commit of this one reports where its events ended (:meth:`encode_capture` then)."""

    partition: int
    last_hash: bytes  # the chain's tail after the batch
    accounts: list[list[Any]]


def capture(partition: int, last_hash: bytes, book: AccountBook) -> Capture:
    return Capture(partition, last_hash, [account_state(account) for account in book])


def encode_capture(captured: Capture, events_next: int, topic: str) -> list[Output]:
    """The records of the snapshot ``captured`` taken when the log ended at ``events_next``."""
    body = {
        "format": FORMAT,
        "partition": captured.partition,
        "events_next": events_next,
        "last_hash": captured.last_hash.hex(),
        "accounts": captured.accounts,
    }
    payload = json.dumps(body, separators=(",", ":")).encode()
    return snapshot_outputs(topic, captured.partition, MAGIC, events_next, payload)


def encode(state: PartitionState, topic: str) -> list[Output]:
    """The records of one snapshot (to partition ``state.partition`` of ``topic``)."""
    captured = capture(state.partition, state.last_hash, state.book)
    return encode_capture(captured, state.events_next, topic)


def decode(payload: bytes, reference: ReferenceData) -> PartitionState:
    """A snapshot's (decompressed) payload back into the partition's state."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise SnapshotError(f"unreadable snapshot: {exc}") from exc
    if body.get("format") != FORMAT:
        raise SnapshotError(f"unknown snapshot format {body.get('format')!r}")
    book = AccountBook(reference)
    for data in body["accounts"]:
        account = restore_account(data)
        book.accounts[account.account_id] = account
    return PartitionState(
        body["partition"], body["events_next"], bytes.fromhex(body["last_hash"]), book
    )


def latest(source: LogSource, partition: int, reference: ReferenceData) -> PartitionState | None:
    """The newest complete snapshot of ``account-snapshots[partition]``, or None."""
    try:
        found = snapshot_log.latest(source, ACCOUNT_SNAPSHOTS, partition, MAGIC)
    except SnapshotLogError as exc:
        raise SnapshotError(str(exc)) from exc
    if found is None:
        return None
    state = decode(found[1], reference)
    if state.partition != partition or state.events_next != found[0]:
        raise SnapshotError("snapshot header and body disagree")
    return state
