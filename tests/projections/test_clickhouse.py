"""The ``clickhouse`` read model on real chdb, over a real exchange's log."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.projections.chdb_folder import private_folder
from tests.projections.contract import (
    ProjectorContract,
    decoded,
    digests,
    ends,
    run_process,
    run_version,
)
from tests.projections.exchange import Exchange
from tradex import domain
from tradex.domain import engine
from tradex.infra.clickhouse import ChdbClickHouse
from tradex.infra.settings import Settings
from tradex.log.source import Place
from tradex.projections.analytics import Analytics
from tradex.projections.analytics_model import Book, ClickHouseReadModel
from tradex.projections.clickhouse_store import below
from tradex.projections.projector import Event

pytestmark = pytest.mark.integration

NAME = "clickhouse"


class TestClickHouseContract(ProjectorContract):
    name: ClassVar[str] = NAME

    @pytest.fixture
    def store(self, exchange: Exchange, tmp_path: Path) -> Iterator[Settings]:
        yield from private_folder(exchange.settings, tmp_path / "chdb")


@pytest.fixture
def store(exchange: Exchange, tmp_path: Path) -> Iterator[Settings]:
    yield from private_folder(exchange.settings, tmp_path / "chdb")


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in Analytics(settings).sql(sql).arrow().to_pylist()]


def reader(settings: Settings) -> str:
    return Analytics(settings).db


def test_tables_hold_the_logs_records(store: Settings) -> None:
    run_version(store, NAME, 1, live=True)
    events = decoded(store, ClickHouseReadModel.topics)
    kinds = Counter(type(e.body) for e in events)
    db = reader(store)
    trades = [e for e in events if isinstance(e.body, engine.Trade)]
    assert trades, "the exchange traded nothing"
    found = rows(
        store,
        f"SELECT instrument_id, trade_id, price, qty, taker_side, maker_order_id, "
        f"maker_account_id, taker_order_id, taker_account_id, event_time_ns, log_partition, "
        f"log_offset FROM {db}.trades",
    )
    assert sorted(found) == sorted((*e.body, e.partition, e.offset) for e in trades)
    fills = rows(store, f"SELECT order_id, trade_id, side, price, qty, fee FROM {db}.fills")
    assert sorted(fills) == sorted(
        (b.order_id, b.trade_id, b.side, b.price, b.qty, b.fee)
        for b in (e.body for e in events)
        if isinstance(b, domain.FillSettled)
    )
    assert len(fills) == 2 * len(trades), "two legs settled per trade"
    postings = sum(len(domain.postings_of(e.body)) for e in events if e.topic == "account-events")
    counts = dict(
        rows(
            store,
            f"SELECT 'postings', count() FROM {db}.postings UNION ALL "
            f"SELECT 'order_events', count() FROM {db}.order_events UNION ALL "
            f"SELECT 'book_updates', count() FROM {db}.book_updates",
        )
    )
    order_kinds = (
        *(k for k in domain.ENGINE_EVENT_TYPES if k not in (engine.L2Delta, engine.RulesApplied)),
        domain.OrderAccepted, domain.OrderRejected, domain.CancelRequested,
        domain.FillSettled, domain.HoldReleased, domain.OrderAmended, domain.AmendSettled,
    )  # fmt: skip
    assert counts == {
        "postings": postings,
        "order_events": sum(kinds[k] for k in order_kinds),
        "book_updates": kinds[engine.L2Delta],
    }
    types = dict(rows(store, f"SELECT event_type, count() FROM {db}.order_events GROUP BY 1"))
    assert types == {k.__name__: kinds[k] for k in order_kinds if kinds[k]}
    assert types.get("OrderAmended", 0) > 0, "the workload amended nothing"
    # an amend the engine confirmed: the order's bounds after it, its release as −hold_delta
    settled = sorted(
        (b.order_id, b.account_id, b.instrument_id, b.price_bound, b.qty_bound, b.hold_asset,
         -b.hold_released)
        for b in (e.body for e in events)
        if isinstance(b, domain.AmendSettled)
    )  # fmt: skip
    assert any(row[-1] < 0 for row in settled), "no amend confirmed with a hold released"
    assert sorted(rows(store, f"SELECT order_id, account_id, instrument_id, price, qty, "
                              f"hold_asset, hold_delta FROM {db}.order_events "
                              "WHERE event_type = 'AmendSettled'")) == settled  # fmt: skip


def replayed(events: list[Event]) -> Iterator[tuple[engine.L2Delta, Book]]:
    """Each book update of ``events`` with its instrument's book after it."""
    books: dict[int, Book] = {}
    for event in events:
        delta = event.body
        if isinstance(delta, engine.L2Delta):
            book = books.setdefault(delta.instrument_id, Book())
            book.set_level(delta.side, delta.price, delta.qty)
            book.check()
            yield delta, book


def test_book_top_follows_every_update_and_reloads_at_the_stored_positions(
    store: Settings,
) -> None:
    events = decoded(store, ClickHouseReadModel.topics)
    engine_events = [e for e in events if e.topic == "engine-events"]
    half = engine_events[: len(engine_events) // 2]
    until = {place: 0 for place in ends(store, ClickHouseReadModel)}
    for event in half:
        until[(event.topic, event.partition)] = event.offset + 1
    run_version(store, NAME, 1, until=until, live=True)  # engine events stop half way
    projector = ClickHouseReadModel(store, 1)
    projector.open()
    try:
        expected = {delta.instrument_id: book for delta, book in replayed(half)}
        assert {i: (b.bids, b.asks) for i, b in projector.books.items()} == {
            i: (b.bids, b.asks) for i, b in expected.items()
        }, "the book loaded on open is not the book at the stored positions"
    finally:
        projector.close()
    run_version(store, NAME, 1)  # on to the end, from the loaded book
    tops = [
        (delta.instrument_id, delta.book_seq, book.best_bid, book.bids.get(book.best_bid, 0),
         book.best_ask, book.asks.get(book.best_ask, 0))
        for delta, book in replayed(engine_events)
    ]  # fmt: skip
    found = rows(
        store,
        f"SELECT instrument_id, book_seq, bid_price, bid_qty, ask_price, ask_qty "
        f"FROM {reader(store)}.book_top ORDER BY instrument_id, book_seq",
    )
    assert found == sorted(tops)
    assert [t[1] for t in tops] == list(range(1, len(tops) + 1)), "book_seq is dense"


def test_a_batch_written_twice_reads_as_once(store: Settings) -> None:
    """A crash between a batch's rows and its positions, simulated in this process with
    merges stopped (so the duplicates stay on disk): the restart writes the same rows
    again; raw counts double, every FINAL read equals a clean run."""
    cls = ClickHouseReadModel
    events = decoded(store, cls.topics)
    first, rest = events[: len(events) // 2], events[len(events) // 2 :]
    reached: dict[Place, int] = {}
    for event in first:
        reached[(event.topic, event.partition)] = event.offset + 1
    projector = cls(store, 1)
    assert projector.open() == {}
    ch = ChdbClickHouse(store.clickhouse_path)
    ch.pin()  # the session (and its stopped merges) outlives the "crashed" projector
    try:
        for table in cls.tables:
            ch.command(f"SYSTEM STOP MERGES {projector.database}.{table.name}")
        projector.apply(first, reached)
        written = projector.rows(rest)  # the second batch's rows reach the tables ...
        for name, data in written.items():
            if data.num_rows:
                ch.insert_arrow(f"{projector.database}.{name}", data)
        projector.close()  # ... and the process dies before its positions
        assert cls(store, 1).positions() == reached
        again = cls(store, 1)
        assert again.open() == reached
        again.apply(rest, ends(store, cls))  # the restart writes the same rows again
        again.close()
        again.make_live()
        twice = digests(store, NAME, 1)
        raw = {
            t.name: ch.query_rows(f"SELECT count() FROM {again.database}.{t.name}")[0][0]
            for t in cls.tables
        }
        final = {name: count for name, (count, _digest) in twice[1].items()}
        doubled = {name for name, data in written.items() if data.num_rows}
        assert doubled, "the second batch wrote no rows"
        for name in doubled:
            assert raw[name] == final[name] + written[name].num_rows, name
        analytics = Analytics(store)
        queries = [analytics.candles(1, "100us"), analytics.vwap(1), analytics.positions(3)]
        before = [q.arrow() for q in queries]
        run_version(store, NAME, 2)
        assert digests(store, NAME, 2) == twice
        cls(store, 2).make_live()
        assert [q.arrow() for q in queries] == before
    finally:
        ch.unpin()


def test_a_crash_before_the_positions_then_a_restart_changes_no_query(
    store: Settings, tmp_path: Path
) -> None:
    """The real fault point: ``tradex run projector`` dies after a batch's rows, before its
    positions; rows past the stored positions are there; the restart writes them again;
    every query equals a clean run's."""
    killed = run_process(store, NAME, fault="sink_before_commit:5")
    assert killed.returncode == 137, killed.stderr[-2000:]
    cls = ClickHouseReadModel
    stored = cls(store, 1).positions()
    database = cls(store, 1).database
    with ChdbClickHouse.borrowed(store.clickhouse_path) as ch:
        past = ch.query_rows(
            f"SELECT count() FROM {database}.order_events WHERE NOT ({below(stored)})"
        )[0][0]
    assert past > 0, "the crash left no rows past the stored positions"
    resumed = run_process(store, NAME)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    clean = dataclasses.replace(store, clickhouse_path=tmp_path / "clean")
    run_version(clean, NAME, 1, live=True)
    ChdbClickHouse.release(clean.clickhouse_path)
    assert answers(store) == answers(clean)


def answers(settings: Settings) -> list[Any]:
    """What a quant would see: the analytics' answers on ``settings``' read model."""
    a = Analytics(settings)
    queries = (
        a.candles("BTC-USD", "50us"), a.vwap("BTC-USD"), a.positions(5), a.trades_with_top(1),
        a.pnl(5, 1, "100us"),
        a.sql(f"SELECT * FROM {a.db}.order_events ORDER BY order_id, log_topic, log_offset"),
    )  # fmt: skip
    return [q.arrow() for q in queries]
