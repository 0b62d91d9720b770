"""Snapshots of one partition's accounts on the compacted topic ``account-snapshots``.

A snapshot is an optimisation, never a source of truth: it says "the fold of
``account-events[p]`` records with offset < ``events_next`` is this", and a rebuild reads
the events from ``events_next`` on. It is written by the partition's single writer inside
its Kafka transaction, the one after the commit whose ``account-events`` end it names
(:meth:`tradex.infra.stage.Processor.committed`), so a snapshot is visible only if its
events are.

Format (internal to the account processor, versioned): JSON of the state, zlib-compressed,
split into pieces of at most ``PIECE_BYTES_MAX`` (Kafka refuses records over ~1 MB). Each
piece is one record, key ``b"<partition>/<index>"`` on partition ``p`` (compaction keeps
the newest piece per key), value ``MAGIC | events_next | index | count | bytes``. The
pieces of one snapshot are consecutive (one transaction, one writer); a reader takes the
newest complete run.

What is kept per account: version, balances, open orders, pending withdrawals and the
*ids* of the remembered commands (idempotency window), not their events: a duplicate is
still recognised after a restore, and its original outcome is read from the log
(:meth:`tradex.commands.client.CommandClient.find_outcome`).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from confluent_kafka import Consumer, TopicPartition

from tradex.domain.account import Account, OpenOrder
from tradex.domain.book import AccountBook
from tradex.domain.events import WithdrawalRequested
from tradex.domain.reference import ReferenceData
from tradex.infra.kafka import admin_timeout_s, consumer_config, read_partition
from tradex.infra.settings import Settings
from tradex.infra.stage import Output

FORMAT = 1
MAGIC = b"TXS1"
_HEADER = struct.Struct(">4sqII")  # magic, events_next, index, count
PIECE_BYTES_MAX = 512 * 1024
PIECES_MAX = 4_096  # 2 GB compressed: far beyond a partition we would snapshot
TAIL_RECORDS_START = 64  # a snapshot is looked for in the last N records, N doubling


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
    ]


def restore_account(data: list[Any]) -> Account:
    account_id, version, available, held, orders, withdrawals, outcome_ids = data
    account = Account(account_id)
    account.version = version
    account.available = dict((asset, amount) for asset, amount in available)
    account.held = dict((asset, amount) for asset, amount in held)
    for fields in orders:
        order = OpenOrder.__new__(OpenOrder)
        for name, value in fields.items():
            setattr(order, name, value)
        account.orders[order.order_id] = order
    for fields in withdrawals:
        withdrawal = WithdrawalRequested(*fields)
        account.withdrawals[withdrawal.withdrawal_id] = withdrawal
    # Ids only: a duplicate is recognised (empty original outcome, see the module doc).
    account.outcomes = dict.fromkeys(outcome_ids, ())
    account.validate_internal_state()
    return account


# -- encode / decode ---------------------------------------------------------------------------


def encode(state: PartitionState, topic: str) -> list[Output]:
    """The records of one snapshot (to partition ``state.partition`` of ``topic``)."""
    body = {
        "format": FORMAT,
        "partition": state.partition,
        "events_next": state.events_next,
        "last_hash": state.last_hash.hex(),
        "accounts": [account_state(account) for account in state.book],
    }
    packed = zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 1)
    pieces = [packed[i : i + PIECE_BYTES_MAX] for i in range(0, len(packed), PIECE_BYTES_MAX)]
    assert 0 < len(pieces) <= PIECES_MAX, "snapshot too large"
    outputs = []
    for index, piece in enumerate(pieces):
        header = _HEADER.pack(MAGIC, state.events_next, index, len(pieces))
        key = f"{state.partition}/{index}".encode()
        outputs.append(Output(topic, header + piece, key, state.partition))
    return outputs


def decode(pieces: list[bytes], reference: ReferenceData) -> PartitionState:
    try:
        body = json.loads(zlib.decompress(b"".join(pieces)))
    except (zlib.error, ValueError) as exc:
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


def _runs(records: Iterator[tuple[bytes, int]]) -> Iterator[tuple[int, list[bytes]]]:
    """Complete snapshots (events_next, pieces) among (value, offset) records, in order."""
    current: list[bytes] = []
    current_next = -1
    for value, _offset in records:
        if len(value) < _HEADER.size:
            current = []
            continue
        magic, events_next, index, count = _HEADER.unpack_from(value)
        if magic != MAGIC or not 0 <= index < count <= PIECES_MAX:
            current = []
            continue
        if index == 0:
            current, current_next = [], events_next
        elif events_next != current_next or index != len(current):
            current = []  # a fragment (older pieces left by compaction)
            continue
        current.append(value[_HEADER.size :])
        if len(current) == count:
            yield current_next, current
            current = []


def latest(
    settings: Settings, topic: str, partition: int, reference: ReferenceData
) -> PartitionState | None:
    """The newest complete snapshot of ``partition``, or None. Reads only the log's tail,
    widening the window until a snapshot is found or the whole log was read."""
    probe = Consumer(consumer_config(settings, group_id="tradex-reader"))
    try:
        low, high = probe.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=admin_timeout_s
        )
    finally:
        probe.close()
    window = TAIL_RECORDS_START
    while True:
        start = max(low, high - window)
        found: tuple[int, list[bytes]] | None = None
        records = (
            (m.value() or b"", m.offset() or 0)
            for m in read_partition(settings, topic, partition, start, high)
        )
        for run in _runs(records):
            found = run
        if found is not None:
            state = decode(found[1], reference)
            if state.partition != partition or state.events_next != found[0]:
                raise SnapshotError("snapshot header and body disagree")
            return state
        if start <= low:
            return None
        window *= 4
