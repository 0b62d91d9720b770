"""The analytics API on the exchange's read model, each answer against one computed here
from the decoded log."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from tests.projections.contract import decoded, run_version
from tests.projections.exchange import Exchange
from tradex import domain
from tradex.domain import AccountBook, ReferenceData, engine
from tradex.infra.clickhouse import ChdbClickHouse
from tradex.infra.settings import Settings
from tradex.projections.analytics import Analytics, interval_ns, time_ns
from tradex.projections.analytics_model import Book, ClickHouseReadModel
from tradex.projections.projector import Event

pytestmark = pytest.mark.integration

BTC_USD = 1


@pytest.fixture(scope="module")
def built(exchange: Exchange, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The exchange's read model, built once in a chdb folder of its own."""
    if exchange.settings.clickhouse_url:
        pytest.fail("these tests run on chdb; unset TRADEX_CLICKHOUSE_URL")
    folder = tmp_path_factory.mktemp("analytics") / "chdb"
    settings = dataclasses.replace(exchange.settings, clickhouse_path=folder)
    run_version(settings, "clickhouse", 1, live=True)
    yield settings
    ChdbClickHouse.release(folder)


@pytest.fixture(scope="module")
def log(built: Settings) -> list[Event]:
    return decoded(built, ClickHouseReadModel.topics)


def trades_of(log: list[Event]) -> list[tuple[int, int, engine.Trade]]:
    """(engine time, offset, trade) in trade order."""
    found = [
        (e.body.event_time_ns, e.offset, e.body) for e in log if isinstance(e.body, engine.Trade)
    ]
    assert found, "the exchange traded nothing"
    return sorted(found, key=lambda t: (t[0], t[1]))


def table(query: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = query.arrow().to_pylist()
    return rows


@pytest.mark.parametrize("interval", ["50us", "1ms", "1s"])
def test_candles_equal_candles_computed_from_the_trades(
    built: Settings, log: list[Event], interval: str
) -> None:
    step = interval_ns(interval)
    expected: dict[int, dict[str, Any]] = {}
    for time_ns_, _offset, trade in trades_of(log):
        bucket = time_ns_ // step * step
        candle = expected.get(bucket)
        if candle is None:
            candle = expected[bucket] = {
                "open": trade.price, "high": trade.price, "low": trade.price,
                "volume_lots": 0, "trades": 0, "price_qty": 0,
            }  # fmt: skip
        candle["high"] = max(candle["high"], trade.price)
        candle["low"] = min(candle["low"], trade.price)
        candle["close"] = trade.price
        candle["volume_lots"] += trade.qty
        candle["trades"] += 1
        candle["price_qty"] += trade.price * trade.qty
    query = Analytics(built).candles("BTC-USD", interval)
    assert "FROM" in query.sql and ".trades" in query.sql, "the SQL is there to read"
    found = {
        row["bucket_ns"]: {
            k: row[k] for k in ("open", "high", "low", "close", "volume_lots", "trades")
        }
        | {"price_qty": int(row["price_qty"])}
        for row in table(query)
    }
    assert found == expected
    if interval == "50us":
        assert len(found) > 5, "too few candles to mean anything"
    frame = query.df()
    assert list(frame["bucket_ns"]) == sorted(expected)
    price = table(query)[0]["open_price"]  # 1 tick = 1 cent per lot of 0.00001 BTC
    assert price == Decimal(expected[min(expected)]["open"]) * 1000


def test_vwap_equals_a_hand_computation(built: Settings, log: list[Event]) -> None:
    trades = trades_of(log)
    middle = trades[len(trades) // 2][0]
    analytics = Analytics(built)
    for start, end in ((None, None), (middle, None), (None, middle)):
        chosen = [
            t for when, _o, t in trades
            if (start is None or when >= start) and (end is None or when < end)
        ]  # fmt: skip
        assert chosen
        vwap = Fraction(sum(t.price * t.qty for t in chosen), sum(t.qty for t in chosen))
        (row,) = table(analytics.vwap("BTC-USD", start, end))
        assert row["trades"] == len(chosen)
        assert Fraction(int(row["price_qty"]), row["volume_lots"]) == vwap
        assert row["vwap_ticks"] == pytest.approx(float(vwap), rel=1e-12)
        assert abs(row["vwap_price"] - Decimal(vwap.numerator * 1000) / vwap.denominator) < Decimal(
            "1e-9"
        )


def test_positions_over_time_end_at_the_balances(built: Settings, log: list[Event]) -> None:
    book = AccountBook(ReferenceData())
    for event in log:
        if event.topic == "account-events":
            book.apply(event.body)
    analytics = Analytics(built)
    checked = 0
    for account in book:
        balances = account.balances()
        rows = table(analytics.positions(account.account_id))
        last = {row["asset"]: row["balance"] for row in rows}  # rows in log order
        totals = {asset: available + held for asset, (available, held) in balances.items()}
        assert last == {asset: total for asset, total in totals.items() if total or asset in last}
        if "BTC" in last:
            (btc,) = table(analytics.positions(account.account_id, "BTC", "1s"))
            assert btc["balance"] == sum(balances["BTC"]), "the base asset's last position"
            checked += 1
    assert checked > 5


def test_pnl_after_each_fill_equals_the_fills_marked_at_their_price(
    built: Settings, log: list[Event]
) -> None:
    fills = [e.body for e in log if isinstance(e.body, domain.FillSettled)]
    account = max(
        {f.account_id for f in fills}, key=lambda a: sum(f.account_id == a for f in fills)
    )
    position = cash = 0
    expected = []
    for fill in (f for f in fills if f.account_id == account):  # log order of its partition
        sign = 1 if fill.side == "BUY" else -1
        position += sign * fill.qty
        cash += -sign * fill.notional - fill.fee
        expected.append((position, cash, cash + position * fill.price * 1))
    rows = table(Analytics(built).pnl(account, "BTC-USD"))
    assert [(r["position_lots"], r["cash_quote"], r["pnl_quote"]) for r in rows] == expected


def test_pnl_summed_over_accounts_is_minus_the_fees(built: Settings, log: list[Event]) -> None:
    fills = [e.body for e in log if isinstance(e.body, domain.FillSettled)]
    accounts = sorted({f.account_id for f in fills})
    analytics = Analytics(built)
    last_close = trades_of(log)[-1][2].price
    total = 0
    for account in accounts:
        rows = table(analytics.pnl(account, BTC_USD, "100us"))
        assert rows[-1]["mark_ticks"] == last_close
        mine = [f for f in fills if f.account_id == account]
        assert rows[-1]["fees_quote"] == sum(f.fee for f in mine)
        total += rows[-1]["pnl_quote"]
    assert total == -sum(f.fee for f in fills), "trading is zero-sum but for the fees"


def top(book: Book) -> tuple[int | None, int | None]:
    if not book.bids and not book.asks:
        return None, None
    return book.best_bid, book.best_ask


@pytest.mark.parametrize("at", ["log", "arrival"])
def test_trades_with_the_top_of_the_book(built: Settings, log: list[Event], at: str) -> None:
    """Each trade's top of the book, replayed here: just before the trade in the log, or
    after the last book update of an earlier engine time."""
    book = Book()
    updated = False
    seen_at_time: dict[int, tuple[int | None, int | None]] = {}
    expected = []
    last_time = None
    for event in (e for e in log if e.topic == "engine-events"):
        body = event.body
        when = body.event_time_ns
        if when != last_time:
            seen_at_time[when] = (book.best_bid, book.best_ask) if updated else (None, None)
            last_time = when
        if isinstance(body, engine.L2Delta):
            book.set_level(body.side, body.price, body.qty)
            updated = True
        elif isinstance(body, engine.Trade):
            now = (book.best_bid, book.best_ask) if updated else (None, None)
            expected.append((body.trade_id, now if at == "log" else seen_at_time[when]))
    rows = table(Analytics(built).trades_with_top("BTC-USD", at=at))
    assert [(r["trade_id"], (r["bid_price"], r["ask_price"])) for r in rows] == expected


def test_bad_arguments_are_refused_before_any_query(built: Settings) -> None:
    analytics = Analytics(built)
    for bad in ("5", "1 minute", "0s", "1w"):
        with pytest.raises(ValueError, match="interval"):
            interval_ns(bad)
    with pytest.raises(ValueError, match="not a symbol"):
        analytics.candles("BTC-USD'; DROP DATABASE x; --")
    with pytest.raises(ValueError, match="at must be"):
        analytics.trades_with_top(1, at="later")
    with pytest.raises(TypeError):
        time_ns(1.5)
    assert interval_ns("250ms") == 250_000_000
