"""The ``redis`` read model on the real Redis, over a real exchange's log: the projector
contract, the book against the matching engine, balances against the domain, channels
followed from a snapshot, tickers across a rebuild, and the read API."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import ClassVar

import pytest

from tests.market import LOT, TICK
from tests.projections.contract import CODEC, ProjectorContract, decoded, ends, run_version
from tests.projections.exchange import Exchange
from tradex.domain import AccountBook, AmendSettled, ReferenceData, Trade
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, Place
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, ORDER_REQUESTS, SETTLEMENTS
from tradex.matching.book import OutputBuffers
from tradex.matching.constants import SIDE_BUY
from tradex.matching.partition import BookConfig, PartitionEngine
from tradex.matching.recovery import replay
from tradex.matching.service import topics_of
from tradex.projections import admin
from tradex.projections import redis_layout as layout
from tradex.projections.market import RedisReadModel
from tradex.projections.projector import Event
from tradex.projections.redis_read import (
    DEPTH_MAX,
    AsyncMarketReader,
    Channel,
    MarketReader,
    NotLive,
    StreamRead,
)

pytestmark = pytest.mark.integration

INSTRUMENT = 1  # the exchange's one instrument (tests/market.py: BTC-USD)


class TestRedisContract(ProjectorContract):
    name: ClassVar[str] = "redis"

    def isolate(self, settings: Settings, request: pytest.FixtureRequest) -> Settings:
        private = request.getfixturevalue("redis_settings")
        return dataclasses.replace(settings, redis_url=private.redis_url)


@pytest.fixture
def rd(exchange: Exchange, redis_settings: Settings) -> Settings:
    return dataclasses.replace(exchange.settings, redis_url=redis_settings.redis_url)


@pytest.fixture
def reader(rd: Settings) -> Iterator[MarketReader]:
    found = MarketReader(rd)
    yield found
    found.close()


def input_offset(event: Event) -> int:
    """The ``order-requests`` offset that caused a matcher record (its event id's position:
    input offset << 16 | output index, tradex.matching.wire)."""
    value = int(event.envelope.event_id.replace("-", ""), 16)
    return (value & ((1 << 56) - 1)) >> 16


def engine_partition(settings: Settings) -> tuple[int, list[Event]]:
    """The engine-events partition of the instrument, and its records."""
    events = [e for e in decoded(settings, (ENGINE_EVENTS,)) if e.body.instrument_id == INSTRUMENT]
    partitions = {e.partition for e in events}
    assert len(partitions) == 1, partitions
    return partitions.pop(), events


def engine_levels(settings: Settings, partition: int, input_end: int) -> PartitionEngine:
    """A fresh matching engine after ``order-requests[partition]`` below ``input_end``."""
    config = BookConfig()
    with KafkaLog(settings) as source:
        engine = PartitionEngine(
            partition, CODEC, topics_of(settings), source.partitions(SETTLEMENTS),
            OutputBuffers(config.orders_max), config,
        )  # fmt: skip
        replay(source, engine, input_end)
    assert engine.next_offset > 0, "nothing was re-run"
    return engine


def book_of(engine: PartitionEngine) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    levels: dict[tuple[int, int], int] = defaultdict(int)
    for _order, _owner, side, price, remaining, _filled in engine.books[INSTRUMENT].live_orders():
        levels[(int(side), int(price))] += int(remaining)
    bids = sorted(((p, q) for (s, p), q in levels.items() if s == SIDE_BUY), reverse=True)
    asks = sorted((p, q) for (s, p), q in levels.items() if s != SIDE_BUY)
    return bids, asks


def until_engine(settings: Settings, partition: int, offset: int) -> dict[Place, int]:
    bound = ends(settings, RedisReadModel)
    bound[(ENGINE_EVENTS, partition)] = offset
    return bound


def test_the_book_equals_the_matching_engine_at_the_same_input_position(
    rd: Settings, reader: MarketReader
) -> None:
    partition, events = engine_partition(rd)
    # a cut between two inputs' records (the engine is re-run per input), then the end
    boundaries = [
        i for i in range(1, len(events)) if input_offset(events[i]) != input_offset(events[i - 1])
    ]
    middle = boundaries[len(boundaries) // 2]
    end = ends(rd, RedisReadModel)[(ENGINE_EVENTS, partition)]
    input_end = admin.log_ends(rd, (ORDER_REQUESTS,))[(ORDER_REQUESTS, partition)]
    cuts = [(events[middle].offset, input_offset(events[middle])), (end, input_end)]
    compared = 0
    for index, (position, input_end) in enumerate(cuts):
        run_version(rd, "redis", 1, until=until_engine(rd, partition, position), live=index == 0)
        engine = engine_levels(rd, partition, input_end)
        bids, asks = book_of(engine)
        found = reader.book(INSTRUMENT, DEPTH_MAX)
        assert (found.bids, found.asks) == (bids, asks), f"cut {index}"
        assert found.book_seq == engine.book_seqs[INSTRUMENT]
        bbo = reader.bbo(INSTRUMENT)
        book = engine.books[INSTRUMENT]
        assert (bbo.bid, bbo.ask, bbo.book_seq) == (
            book.best_bid(),
            book.best_ask(),
            found.book_seq,
        )
        compared += len(bids) + len(asks)
    assert compared > 0, "the books were empty: nothing was compared"


def test_balances_equal_the_domain_fold_and_the_account_channel(
    rd: Settings, reader: MarketReader
) -> None:
    run_version(rd, "redis", 1, live=True)
    book = AccountBook(ReferenceData())
    counts: dict[int, int] = defaultdict(int)
    amends: list[tuple[AmendSettled, int, tuple[int, int]]] = []  # event, seq, balance after
    for event in decoded(rd, (ACCOUNT_EVENTS,)):
        book.apply(event.body)
        counts[event.body.account_id] += 1
        if isinstance(event.body, AmendSettled):
            body = event.body
            after = book.account(body.account_id).balances()[body.hold_asset]
            amends.append((body, counts[body.account_id], after))
    # an amend the engine confirmed: its entry, with the balance after its release
    assert any(body.hold_released > 0 for body, _, _ in amends), "no hold released by an amend"
    for body, seq, after in amends:
        (entry,) = reader.read(Channel.account(body.account_id), seq - 1, count=1).entries
        assert entry[0] == seq
        fields = entry[1]
        assert (fields["type"], fields["order_id"], fields["price"], fields["qty"],
                fields["hold_released"]) == ("AmendSettled", body.order_id, body.price,
                                             body.qty, body.hold_released)  # fmt: skip
        assert fields["balances"] == ({body.hold_asset: after} if body.hold_released else {})
    checked = 0
    for account in book:
        found = reader.balances(account.account_id)
        assert found.assets == dict(account.balances()), account.account_id
        assert found.seq == counts[account.account_id]
        # the channel's newest entry carries the balances it changed, as they stand now
        latest = reader.read(Channel.account(account.account_id), found.seq - 1)
        assert [seq for seq, _ in latest.entries] == [found.seq]
        for asset, pair in latest.entries[0][1]["balances"].items():
            assert found.assets[asset] == pair
        checked += 1
    assert checked == len(tuple(book)) > 0
    totals: dict[str, int] = defaultdict(int)
    for account_id in [a.account_id for a in book] + [-1, -2, -3]:
        for asset, (available, held) in reader.balances(account_id).assets.items():
            totals[asset] += available + held
    assert dict(totals) == {"BTC": 0, "USD": 0}, "double entry"


def follow(reader: MarketReader, channel: Channel, after: int) -> tuple[list[StreamRead], int]:
    reads = []
    while True:
        found = reader.read(channel, after, count=97)
        if not found.entries:
            return reads, after
        reads.append(found)
        after = found.entries[-1][0]


def test_a_reader_resuming_from_a_book_snapshot_sees_no_gap(
    rd: Settings, reader: MarketReader
) -> None:
    partition, events = engine_partition(rd)
    run_version(rd, "redis", 1, until=until_engine(rd, partition, events[len(events) // 3].offset),
                live=True)  # fmt: skip
    snapshot = reader.book(INSTRUMENT, DEPTH_MAX)
    run_version(rd, "redis", 1, batch_records=53)
    levels = {("BUY", p): q for p, q in snapshot.bids} | {("SELL", p): q for p, q in snapshot.asks}
    reads, last = follow(reader, Channel.book(INSTRUMENT), snapshot.book_seq)
    assert reads, "no update after the snapshot"
    expected_seq = snapshot.book_seq
    for found in reads:
        assert not found.gap
        for seq, update in found.entries:
            expected_seq += 1
            assert seq == expected_seq
            if update["qty"]:
                levels[(update["side"], update["price"])] = update["qty"]
            else:
                del levels[(update["side"], update["price"])]
    final = reader.book(INSTRUMENT, DEPTH_MAX)
    assert last == final.book_seq
    started = time.monotonic()
    assert reader.read(Channel.book(INSTRUMENT), last, block_ms=300).entries == []
    assert time.monotonic() - started >= 0.25, "waited for a next entry"
    assert (
        sorted(((p, q) for (s, p), q in levels.items() if s == "BUY"), reverse=True) == final.bids
    )
    assert sorted((p, q) for (s, p), q in levels.items() if s == "SELL") == final.asks


def test_trimmed_channels_are_the_same_in_any_batching_and_report_gaps(
    rd: Settings, reader: MarketReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = 40
    monkeypatch.setattr(layout, "BOOK_UPDATES_KEPT", kept)
    monkeypatch.setattr(layout, "ACCOUNT_EVENTS_KEPT", kept)
    run_version(rd, "redis", 1, batch_records=37, live=True)
    admin.rebuild(rd, "redis", show_progress=False)
    with RedisReadModel(rd, 2).frozen() as rebuilt:
        table = rebuilt.rows("book_updates")
        assert len(table) == kept
        assert all(len(rebuilt.rows(t)) for t in ("account_events", "trades"))
        accounts = defaultdict(int)
        for account_id, _seq, _values in rebuilt.rows("account_events"):
            accounts[account_id] += 1
        assert max(accounts.values()) == kept
    run_version(rd, "redis", 3, batch_records=11)
    with RedisReadModel(rd, 3).frozen() as small, RedisReadModel(rd, 2).frozen() as big:
        assert small.digests() == big.digests()
    last = reader.bbo(INSTRUMENT).book_seq
    assert last > kept
    assert reader.read(Channel.book(INSTRUMENT), 0).gap, "entries 1.. were trimmed"
    tail = reader.read(Channel.book(INSTRUMENT), last - kept)
    assert not tail.gap
    assert [seq for seq, _ in tail.entries] == list(range(last - kept + 1, last + 1))


def expected_ticker(trades: list[Trade]) -> tuple[int, ...]:
    start, end = layout.ticker_window(trades[-1].event_time_ns)
    inside = [t for t in trades if start <= t.event_time_ns < end]
    prices = [t.price for t in inside]
    return (
        start, end, prices[0], max(prices), min(prices), prices[-1], sum(t.qty for t in inside),
        sum(t.price * t.qty for t in inside), len(inside), prices[-1] - prices[0],
    )  # fmt: skip


def test_ticker_trades_and_bbo_are_the_same_after_a_rebuild(
    rd: Settings, reader: MarketReader
) -> None:
    run_version(rd, "redis", 1, batch_records=41, live=True)
    before = (reader.ticker(INSTRUMENT), reader.trades(INSTRUMENT, 50), reader.bbo(INSTRUMENT))
    trades = [e.body for e in decoded(rd, (ENGINE_EVENTS,)) if isinstance(e.body, Trade)]
    assert before[0] is not None
    assert tuple(before[0]) == expected_ticker(trades)
    newest = trades[::-1][:50]
    assert [(t.trade_id, t.price, t.qty) for t in before[1]] == [
        (t.trade_id, t.price, t.qty) for t in newest
    ]
    assert [t.seq for t in before[1]] == list(range(len(trades), len(trades) - 50, -1))
    admin.rebuild(rd, "redis", show_progress=False)
    after = (reader.ticker(INSTRUMENT), reader.trades(INSTRUMENT, 50), reader.bbo(INSTRUMENT))
    assert after[2].version == 2
    assert after[:2] == before[:2]
    assert after[2][1:] == before[2][1:]


def test_the_async_reader_reads_what_the_sync_one_does(rd: Settings, reader: MarketReader) -> None:
    run_version(rd, "redis", 1, live=True)

    async def read_all() -> tuple[object, ...]:
        found = AsyncMarketReader(rd)
        try:
            return (
                await found.book(INSTRUMENT, 5), await found.bbo(INSTRUMENT),
                await found.ticker(INSTRUMENT), await found.trades(INSTRUMENT, 3),
                await found.balances(1), await found.read(Channel.account(1), 2, 5),
                await found.instruments(),
            )  # fmt: skip
        finally:
            await found.aclose()

    assert asyncio.run(read_all()) == (
        reader.book(INSTRUMENT, 5), reader.bbo(INSTRUMENT), reader.ticker(INSTRUMENT),
        reader.trades(INSTRUMENT, 3), reader.balances(1), reader.read(Channel.account(1), 2, 5),
        reader.instruments(),
    )  # fmt: skip
    instrument = reader.instruments()[INSTRUMENT]
    assert (instrument["symbol"], instrument["base_scale"], instrument["quote_scale"]) == (
        "BTC-USD", 8, 2,
    )  # fmt: skip
    assert (instrument["tick_size"], instrument["lot_size"]) == (TICK, LOT)


def test_an_interrupted_rebuild_resumes_its_version(rd: Settings, reader: MarketReader) -> None:
    run_version(rd, "redis", 1, live=True)
    with RedisReadModel(rd, 1).frozen() as live:
        expected = live.digests()
    partition, events = engine_partition(rd)
    interrupted = RedisReadModel(rd, 2)
    interrupted.mark_building()
    run_version(rd, "redis", 2, until=until_engine(rd, partition, events[len(events) // 2].offset))
    assert RedisReadModel.versions(rd) == (1, 2)
    built, stats = admin.rebuild(rd, "redis", show_progress=False)
    assert built.version == 2, "the version being built, resumed"
    assert 0 < stats.events < len(events), "only what the interrupted run had not applied"
    assert RedisReadModel.versions(rd) == (2, None)
    assert reader.bbo(INSTRUMENT).version == 2
    with RedisReadModel(rd, 2).frozen() as rebuilt:
        assert rebuilt.digests() == expected
    assert RedisReadModel(rd, 1).positions() == {}, "the old version is dropped"


def test_reads_before_the_first_version_is_live_say_so(redis_settings: Settings) -> None:
    reader = MarketReader(redis_settings)
    try:
        with pytest.raises(NotLive):
            reader.book(INSTRUMENT)
        with pytest.raises(NotLive):
            reader.read(Channel.account(1), 0)
    finally:
        reader.close()
