"""Snapshot records: round trip, pieces, and leftovers of compaction (no Kafka needed)."""

from __future__ import annotations

import pytest

from tests.commands.support import BTC_USD, T0, reference_table
from tradex.commands import snapshots
from tradex.commands.snapshots import PartitionState, SnapshotError, account_state
from tradex.domain import (
    AccountBook,
    Deposit,
    OrderKind,
    PlaceOrder,
    RequestWithdrawal,
    Side,
)
from tradex.domain.ids import order_id
from tradex.log import snapshot_log

ACCOUNTS = (1, 2, 3)


def _book() -> AccountBook:
    book = AccountBook(reference_table(ACCOUNTS))
    commands = [
        Deposit("d1", 1, T0, "USD", 1_000_000),
        Deposit("d2", 2, T0, "BTC", 10_000_000),
        PlaceOrder("o1", 1, T0, BTC_USD, Side.BUY, OrderKind.GTC, 100, 20),
        PlaceOrder("o2", 2, T0, BTC_USD, Side.SELL, OrderKind.GTC, 101, 30),
        RequestWithdrawal("w1", 1, T0, "USD", 500),
        Deposit("d3", 3, T0, "USD", 5),
        PlaceOrder("o3", 3, T0, BTC_USD, Side.BUY, OrderKind.GTC, 100, 20),  # rejected
    ]
    for offset, command in enumerate(commands):
        book.handle(command, order_id(0, offset))
    return book


def _states(book: AccountBook) -> dict[int, list[object]]:
    return {account.account_id: account_state(account) for account in book}


def _values(state: PartitionState) -> list[bytes]:
    return [output.value for output in snapshots.encode(state, "snapshots")]


def test_round_trip_keeps_every_account_and_the_chain_tail() -> None:
    book = _book()
    state = PartitionState(0, 7, bytes(range(32)), book)
    outputs = snapshots.encode(state, "snapshots")
    assert {o.partition for o in outputs} == {0}
    assert [o.key for o in outputs] == [f"0/{i}".encode() for i in range(len(outputs))]
    runs = list(snapshot_log.complete_runs(_values(state), snapshots.MAGIC))
    assert len(runs) == 1
    restored = snapshots.decode(snapshot_log.decompress(runs[0][1]), reference_table(ACCOUNTS))
    assert (restored.partition, restored.events_next, restored.last_hash) == (
        0,
        7,
        bytes(range(32)),
    )
    assert _states(restored.book) == _states(book)
    # A duplicate is still recognised after a restore; it writes nothing.
    decision = restored.book.handle(Deposit("d1", 1, T0, "USD", 1), 0)
    assert decision.duplicate
    assert decision.events == ()


def test_large_snapshots_split_into_pieces_and_fragments_are_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(snapshot_log, "piece_bytes_max", 64)
    book = _book()
    older = _values(PartitionState(0, 3, bytes(32), book))
    newer = _values(PartitionState(0, 9, bytes(32), book))
    assert len(older) > 2
    # Compaction removed the older snapshot's first pieces (same keys as the newer one's),
    # leaving a fragment before the newer snapshot.
    log = older[2:] + newer + older[1:2]
    runs = list(snapshot_log.complete_runs(log, snapshots.MAGIC))
    assert [events_next for events_next, _ in runs] == [9]
    restored = snapshots.decode(snapshot_log.decompress(runs[0][1]), reference_table(ACCOUNTS))
    assert _states(restored.book) == _states(book)


def test_a_corrupt_snapshot_is_refused() -> None:
    with pytest.raises(SnapshotError):
        snapshots.decode(b"not json", reference_table(ACCOUNTS))
