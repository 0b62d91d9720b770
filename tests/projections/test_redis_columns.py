"""The ``redis`` read model's columnar read equals its row path (its twin): the same batches
of a whole exchange log, decoded into columns and rebuilt as records
(:func:`tradex.projections.column_events.events_of`) or decoded record by record, give the
same keys and values."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest

from tests.projections.exchange import Exchange, column_batches, row_events
from tradex.infra.settings import Settings
from tradex.log.batch import RecordBatch
from tradex.log.source import Place
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, REFERENCE_EVENTS
from tradex.projections import redis_layout as layout
from tradex.projections.column_events import bodies_of, events_of
from tradex.projections.market import RedisReadModel, RedisRowReadModel
from tradex.projections.market_accounts import ACCOUNT_TYPES
from tradex.projections.market_fold import MarketState
from tradex.projections.projector import ColumnarBatch
from tradex.projections.redis_store import Ops
from tradex.schemas.codec import Codec
from tradex.schemas.columns import STATUS_DECODED, STATUS_IGNORED

pytestmark = pytest.mark.integration

CODEC = Codec.offline()


def _positions(batch: RecordBatch) -> dict[Place, int]:
    moved: dict[Place, int] = {}
    for i in range(len(batch)):
        place = batch.place(i)
        moved[place] = max(moved.get(place, 0), int(batch.offset[i]) + 1)
    return moved


def test_the_columnar_read_equals_the_row_path(
    exchange: Exchange, redis_settings: Settings
) -> None:
    by_columns = RedisReadModel(redis_settings, 1)
    twin = dataclasses.replace(redis_settings, topic_prefix=f"{redis_settings.topic_prefix}twin-")
    by_rows = RedisRowReadModel(twin, 1)
    assert by_columns.columnar and not by_rows.columnar
    by_columns.open()
    by_rows.open()
    rebuilt = 0
    try:
        for batch, decoded in column_batches(exchange.settings, RedisReadModel, 500):
            assert set(decoded.status.tolist()) <= {STATUS_DECODED, STATUS_IGNORED}
            columnar = ColumnarBatch(batch, decoded.types)
            events = row_events(batch, RedisReadModel)
            # the rebuilt records are the decoded ones (all but the envelope)
            again = events_of(columnar)
            assert [e._replace(envelope=None) for e in events] == again
            rebuilt += len(again)
            positions = _positions(batch)
            by_rows.apply(events, positions)
            by_columns.apply_columns(columnar, positions)
    finally:
        by_columns.close()
        by_rows.close()
    assert rebuilt > 1_000
    with by_columns.frozen() as columns_view, by_rows.frozen() as rows_view:
        assert columns_view.positions == rows_view.positions
        assert columns_view.tables.keys() == rows_view.tables.keys()
        for table in rows_view.tables:
            assert columns_view.rows(table) == rows_view.rows(table), table
        assert len(rows_view.tables) >= 5


@pytest.mark.parametrize(("records_max", "kept"), [(97, 3), (5_000, 1_000)])
def test_the_columnar_account_fold_equals_the_row_fold(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch, records_max: int, kept: int
) -> None:
    """The account side folded in columns (market_accounts.fold_accounts) against the row
    fold (MarketState._account), batch by batch without Redis: the same wallets, new
    accounts, changed balances and channel entries (only the last ``kept`` of a batch)."""
    monkeypatch.setattr(layout, "ACCOUNT_EVENTS_KEPT", kept)
    by_columns, by_rows = MarketState(), MarketState()
    seen: set[type] = set()
    trimmed = 0
    for batch, decoded in column_batches(exchange.settings, RedisReadModel, records_max):
        columnar = ColumnarBatch(batch, decoded.types)
        events = events_of(columnar)
        others = [e for e in events if type(e.body) not in ACCOUNT_TYPES]
        seen |= {type(e.body) for e in events} & ACCOUNT_TYPES
        rows = by_rows.fold(events, ENGINE_EVENTS, ACCOUNT_EVENTS, REFERENCE_EVENTS)
        assert bodies_of(
            ColumnarBatch(batch, {c: t for c, t in decoded.types.items() if c not in ACCOUNT_TYPES})
        ) == [e.body for e in others]
        columns = by_columns.fold_columns([e.body for e in others], columnar.types)
        assert columns.new_accounts == rows.new_accounts
        assert dict(columns.balances) == dict(rows.balances)
        assert not columns.account_events
        assert sorted(columns.account_streams) == sorted(rows.account_events)
        expected = Ops()
        for account_id, entries in rows.account_events.items():
            expected.xadd(
                    layout.account_events(account_id), layout.ACCOUNT_EVENTS_KEPT,
                    [(layout.entry_id(seq), entry) for seq, entry in entries],
                    by_rows.wallets[account_id].seq,
                )  # fmt: skip
        assert _unpacked(columns.account_ops) == {
            op[1]: [x.encode() if isinstance(x, str) else x for x in op] for op in expected.program
        }
        trimmed += sum(
            1 for a, entries in rows.account_events.items() if entries.maxlen == len(entries)
        )
        assert {a: (w.seq, w.balances) for a, w in by_columns.wallets.items()} == {
            a: (w.seq, w.balances) for a, w in by_rows.wallets.items()
        }
    assert seen == ACCOUNT_TYPES, f"no {ACCOUNT_TYPES - seen} in the log"
    assert kept > 10 or trimmed > 0, "some batch had more entries than a stream keeps"


def _unpacked(packed: list[tuple[bytes, int]]) -> dict[str, list[Any]]:
    """Packed xadd ops by key (what the batch script unpacks)."""
    ops: dict[str, list[Any]] = {}
    for blob, count in packed:
        unpacker = msgpack.Unpacker(raw=True)
        unpacker.feed(blob)
        found = list(unpacker)
        assert len(found) == count
        for op in found:
            ops[op[1].decode()] = op
    return ops


def test_a_payload_with_packed_ops_is_the_program_with_them() -> None:
    ops = Ops()
    ops.bulk("hset", "a:1", ["seq", "3"])
    ops.xadd("a:1:events", 1_000, [("3-0", b"\x93\xa1x")], 3)
    plain = msgpack.unpackb(ops.payload(["t:0", "5"], ["t:0", "9"]), raw=True)
    by_kernel = Ops()
    by_kernel.bulk("hset", "a:1", ["seq", "3"])
    entries = [(b"7-0", b"e" * 40), (b"8-0", b"f" * 70_000)]
    op = [b"xadd", b"a:2:events", b"1000", *(x for entry in entries for x in entry)]
    by_kernel.packed(msgpack.packb(op, use_bin_type=False) * 2, 2)
    payload = msgpack.unpackb(by_kernel.payload(["t:0", "5"], ["t:0", "9"]), raw=True)
    assert payload[:2] == plain[:2] == [[b"t:0", b"5"], [b"t:0", b"9"]]
    assert payload[2] == [plain[2][0], op, op]
