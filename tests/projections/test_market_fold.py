"""The ``redis`` read model's fold, without Redis or Kafka: books, tickers, balances."""

from __future__ import annotations

import random
from typing import Any

import msgpack
import pytest

from tradex import domain
from tradex.domain.engine import L2Delta, RulesApplied, Trade
from tradex.projections import redis_layout as layout
from tradex.projections.market_fold import MarketState, Ticker
from tradex.projections.projector import Event
from tradex.projections.redis_read import entry_fields
from tradex.schemas.envelope import Envelope

ENGINE, ACCOUNTS, REFERENCE = "engine-events", "account-events", "reference-events"
T0 = 1_700_000_000_000_000_000
MINUTE = layout.MINUTE_NS


def event(topic: str, offset: int, body: Any) -> Event:
    envelope = Envelope("id", type(body).__name__, T0, "c", "c", "", "test", offset, b"\0" * 32)
    return Event(topic, 0, offset, envelope, body)


def fold(state: MarketState, bodies: list[tuple[str, Any]], start: int = 0) -> Any:
    events = [event(topic, start + i, body) for i, (topic, body) in enumerate(bodies)]
    return state.fold(events, ENGINE, ACCOUNTS, REFERENCE)


def trades_over_days(days: int, seed: int) -> list[Trade]:
    rng = random.Random(seed)
    found, time_ns = [], T0
    for n in range(1, days * 24 * 60 // 7):
        time_ns += rng.randrange(1, 14 * MINUTE)
        price, qty = rng.randint(90, 110), rng.randint(1, 50)
        found.append(Trade(1, n, price, qty, rng.choice(("BUY", "SELL")), 1, 1, 2, 2, time_ns))
    return found


def expected_ticker(trades: list[Trade]) -> Ticker:
    """By brute force: every trade in the window of the last one."""
    start, end = layout.ticker_window(trades[-1].event_time_ns)
    inside = [t for t in trades if start <= t.event_time_ns < end]
    return Ticker(
        start, end, inside[0].price, max(t.price for t in inside), min(t.price for t in inside),
        inside[-1].price, sum(t.qty for t in inside), sum(t.price * t.qty for t in inside),
        len(inside), inside[-1].price - inside[0].price,
    )  # fmt: skip


def market_view(state: MarketState) -> dict[int, Any]:
    return {
        i: (m.fields(), dict(m.bids), dict(m.asks), {k: list(v) for k, v in m.candles.items()},
            m.ticker)
        for i, m in state.markets.items()
    }  # fmt: skip


def test_the_ticker_is_the_window_of_the_last_trade_in_any_batching() -> None:
    trades = trades_over_days(6, seed=5)
    whole = MarketState()
    touched = fold(whole, [(ENGINE, t) for t in trades])
    market = whole.markets[1]
    assert market.ticker == expected_ticker(trades)
    assert market.ticker.trades < len(trades), "the window left older trades out"
    start, end = layout.ticker_window(trades[-1].event_time_ns)
    assert all(start <= minute * MINUTE < end for minute in market.candles)
    assert len(touched.trades[1]) == layout.TRADES_KEPT, "a batch keeps the stream's length"
    assert touched.trades[1][-1][0] == len(trades)
    rng = random.Random(6)
    split = MarketState()
    at = 0
    while at < len(trades):
        size = rng.randint(1, 300)
        fold(split, [(ENGINE, t) for t in trades[at : at + size]], at)
        assert split.markets[1].ticker == expected_ticker(trades[: at + size])
        at += size
    assert market_view(split) == market_view(whole)


def test_the_book_follows_l2_deltas_and_their_book_seq() -> None:
    state = MarketState()
    deltas = [
        L2Delta(1, "BUY", 100, 5, 1, T0), L2Delta(1, "SELL", 103, 2, 2, T0),
        L2Delta(1, "BUY", 101, 7, 3, T0 + 1), L2Delta(1, "BUY", 100, 0, 4, T0 + 1),
        L2Delta(1, "SELL", 102, 4, 5, T0 + 2),
    ]  # fmt: skip
    touched = fold(
        state, [(ENGINE, RulesApplied(1, 500, False, T0)), *[(ENGINE, d) for d in deltas]]
    )
    market = state.markets[1]
    assert market.bids == {101: 7}
    assert market.asks == {103: 2, 102: 4}
    assert (market.best_bid, market.best_bid_qty, market.best_ask, market.best_ask_qty) == (
        101, 7, 102, 4,
    )  # fmt: skip
    assert market.book_seq == 5
    assert market.price_band_bps == 500
    assert touched.levels[(1, "BUY")] == {100: False, 101: False}
    assert [u[0] for u in touched.book_updates[1]] == [1, 2, 3, 4, 5]
    legacy = fold(state, [(ENGINE, L2Delta(1, "SELL", 103, 0, 0, T0 + 3))], 10)
    assert market.book_seq == 6, "records without book_seq are counted"
    assert legacy.levels[(1, "SELL")] == {103: True}
    with pytest.raises(AssertionError, match="book_seq 8 after 6"):
        fold(state, [(ENGINE, L2Delta(1, "BUY", 99, 1, 8, T0 + 3))], 20)


def test_a_removed_level_must_exist_and_engine_time_must_not_go_back() -> None:
    state = MarketState()
    with pytest.raises(AssertionError, match="removed, not there"):
        fold(state, [(ENGINE, L2Delta(2, "BUY", 100, 0, 1, T0))])
    state = MarketState()
    fold(state, [(ENGINE, L2Delta(2, "BUY", 100, 3, 1, T0 + 5))])
    with pytest.raises(AssertionError, match="engine time"):
        fold(state, [(ENGINE, L2Delta(2, "BUY", 100, 4, 2, T0 + 4))], 1)


def posting(account: int, asset: str, delta: int) -> domain.Posting:
    return domain.Posting(account, asset, delta)


def test_balances_follow_postings_and_holds_and_the_channel_numbers_events() -> None:
    external = domain.EXTERNAL_ACCOUNT
    bodies = [
        domain.Deposited("d1", 7, T0, "USD", 1_000, (posting(7, "USD", 1_000),
                                                        posting(external, "USD", -1_000))),
        domain.WithdrawalRequested("w1", 7, T0 + 1, "w1", "USD", 300),
        domain.WithdrawalPaid("w2", 7, T0 + 2, "w1", "USD", 300, (posting(7, "USD", -300),
                                                                  posting(external, "USD", 300))),
        domain.CommandRejected("x", 7, T0 + 3, "Deposit", "UNKNOWN", "test"),
    ]  # fmt: skip
    state = MarketState()
    touched = fold(state, [(ACCOUNTS, b) for b in bodies])
    assert state.wallets[7].balances == {"USD": [700, 0]}
    assert state.wallets[external].balances == {"USD": [-700, 0]}
    assert state.wallets[7].seq == 4
    entries = [(seq, msgpack.unpackb(entry)) for seq, entry in touched.account_events[7]]
    assert [seq for seq, _ in entries] == [1, 2, 3, 4]
    assert entries[1][1] == [
        "WithdrawalRequested",
        "w1",
        T0 + 1,
        "w1",
        "USD",
        300,
        [["USD", 700, 300]],
    ]
    assert entries[3][1] == ["CommandRejected", "x", T0 + 3, "Deposit", "UNKNOWN", "test", []]
    assert touched.balances == {7: {"USD"}, external: {"USD"}}
    with pytest.raises(AssertionError, match="available"):
        fold(state, [(ACCOUNTS, domain.WithdrawalRequested("w3", 7, T0, "w3", "USD", 701))], 9)


def _entries(touched: Any) -> dict[int, list[tuple[int, Any]]]:
    """The channel entries of a fold, by account: (seq, values) — from the row fold's
    entries or the columnar fold's packed xadd ops."""
    found: dict[int, list[tuple[int, Any]]] = {}
    for account_id, entries in touched.account_events.items():
        found[account_id] = [(seq, msgpack.unpackb(entry)) for seq, entry in entries]
    for blob, count in touched.account_ops:
        unpacker = msgpack.Unpacker(raw=True)  # entries are packed bytes
        unpacker.feed(blob)
        ops = list(unpacker)
        assert len(ops) == count
        for _xadd, key, _trim, *pairs in ops:
            account_id = int(key.split(b":")[1])
            found[account_id] = [
                (layout.entry_seq(entry_id), msgpack.unpackb(entry))
                for entry_id, entry in zip(pairs[::2], pairs[1::2], strict=True)
            ]
    return found


def test_an_amend_settled_gives_back_held_and_its_entry_shows_the_balances_after() -> None:
    """An order's hold: up with OrderAmended, down with each AmendSettled (the engine
    confirmed the amend), the rest at its end; the row fold and the columnar fold
    (market_accounts) give the same balances and channel entries."""
    from tests.projections import amends
    from tradex.projections.market import RedisReadModel

    events, batch, _positions = amends.as_read(RedisReadModel)
    by_rows, by_columns = MarketState(), MarketState()
    rows = by_rows.fold(events, ENGINE, ACCOUNTS, REFERENCE)
    columns = by_columns.fold_columns([], batch.types)
    account = amends.ACCOUNT
    entries = _entries(rows)[account]
    assert [seq for seq, _ in entries] == [1, 2, 3, 4, 5, 6]
    usd = [values[-1] for _seq, values in entries]  # the balances each event changed
    assert usd == [[["USD", *pair]] for pair in amends.BALANCES[:4]] + [
        [], [["USD", *amends.BALANCES[5]]],
    ], "the second AmendSettled released nothing: no balance in its entry"  # fmt: skip
    accepted = amends.bodies()[1]
    assert entries[1][1][:-1] == [
        "OrderAccepted", accepted.command_id, accepted.event_time_ns, amends.ORDER,
        amends.INSTRUMENT, "BUY", "GTC", 100, 10, "DECREMENT",
    ]  # fmt: skip
    fields = entry_fields("account", entries[1][1])
    assert fields["stp_mode"] == "DECREMENT" and fields["balances"] == {"USD": (90_000, 10_000)}
    settled = amends.bodies()[amends.AMEND_SETTLED_AT]
    assert entries[amends.AMEND_SETTLED_AT][1][:-1] == [
        "AmendSettled", settled.command_id, settled.event_time_ns, amends.ORDER,
        amends.INSTRUMENT, 60, 15, amends.RELEASED,
    ]  # fmt: skip
    assert by_rows.wallets[account].balances == {"USD": [100_000, 0]}
    assert _entries(columns) == _entries(rows)
    assert dict(columns.balances) == dict(rows.balances)
    assert {a: (w.seq, w.balances) for a, w in by_columns.wallets.items()} == {
        a: (w.seq, w.balances) for a, w in by_rows.wallets.items()
    }


def test_an_entry_written_before_a_field_was_appended_reads_with_its_default() -> None:
    full = ["OrderAccepted", "c1", T0, 5, 7, "SELL", "GTC", 100, 3, "CANCEL_MAKER", []]
    assert entry_fields("account", full)["stp_mode"] == "CANCEL_MAKER"
    older = [*full[:-2], [["BTC", 1, 3]]]  # no stp_mode: older code's entry
    fields = entry_fields("account", older)
    assert fields["stp_mode"] == "NONE" and fields["qty"] == 3
    assert fields["balances"] == {"BTC": (1, 3)}
    with pytest.raises(ValueError, match="OrderAccepted entry of 7 fields, expected 9"):
        entry_fields("account", [*full[:-3], []])  # a field without a default is missing
