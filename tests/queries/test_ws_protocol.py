"""The WebSocket messages, parsed and built (pure)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradex.projections import redis_layout as layout
from tradex.projections.redis_read import Bbo, Book
from tradex.queries import binance_format, ws_format
from tradex.queries import ws_protocol as proto
from tradex.queries.markets import Market

MARKET = Market(1, "BTC-USD", "BTCUSD", "BTC", "USD", 8, 2, 1_000, 100_000, 1_000, 0, 1_000,
                2_000, "TRADING")  # fmt: skip


def test_native_requests_parse_and_bad_ones_name_the_problem() -> None:
    found = proto.parse_native(
        '{"op": "subscribe", "channel": "book", "symbol": "BTCUSD", "id": 3}'
    )
    assert (found.op, found.channel, found.symbol, found.depth, found.request_id) == (
        "subscribe", "book", "BTCUSD", proto.DEPTH_DEFAULT, 3)  # fmt: skip
    assert proto.parse_native('{"op": "subscribe", "channel": "candles:1h", "symbol": "X"}').channel
    private = proto.parse_native('{"op": "subscribe", "channel": "fills", "accountId": 7}')
    assert (private.private, private.account_id) == (True, 7)
    auth = proto.parse_native(
        '{"op": "auth", "apiKey": "k1", "timestamp": 5, "signature": "' + "a" * 64 + '"}'
    )
    assert (auth.api_key, auth.timestamp) == ("k1", 5)
    for text, name in (
        ("{", "BAD_MESSAGE"),
        ("[]", "BAD_MESSAGE"),
        ('{"op": "subscribe", "channel": "book", "symbol": "BTCUSD", "id": [1]}', "BAD_MESSAGE"),
        ('{"op": "jump"}', "BAD_MESSAGE"),
        ('{"op": "subscribe", "channel": "candles:2m", "symbol": "X"}', "BAD_CHANNEL"),
        ('{"op": "subscribe", "channel": "book", "symbol": "X", "depth": 1001}', "BAD_MESSAGE"),
        ('{"op": "subscribe", "channel": "fills", "accountId": "7"}', "BAD_MESSAGE"),
        ('{"op": "auth", "apiKey": "k", "signature": "' + "a" * 64 + '"}', "BAD_MESSAGE"),
        ('{"op": "ping", "x": "' + "y" * proto.MESSAGE_BYTES_MAX + '"}', "BAD_MESSAGE"),
    ):
        with pytest.raises(proto.WsError) as error:
            proto.parse_native(text)
        assert error.value.name == name, text
        assert error.value.frame()["type"] == "error"


def test_binance_stream_names() -> None:
    assert proto.parse_stream("btcusd@depth@100ms") == proto.Stream(
        "btcusd@depth@100ms", "btcusd", "depth"
    )
    assert proto.parse_stream("btcusd@kline_4h").interval == "4h"
    assert [s.kind for s in proto.parse_stream_list("a@trade/b@aggTrade/c@ticker")] == [
        "trade", "aggTrade", "ticker"]  # fmt: skip
    assert [(s.kind, s.levels) for s in proto.parse_stream_list(
        "a@depth5/b@depth20@100ms/c@bookTicker/d@miniTicker")] == [
        ("partialDepth", 5), ("partialDepth", 20), ("bookTicker", 0), ("miniTicker", 0)]  # fmt: skip
    for bad in ("btcusd", "btcusd@depth7", "btcusd@depth5@10ms", "btcusd@kline_2m",
                "BTC USD@trade", ""):  # fmt: skip
        with pytest.raises(proto.WsError):
            proto.parse_stream_list(bad)
    call = proto.parse_binance('{"method": "SUBSCRIBE", "params": ["btcusd@trade"], "id": 1}')
    assert (call.method, call.streams[0].kind, call.request_id) == ("SUBSCRIBE", "trade", 1)
    with pytest.raises(proto.WsError) as error:
        proto.parse_binance('{"method": "SUBSCRIBE", "params": "btcusd@trade", "id": 2}')
    assert error.value.binance_frame() == {"error": {"code": 2, "msg": error.value.msg}, "id": 2}


def test_depth_update_carries_first_last_and_previous_ids() -> None:
    entries = [(11, {"side": "BUY", "price": 60, "qty": 5}),
               (12, {"side": "SELL", "price": 61, "qty": 0})]  # fmt: skip
    update = ws_format.depth_update(MARKET, entries, 99)
    assert (update["U"], update["u"], update["pu"]) == (11, 12, 10)
    assert update["b"] == [[MARKET.fmt_price(60), MARKET.fmt_qty(5)]]
    assert update["a"] == [[MARKET.fmt_price(61), MARKET.fmt_qty(0)]]
    assert update["b"] == [["600000", "0.005"]]  # 60 ticks of 10,000 USD per BTC; 5 lots of 0.001
    native = ws_format.book_update(MARKET, entries)
    assert (native["firstSeq"], native["seq"]) == (11, 12)
    assert (
        json.loads(ws_format.dumps(ws_format.wrap("btcusd@depth", update)))["stream"]
        == "btcusd@depth"
    )


minute_candles = st.dictionaries(
    st.integers(0, 3 * layout.TICKER_MINUTES),
    st.tuples(st.integers(1, 100), st.integers(1, 100), st.integers(1, 10), st.integers(1, 5)),
    min_size=1,
)


@given(minute_candles, st.sampled_from([60, 300, 900, 3_600, 14_400, 86_400]))
def test_kline_of_merges_the_minutes_of_the_last_trades_interval(raw, interval_s) -> None:
    last_minute = max(raw)
    candles = {m: [o, max(o, h), min(o, h), h, v, v * o, n] for m, (o, h, v, n) in raw.items()}
    found = ws_format.kline_of(candles, last_minute * layout.MINUTE_NS + 7, interval_s)
    assert found is not None
    opened, merged = found
    per = interval_s // 60
    inside = sorted(m for m in candles if m // per == last_minute // per)
    assert opened == inside[0] // per * per * layout.MINUTE_NS
    assert merged[0] == candles[inside[0]][0]
    assert merged[3] == candles[inside[-1]][3]
    assert merged[1] == max(candles[m][1] for m in inside)
    assert merged[2] == min(candles[m][2] for m in inside)
    assert merged[4:] == [sum(candles[m][k] for m in inside) for k in (4, 5, 6)]


def test_a_candle_says_whether_it_is_closed() -> None:
    c = [60, 62, 59, 61, 5, 300, 2]
    for closed in (False, True):
        native = ws_format.candle(MARKET, "1m", 60, 9, 120 * 10**9, c, closed)
        assert native["closed"] is closed
        assert (native["openTime"], native["closeTime"], native["seq"]) == (120_000, 179_999, 9)
        kline = ws_format.binance_kline(MARKET, "1m", 60, 120 * 10**9, c, 7, 180_000, closed)
        assert kline["k"]["x"] is closed
        assert (kline["E"], kline["k"]["t"], kline["k"]["T"], kline["k"]["L"]) == (
            180_000, 120_000, 179_999, 7)  # fmt: skip


def test_book_ticker_and_partial_depth_shapes() -> None:
    bbo = Bbo(version=1, book_seq=42, bid=60, bid_qty=5, ask=61, ask_qty=0)
    assert ws_format.binance_book_ticker(MARKET, bbo) == {
        "u": 42, "s": "BTCUSD", "b": "600000", "B": "0.005", "a": "610000", "A": "0.000"}  # fmt: skip
    assert binance_format.book_ticker(MARKET, bbo) == {
        "symbol": "BTCUSD", "bidPrice": "600000", "bidQty": "0.005", "askPrice": "610000",
        "askQty": "0.000"}  # fmt: skip
    book = Book(1, 42, [(60, 5), (59, 1)], [(61, 2)])
    assert binance_format.depth(MARKET, book) == {
        "lastUpdateId": 42, "bids": [["600000", "0.005"], ["590000", "0.001"]],
        "asks": [["610000", "0.002"]]}  # fmt: skip
