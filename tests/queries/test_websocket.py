"""The WebSocket gateway on the real stack (every stage, the projectors and the API as
processes): fills reach both traders, public trades and book updates come with
consecutive sequences, gaps are detected and resynced (TradeX and Binance protocols),
private channels need authentication, never carry another user's data and end when the
session or API key is revoked, a slow consumer is dropped while a fast one keeps
receiving, bad messages get an error frame; a kline's candle closes (``x``/``closed``
true) at its interval's end by the API's clock (the app in this process, its clock
injected)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.queries.exchange import Exchange, Trader, wait_until
from tradex.queries.app import create_app
from tradex.queries.config import ApiConfig

pytestmark = pytest.mark.integration

RECV_TIMEOUT_S = 60.0


class Socket:
    """A plain WebSocket client that keeps what it has read."""

    def __init__(self, url: str, **options: Any) -> None:
        self.ws: ClientConnection = connect(url, open_timeout=30, **options).__enter__()
        self.seen: list[Any] = []
        self.inbox: list[Any] = []  # read, not yet taken by until()

    def send(self, **message: Any) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout_s: float = RECV_TIMEOUT_S) -> Any:
        found = json.loads(self.ws.recv(timeout=timeout_s))
        self.seen.append(found)
        return found

    def until(self, check: Any, timeout_s: float = RECV_TIMEOUT_S, what: str = "") -> Any:
        """The first message (in arrival order) not taken yet that passes ``check``."""
        for index, message in enumerate(self.inbox):
            if check(message):
                return self.inbox.pop(index)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no message {what}; read {self.seen[-5:]}")
            try:
                message = self.recv(left)
            except TimeoutError:
                continue
            if check(message):
                return message
            self.inbox.append(message)

    def quiet(self, seconds: float) -> list[Any]:
        """Whatever arrives within ``seconds``."""
        found = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                found.append(self.recv(left))
            except TimeoutError:
                break
        return found

    def close(self) -> None:
        self.ws.close()


def ws_url(exchange: Exchange, path: str) -> str:
    return exchange.url.replace("http://", "ws://") + path


def python_binance(exchange: Exchange) -> Any:
    """python-binance's ``AsyncClient`` pointed at ``exchange`` (its REST and WebSocket API
    URLs: all a trader changes)."""
    from binance import AsyncClient

    class Local(AsyncClient):
        API_URL = f"{exchange.url}/api"
        WS_API_URL = ws_url(exchange, "/ws-api/v3")

    return Local


def native(exchange: Exchange, **options: Any) -> Socket:
    return Socket(ws_url(exchange, "/tradex/v1/ws"), **options)


def kind(type_: str, channel: str | None = None) -> Any:
    return lambda m: m.get("type") == type_ and (channel is None or m.get("channel") == channel)


def order(trader: Trader, side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    with trader.http() as http:
        answer = http.post("/api/v3/order", params={
            "symbol": "BTCUSD", "side": side, "type": "LIMIT", "timeInForce": "GTC",
            "quantity": qty, "price": price, **extra})  # fmt: skip
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def cancel(trader: Trader, order_id: int) -> None:
    with trader.http() as http:
        answer = http.delete("/api/v3/order", params={"symbol": "BTCUSD", "orderId": order_id})
    assert answer.status_code == 200, answer.text


def funded(exchange: Exchange, name: str, usd: str = "0", btc: str = "0") -> Trader:
    trader = exchange.register(name)
    if usd != "0":
        exchange.deposit(trader.account, "USD", usd)
    if btc != "0":
        exchange.deposit(trader.account, "BTC", btc)
    with trader.http() as http:

        def arrived() -> bool:
            balances = {b["asset"]: Decimal(b["free"])
                        for b in http.get("/api/v3/account").json()["balances"]}  # fmt: skip
            return balances.get("USD", Decimal(0)) == Decimal(usd) and balances.get(
                "BTC", Decimal(0)
            ) == Decimal(btc)

        wait_until(arrived, what=f"{name}'s deposits")
    return trader


def rest_book(exchange: Exchange) -> tuple[int, dict[str, str], dict[str, str]]:
    with exchange.client() as http:
        body = http.get("/api/v3/depth", params={"symbol": "BTCUSD", "limit": 1000}).json()
    return body["lastUpdateId"], dict(body["bids"]), dict(body["asks"])


def apply(book: dict[str, str], levels: list[list[str]]) -> None:
    for price, qty in levels:
        if Decimal(qty) == 0:
            book.pop(price, None)
        else:
            book[price] = qty


def test_both_traders_see_their_fill_and_public_updates_are_consecutive(exchange: Exchange) -> None:
    alice = funded(exchange, "wsalice", usd="10000")
    bob = funded(exchange, "wsbob", btc="1")
    a = native(exchange)
    a.send(op="auth", token=alice.token, id=1)
    assert a.until(kind("authenticated"))["accountIds"] == [alice.account]
    for channel in ("fills", "orders", "balances"):
        a.send(op="subscribe", channel=channel, id=channel)
        assert a.until(kind("subscribed", channel))["accountId"] == alice.account
    snapshot = a.until(kind("snapshot", "balances"))
    assert snapshot["balances"]["USD"] == {"free": "10000.00", "locked": "0.00"}
    a.send(op="subscribe", channel="book", symbol="BTCUSD", id="b")
    book = a.until(kind("snapshot", "book"))
    a.send(op="subscribe", channel="trades", symbol="BTCUSD", id="t")
    trades_from = a.until(kind("subscribed", "trades"))["seq"]

    key = bob.key(["read"])  # bob authenticates with an API key: a signed timestamp
    b = native(exchange)
    stamp = int(time.time() * 1000)
    signature = hmac.new(key.secret.encode(), f"apiKey={key.key}&timestamp={stamp}".encode(),
                         hashlib.sha256).hexdigest()  # fmt: skip
    b.send(op="auth", apiKey=key.key, timestamp=stamp, signature=signature)
    assert b.until(kind("authenticated"))["accountIds"] == [bob.account]
    b.send(op="subscribe", channel="fills")
    b.until(kind("subscribed", "fills"))

    # A Binance client on the same book: stream first, then the REST snapshot.
    depth = BinanceDepth(exchange, "/ws/btcusd@depth")

    sell = order(bob, "SELL", "0.05", "60000")
    buy = order(alice, "BUY", "0.03", "60010")
    fill = a.until(kind("fill"), what="alice's fill")
    assert (fill["orderId"], fill["price"], fill["qty"]) == (buy["orderId"], "60000", "0.030")
    assert (fill["side"], fill["liquidity"], fill["fee"], fill["feeAsset"]) == (
        "BUY", "TAKER", "3.60", "USD")  # fmt: skip
    theirs = b.until(kind("fill"), what="bob's fill")
    assert (theirs["orderId"], theirs["liquidity"], theirs["accountId"]) == (
        sell["orderId"], "MAKER", bob.account)  # fmt: skip
    trade = a.until(kind("trades"), what="the public trade")
    assert trade["firstSeq"] == trades_from + 1
    assert [(t["price"], t["qty"]) for t in trade["trades"]] == [("60000", "0.030")]
    balances = a.until(lambda m: m.get("type") == "balances"
                       and m["balances"].get("BTC", {}).get("free") == "0.03000000")  # fmt: skip
    assert balances["accountId"] == alice.account
    accepted = [m for m in a.seen if m.get("type") == "order" and m["event"] == "OrderAccepted"]
    assert [m["orderId"] for m in accepted] == [buy["orderId"]]

    # Book updates since the snapshot: consecutive, and they rebuild the REST book.
    bids = {p: q for p, q in book["bids"]}
    asks = {p: q for p, q in book["asks"]}
    last = book["seq"]
    target, rest_bids, rest_asks = rest_book(exchange)
    while last < target:
        update = a.until(kind("update", "book"), what=f"book updates up to {target}")
        assert update["firstSeq"] == last + 1, (update, last)
        apply(bids, update["bids"])
        apply(asks, update["asks"])
        last = update["seq"]
    assert last == target
    assert (bids, asks) == (rest_bids, rest_asks)
    assert depth.synced_to(target) == (rest_bids, rest_asks)
    cancel(bob, sell["orderId"])  # leave the shared book as it was
    for s in (a, b):
        s.close()
    depth.close()


def test_the_balances_channel_shows_the_hold_an_amend_released(exchange: Exchange) -> None:
    """An order's quantity amended down (Binance keepPriority): the account holds for the
    old terms until the engine confirms the amend, then releases the rest (AmendSettled),
    and the balances channel says so — locked down, free up, the total unchanged."""
    erin = funded(exchange, "wsamender", usd="1000")
    s = native(exchange)
    s.send(op="auth", token=erin.token, id=1)
    s.until(kind("authenticated"))
    s.send(op="subscribe", channel="balances", id="b")
    s.until(kind("subscribed", "balances"))
    assert s.until(kind("snapshot", "balances"))["balances"]["USD"]["locked"] == "0.00"
    placed = order(erin, "BUY", "0.1", "1000")  # rests: far below every other test's asks

    def usd(m: dict[str, Any]) -> tuple[Decimal, Decimal]:
        found = m["balances"]["USD"]
        return Decimal(found["free"]), Decimal(found["locked"])

    held = s.until(lambda m: m.get("type") == "balances" and usd(m)[1] > 0, what="the hold")
    with erin.http() as http:
        keep = http.put("/api/v3/order/amend/keepPriority", params={
            "symbol": "BTCUSD", "orderId": placed["orderId"], "newQty": "0.04"})  # fmt: skip
        assert keep.status_code == 200, keep.text
    released = s.until(lambda m: m.get("type") == "balances" and usd(m)[1] < usd(held)[1],
                       what="the hold the confirmed amend released")  # fmt: skip
    assert released["seq"] > held["seq"]
    assert sum(usd(released)) == sum(usd(held)) == Decimal(1000), "held moved to free"
    assert 0 < usd(released)[1] < usd(held)[1] * Decimal("0.5"), "held for 0.04 of 0.1"
    cancel(erin, placed["orderId"])
    ended = s.until(lambda m: m.get("type") == "balances" and usd(m)[1] == 0, what="the end")
    assert usd(ended) == (Decimal(1000), Decimal(0))
    s.close()


class BinanceDepth:
    """Binance's documented way to keep a local book: buffer the stream, read
    /api/v3/depth, drop events with u <= lastUpdateId, the first applied one has
    U <= lastUpdateId + 1 <= u, every next one U == previous u + 1 (else: a gap, resync)."""

    def __init__(self, exchange: Exchange, path: str, combined: bool = False) -> None:
        self.exchange = exchange
        self.socket = Socket(ws_url(exchange, path))
        self.combined = combined
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last = -1
        self.gaps = 0
        self.skip_next = False  # drop the next event unread, as a lost message would be
        self.resync()

    def resync(self) -> None:
        self.last, self.bids, self.asks = rest_book(self.exchange)

    def step(self, timeout_s: float = RECV_TIMEOUT_S) -> None:
        event = self.socket.recv(timeout_s)
        if self.combined:
            assert event["stream"] == "btcusd@depth", event
            event = event["data"]
        assert event["e"] == "depthUpdate" and event["pu"] == event["U"] - 1, event
        if self.skip_next:
            self.skip_next = False
            return
        if event["u"] <= self.last:
            return
        if not event["U"] <= self.last + 1 <= event["u"]:
            self.gaps += 1  # a gap: start again from the snapshot
            self.resync()
            return
        apply(self.bids, event["b"])
        apply(self.asks, event["a"])
        self.last = event["u"]

    def synced_to(self, target: int) -> tuple[dict[str, str], dict[str, str]]:
        deadline = time.monotonic() + RECV_TIMEOUT_S
        while self.last < target:
            assert time.monotonic() < deadline, f"depth stream stuck at {self.last} < {target}"
            self.step()
        return self.bids, self.asks

    def close(self) -> None:
        self.socket.close()


def test_book_ticker_partial_depth_and_mini_ticker_streams(exchange: Exchange) -> None:
    """``@bookTicker``, ``@depth5`` and ``@miniTicker`` on one combined stream: the current
    top at once, then each change of the top (not of deeper levels), the mini ticker per
    batch of trades; the same values as the REST book and ticker."""
    buyer = funded(exchange, "topbuyer", usd="5000")
    seller = funded(exchange, "topseller", btc="1")
    names = "btcusd@bookTicker/btcusd@depth5@100ms/btcusd@miniTicker"
    ws = Socket(ws_url(exchange, f"/stream?streams={names}"))

    def on(stream: str, check: Any = lambda _: True) -> Any:
        return lambda m: m.get("stream") == stream and check(m["data"])

    first = ws.until(on("btcusd@bookTicker"), what="the first bookTicker")["data"]
    lid, bids, _asks = rest_book(exchange)
    assert first["s"] == "BTCUSD" and first["u"] <= lid
    assert (
        ws.until(on("btcusd@depth5@100ms"), what="the first depth5")["data"]["lastUpdateId"] <= lid
    )
    top = order(buyer, "BUY", "0.002", "996000")  # above every other test's bids
    ticker = ws.until(on("btcusd@bookTicker", lambda d: d["b"] == "996000"), what="the new bid")
    assert ticker["data"]["B"] == "0.002"
    depth = ws.until(on("btcusd@depth5@100ms", lambda d: d["bids"][:1] == [["996000", "0.002"]]),
                     what="the new bid in depth5")["data"]  # fmt: skip
    assert len(depth["bids"]) <= 5 and len(depth["asks"]) <= 5
    lid, bids, _asks = rest_book(exchange)
    assert lid >= depth["lastUpdateId"] and bids["996000"] == "0.002"
    order(seller, "SELL", "0.001", "996000")  # a trade: the mini ticker, a smaller best bid
    mini = ws.until(on("btcusd@miniTicker", lambda d: d["c"] == "996000"), what="the trade")
    assert mini["data"]["e"] == "24hrMiniTicker" and Decimal(mini["data"]["v"]) >= Decimal("0.001")
    ws.until(on("btcusd@bookTicker", lambda d: (d["b"], d["B"]) == ("996000", "0.001")),
             what="the best bid's rest")  # fmt: skip
    cancel(buyer, top["orderId"])
    gone = ws.until(on("btcusd@bookTicker", lambda d: d["b"] != "996000"), what="the bid gone")
    with exchange.client() as http:  # the REST book ticker: the same top, once it is read
        rest = http.get("/api/v3/ticker/bookTicker", params={"symbol": "BTCUSD"}).json()
        both = http.get("/api/v3/ticker/bookTicker").json()
    assert rest["symbol"] == "BTCUSD" and rest == next(t for t in both if t["symbol"] == "BTCUSD")
    top_now = {k: gone["data"][c] for k, c in (("bidPrice", "b"), ("bidQty", "B"),
                                                ("askPrice", "a"), ("askQty", "A"))}  # fmt: skip
    assert {k: rest[k] for k in top_now} == top_now  # nothing else trades BTCUSD meanwhile
    ws.close()


def test_a_client_that_misses_an_update_sees_the_gap_and_resyncs(exchange: Exchange) -> None:
    maker = funded(exchange, "wsgap", usd="1000")
    s = native(exchange)
    s.send(op="subscribe", channel="book", symbol="BTCUSD")
    book = s.until(kind("snapshot", "book"))
    binance = BinanceDepth(exchange, "/stream?streams=btcusd@depth", combined=True)
    ids = [order(maker, "BUY", "0.02", str(1000 + 10 * k))["orderId"] for k in range(3)]

    # TradeX protocol: skip the first update; the next one does not follow: resubscribe.
    first = s.until(kind("update", "book"))
    assert first["firstSeq"] == book["seq"] + 1
    second = s.until(kind("update", "book"))
    assert second["firstSeq"] != book["seq"] + 1, "the skipped update left no gap"
    s.send(op="unsubscribe", channel="book", symbol="BTCUSD")
    s.until(kind("unsubscribed"))
    s.send(op="subscribe", channel="book", symbol="BTCUSD")
    again = s.until(kind("snapshot", "book"))
    for order_id in ids:
        cancel(maker, order_id)
    bids = dict(again["bids"])
    asks = dict(again["asks"])
    target, rest_bids, rest_asks = rest_book(exchange)
    last = again["seq"]
    while last < target:
        update = s.until(kind("update", "book"))
        # Binance's rule after a snapshot: drop what it already holds, the first update may
        # straddle it (levels are totals: re-applying changes nothing); then each follows
        if last == again["seq"]:
            if update["seq"] <= last:
                continue
            assert update["firstSeq"] <= last + 1 <= update["seq"]
        else:
            assert update["firstSeq"] == last + 1
        apply(bids, update["bids"])
        apply(asks, update["asks"])
        last = update["seq"]
    assert (bids, asks) == (rest_bids, rest_asks)

    # Binance protocol: lose one event after syncing; the U/u rule sees it, resyncs.
    binance.synced_to(book["seq"] + 1)
    binance.skip_next = True
    ids = [order(maker, "BUY", "0.02", str(2000 + 10 * k))["orderId"] for k in range(3)]
    for order_id in ids:
        cancel(maker, order_id)
    target, rest_bids, rest_asks = rest_book(exchange)
    assert binance.synced_to(target) == (rest_bids, rest_asks)
    assert binance.gaps >= 1
    s.close()
    binance.close()


def test_private_channels_need_auth_and_carry_only_the_callers_data(exchange: Exchange) -> None:
    dave = funded(exchange, "wsdave", usd="5000", btc="0.5")
    carol = funded(exchange, "wscarol", usd="100")
    s = native(exchange)
    s.send(op="subscribe", channel="fills", id=7)
    refused = s.until(kind("error"))
    assert (refused["error"], refused["code"], refused["id"]) == ("UNAUTHORIZED", -1002, 7)
    s.send(op="auth", token="not-a-token", id=8)
    assert s.until(kind("error"))["error"] == "TOKEN_INVALID"
    s.send(op="auth", apiKey="A" * 64, timestamp=int(time.time() * 1000), signature="0" * 64)
    assert s.until(kind("error"))["code"] in (-2014, -2015)
    key = carol.key(["read"])
    stale = int(time.time() * 1000) - 120_000
    signature = hmac.new(key.secret.encode(), f"apiKey={key.key}&timestamp={stale}".encode(),
                         hashlib.sha256).hexdigest()  # fmt: skip
    s.send(op="auth", apiKey=key.key, timestamp=stale, signature=signature)
    assert s.until(kind("error"))["error"] == "INVALID_TIMESTAMP"
    s.send(op="auth", apiKey=key.key, timestamp=int(time.time() * 1000), signature="ab" * 32)
    assert s.until(kind("error"))["error"] == "INVALID_SIGNATURE"
    s.send(op="ping", id="p")
    assert s.until(kind("pong"))["id"] == "p"  # still open after refusals

    # carol: asking for dave's account is "not found"; her own channels stay silent
    # while dave trades.
    s.send(op="auth", token=carol.token)
    s.until(kind("authenticated"))
    s.send(op="subscribe", channel="fills", accountId=dave.account, id=9)
    refused = s.until(kind("error"))
    assert (refused["error"], refused["id"]) == ("NOT_FOUND", 9)
    for channel in ("fills", "orders", "balances"):
        s.send(op="subscribe", channel=channel)
        s.until(kind("subscribed", channel))
    s.until(kind("snapshot", "balances"))
    d = native(exchange, additional_headers={"Authorization": f"Bearer {dave.token}"})
    d.send(op="subscribe", channel="fills")
    d.until(kind("subscribed", "fills"))
    order(dave, "SELL", "0.01", "55000")
    order(dave, "BUY", "0.01", "55000")  # trades with itself: two fills, both dave's
    d.until(kind("fill"))
    d.until(kind("fill"))
    leaked = [m for m in s.quiet(2.0) if "accountId" in m]
    assert leaked == [], leaked
    # a revoked session cannot subscribe any more
    with httpx.Client(base_url=exchange.url, timeout=30) as http:
        out = http.post("/tradex/v1/auth/logout", json={"refreshToken": dave.refresh},
                        headers={"Authorization": f"Bearer {dave.token}"})  # fmt: skip
    assert out.status_code == 200, out.text
    d.send(op="subscribe", channel="orders")
    assert d.until(kind("error"))["error"] == "TOKEN_INVALID"
    s.close()
    d.close()


def test_private_channels_end_when_the_session_or_key_is_revoked(exchange: Exchange) -> None:
    """Logged out (or its API key revoked) while subscribed: the private subscriptions end
    with an error frame naming them, the public ones stay."""
    erin = funded(exchange, "wserin", usd="100")
    s = native(exchange)
    s.send(op="auth", token=erin.token)
    s.until(kind("authenticated"))
    for channel in ("orders", "balances"):
        s.send(op="subscribe", channel=channel)
        s.until(kind("subscribed", channel))
    s.send(op="subscribe", channel="ticker", symbol="BTCUSD")
    s.until(kind("subscribed", "ticker"))
    key = erin.key(["read"])
    k = native(exchange)
    timestamp = int(time.time() * 1000)
    signature = hmac.new(key.secret.encode(), f"apiKey={key.key}&timestamp={timestamp}".encode(),
                         hashlib.sha256).hexdigest()  # fmt: skip
    k.send(op="auth", apiKey=key.key, timestamp=timestamp, signature=signature)
    k.until(kind("authenticated"))
    k.send(op="subscribe", channel="fills")
    k.until(kind("subscribed", "fills"))

    with erin.http() as http:
        assert http.delete("/tradex/v1/apiKeys", params={"keyId": key.key_id}).status_code == 200
    ended = k.until(kind("error"), timeout_s=15)
    assert (ended["error"], ended["code"], ended["id"]) == ("REJECTED_MBX_KEY", -2015, None)
    assert "revoked" in ended["msg"] and "fills" in ended["msg"], ended
    with httpx.Client(base_url=exchange.url, timeout=30) as http:
        out = http.post("/tradex/v1/auth/logout", json={"refreshToken": erin.refresh},
                        headers={"Authorization": f"Bearer {erin.token}"})  # fmt: skip
    assert out.status_code == 200, out.text
    ended = s.until(kind("error"), timeout_s=15)  # nothing asked: the server tells
    assert (ended["error"], ended["code"], ended["id"]) == ("TOKEN_INVALID", -70001, None)
    assert "revoked" in ended["msg"] and "balances, orders" in ended["msg"], ended

    exchange.deposit(erin.account, "USD", "1")  # an account event nobody may see now
    leaked = [m for m in s.quiet(2.0) + k.quiet(0.1) if "accountId" in m]
    assert leaked == [], leaked
    s.send(op="unsubscribe", channel="orders", id=1)
    assert s.until(kind("error"))["error"] == "NOT_SUBSCRIBED"
    s.send(op="subscribe", channel="orders", id=2)
    assert s.until(kind("error"))["error"] == "UNAUTHORIZED"
    s.send(op="unsubscribe", channel="ticker", symbol="BTCUSD", id=3)  # public: still there
    assert s.until(lambda m: m.get("id") == 3)["type"] == "unsubscribed"
    s.close()
    k.close()


def test_bad_messages_get_an_error_frame(exchange: Exchange) -> None:
    s = native(exchange)
    for sent, error in (
        ("not json", "BAD_MESSAGE"),
        ("[1, 2]", "BAD_MESSAGE"),
        ('{"op": "dance"}', "BAD_MESSAGE"),
        ('{"op": "subscribe", "channel": "gossip", "symbol": "BTCUSD"}', "BAD_CHANNEL"),
        ('{"op": "subscribe", "channel": "candles:7m", "symbol": "BTCUSD"}', "BAD_CHANNEL"),
        ('{"op": "subscribe", "channel": "book", "symbol": "NOPE"}', "BAD_SYMBOL"),
        ('{"op": "subscribe", "channel": "book", "symbol": "BTCUSD", "depth": 0}', "BAD_MESSAGE"),
        ('{"op": "subscribe", "channel": "book"}', "BAD_MESSAGE"),
        (json.dumps({"op": "ping", "pad": "x" * 5000}), "BAD_MESSAGE"),
    ):
        s.ws.send(sent)
        found = s.until(kind("error"))
        assert found["error"] == error, (sent, found)
    s.send(op="subscribe", channel="ticker", symbol="BTCUSD")
    s.until(kind("subscribed", "ticker"))
    s.send(op="subscribe", channel="ticker", symbol="BTCUSD")
    assert s.until(kind("error"))["error"] == "ALREADY_SUBSCRIBED"
    s.send(op="unsubscribe", channel="trades", symbol="BTCUSD")
    assert s.until(kind("error"))["error"] == "NOT_SUBSCRIBED"
    s.ws.ping().wait(10)  # protocol-level heartbeat answered
    s.close()

    b = Socket(ws_url(exchange, "/ws"))
    b.send(method="SUBSCRIBE", params=["btcusd@nonsense"], id=3)
    assert b.recv()["error"]["code"] == 2
    b.send(method="SUBSCRIBE", params=["btcusd@trade", "btcusd@kline_1m"], id=4)
    assert b.recv() == {"result": None, "id": 4}
    b.send(method="LIST_SUBSCRIPTIONS", id=5)
    assert b.until(lambda m: m.get("id") == 5)["result"] == ["btcusd@kline_1m", "btcusd@trade"]
    b.close()
    bad = Socket(ws_url(exchange, "/ws/btcusd@nonsense"))
    assert "error" in bad.recv()
    with pytest.raises(ConnectionClosed) as closed:
        bad.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


class RawClient:
    """A WebSocket client on a bare socket with a tiny receive buffer, so that not reading
    really pushes back on the server (a client library would read into its own buffers)."""

    def __init__(self, exchange: Exchange, path: str) -> None:
        host, port = exchange.url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.sock.settimeout(60)

    def send(self, **message: Any) -> None:
        payload = json.dumps(message).encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("closed without a close frame")
            data += chunk
        return data

    def close_frame(self) -> tuple[int, str]:
        """Read (and drop) frames until the close frame: its code and reason."""
        while True:
            first, second = self._exactly(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._exactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._exactly(8))[0]
            payload = self._exactly(length)
            if first & 0x0F == 0x8:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def test_a_slow_consumer_is_dropped_and_a_fast_one_keeps_receiving(exchange: Exchange) -> None:
    """The slow client asks for a lot (ticker snapshots, over and over) and reads nothing:
    its queue (TRADEX_API_WS_QUEUE_MAX=50 here) fills behind the TCP buffers and it is
    dropped with the reason, while a fast client on the trades keeps receiving."""
    seller = funded(exchange, "wsslows", btc="1")
    buyer = funded(exchange, "wsslowb", usd="100000")
    order(seller, "SELL", "0.001", "70000")
    order(buyer, "BUY", "0.001", "70000")  # a trade: the ticker has content
    with exchange.client() as http:
        dropped = http.get("/health").json()["websocket"]["dropped"]
    slow = RawClient(exchange, "/tradex/v1/ws")
    fast = Socket(ws_url(exchange, "/ws/btcusd@trade"))
    received: list[int] = []
    stop = threading.Event()

    def read_fast() -> None:
        while not stop.is_set():
            try:
                received.append(fast.recv(0.5)["t"])
            except TimeoutError:
                continue

    reader = threading.Thread(target=read_fast)
    reader.start()
    try:
        for _ in range(1_500):  # ~1 KiB of answers each, none read
            slow.send(op="subscribe", channel="ticker", symbol="BTCUSD")
            slow.send(op="unsubscribe", channel="ticker", symbol="BTCUSD")
        with exchange.client() as http:
            wait_until(lambda: http.get("/health").json()["websocket"]["dropped"] > dropped,
                       timeout_s=120, what="the slow client dropped")  # fmt: skip
            before = last_trade_id(http)
        for k in range(8):
            order(seller, "SELL", "0.001", str(70000 + 10 * k))
            order(buyer, "BUY", "0.001", str(70000 + 10 * k))
        with exchange.client() as http:
            last_id = last_trade_id(http)
        wait_until(lambda: received and received[-1] >= last_id, what="the fast client's trades")
    finally:
        stop.set()
        reader.join()
    assert received == list(range(received[0], received[-1] + 1)), "the fast client lost trades"
    # every trade made after the slow client was dropped reached the fast one (the pairs
    # may trade with other tests' resting orders, so their count is not fixed)
    assert last_id - before >= 4, (before, last_id)
    assert set(range(before + 1, last_id + 1)) <= set(received), (before, last_id, received)
    code, reason = slow.close_frame()
    assert code == 1008
    assert reason.startswith("slow consumer"), reason
    fast.close()


def last_trade_id(http: Any) -> int:
    trades = http.get("/api/v3/trades", params={"symbol": "BTCUSD", "limit": 1}).json()
    return int(trades[-1]["id"]) if trades else 0


class ShiftedClock:
    """The wall clock, moved on by ``shift_ns`` (the matcher's trades keep real times)."""

    def __init__(self) -> None:
        self.shift_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.shift_ns


def test_a_klines_candle_closes_once_at_its_intervals_end(exchange: Exchange) -> None:
    alice = funded(exchange, "klinealice", usd="1000")
    bob = funded(exchange, "klinebob", btc="0.01")
    clock = ShiftedClock()
    config = ApiConfig(master_key_path=exchange.log_dir / "master.key")
    with (
        TestClient(create_app(exchange.settings, config, clock)) as app,
        app.websocket_connect("/tradex/v1/ws") as t,
        app.websocket_connect("/ws/btcusd@kline_1m") as b,
    ):

        def until(ws: Any, check: Any) -> dict[str, Any]:
            while not check(found := ws.receive_json()):
                pass
            return dict(found)

        t.send_json({"op": "subscribe", "channel": "candles:1m", "symbol": "BTCUSD"})
        seq = until(t, kind("subscribed"))["seq"]
        b.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
        until(b, lambda m: m.get("id") == 1)  # the stream's current kline, if any, before
        to_boundary_s = 60 - time.time() % 60
        if to_boundary_s < 5:  # the trade and its open candle within one minute
            time.sleep(to_boundary_s + 0.5)
        order(bob, "SELL", "0.001", "60000")
        order(alice, "BUY", "0.001", "60000")
        native_open = until(t, lambda m: m.get("type") == "candle" and m["seq"] > seq)
        assert native_open["closed"] is False
        opened_ms = native_open["openTime"]
        kline_open = until(b, lambda m: m.get("e") == "kline" and m["k"]["t"] == opened_ms)
        assert kline_open["k"]["x"] is False
        # the API's clock passes the minute's end (and the grace): closed, by the clock
        clock.shift_ns = (opened_ms + 61_000) * 1_000_000 - time.time_ns()
        native_closed = until(t, lambda m: m.get("type") == "candle")
        kline_closed = until(b, lambda m: m.get("e") == "kline")
        assert native_closed == {**native_open, "closed": True}
        assert kline_closed["k"] == {**kline_open["k"], "x": True}
        assert kline_closed["E"] >= opened_ms + 60_000
        time.sleep(2.5)  # two more ticks of the feed: the candle closes once
        t.send_json({"op": "ping", "id": 2})
        assert t.receive_json()["type"] == "pong"
        b.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert b.receive_json() == {"result": ["btcusd@kline_1m"], "id": 3}
