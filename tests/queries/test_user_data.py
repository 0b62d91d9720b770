"""Binance's user-data stream on the real stack: listenKeys (open, keep alive, close,
somebody else's, expiry, the API key revoked), ``/ws/<listenKey>`` and
``/stream?streams=<listenKey>`` carrying executionReport NEW / TRADE / CANCELED,
outboundAccountPosition and balanceUpdate for the key's account and nothing of anyone
else's, the WebSocket API's ``userDataStream.subscribe.signature`` (ended by revoking its
key), and python-binance's user socket with only its URLs changed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import string
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK

from tests.queries.exchange import LOT, TICK, ApiKey, Exchange, Trader, wait_until
from tests.queries.test_clients import ccxt_binance
from tests.queries.test_websocket import Socket, funded, order, python_binance, ws_url
from tradex.infra import redis_client
from tradex.projections.projector import namespace
from tradex.queries.listen_keys import LISTEN_KEY_CHARS, redis_key

pytestmark = pytest.mark.integration

PATH = "/api/v3/userDataStream"
NOT_EXISTS = {"code": -1125, "msg": "This listenKey does not exist."}


def stream_call(method: str, key: ApiKey, **params: Any) -> httpx.Response:
    """A USER_STREAM request: the API key header, no signature (as Binance)."""
    with httpx.Client(base_url=key.url, timeout=30) as http:
        return http.request(method, PATH, params=params, headers={"X-MBX-APIKEY": key.key})


def listen_key(key: ApiKey) -> str:
    answer = stream_call("POST", key)
    assert answer.status_code == 200, answer.text
    found: str = answer.json()["listenKey"]
    return found


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    return {"code": body["code"], "msg": body["msg"]}


def some_key() -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(LISTEN_KEY_CHARS))


def inside_spread(exchange: Exchange) -> Decimal:
    """A price no resting order of another test crosses (between the best bid and ask)."""
    with exchange.client() as http:
        book = http.get("/api/v3/depth", params={"symbol": "BTCUSD", "limit": 5}).json()
    tick = Decimal(TICK)
    bid = Decimal(book["bids"][0][0]) if book["bids"] else Decimal(30000)
    ask = Decimal(book["asks"][0][0]) if book["asks"] else bid + 1000 * tick
    price = bid + tick
    assert price < ask, book
    return price


def execution(x: str, order_id: int) -> Any:
    return lambda m: m.get("e") == "executionReport" and m["x"] == x and m["i"] == order_id


def position(asset: str, free: str | None = None) -> Any:
    def check(m: dict[str, Any]) -> bool:
        if m.get("e") != "outboundAccountPosition":
            return False
        rows = {row["a"]: row for row in m["B"]}
        return asset in rows and (free is None or Decimal(rows[asset]["f"]) == Decimal(free))

    return check


def test_listen_key_lifecycle_and_errors(exchange: Exchange) -> None:
    trader, other = exchange.register("ud-keys"), exchange.register("ud-keys-other")
    key, other_key = trader.key(["read"]), other.key(["read"])
    found = listen_key(key)
    assert len(found) == LISTEN_KEY_CHARS and found.isalnum()
    assert listen_key(key) == found  # the live key again, as Binance
    assert stream_call("PUT", key, listenKey=found).json() == {}
    conn = redis_client.client(exchange.settings)
    ttl_ms = conn.pttl(redis_key(namespace(exchange.settings, "api"), found))
    assert 3_590_000 < ttl_ms <= 3_600_000

    for method in ("PUT", "DELETE"):  # unknown, or somebody else's: does not exist
        for caller, value in ((key, some_key()), (other_key, found)):
            answer = stream_call(method, caller, listenKey=value)
            assert answer.status_code == 400 and error_of(answer) == NOT_EXISTS, answer.text
    assert stream_call("PUT", key, listenKey=found).status_code == 200  # still alive
    assert listen_key(other_key) != found
    with trader.http() as http:  # an access token works too (the caller's first account)
        by_token = http.post(PATH).json()["listenKey"]
    assert by_token != found and len(by_token) == LISTEN_KEY_CHARS

    missing = stream_call("PUT", key)
    assert missing.status_code == 400 and missing.json()["code"] == -1102, missing.text
    bad = stream_call("PUT", key, listenKey="not a key!")
    assert bad.status_code == 400 and bad.json()["field"] == "listenKey", bad.text
    with httpx.Client(base_url=exchange.url, timeout=30) as http:
        assert http.post(PATH).json()["code"] == -1002  # no credentials
        unknown = http.post(PATH, headers={"X-MBX-APIKEY": "A" * 64})
        assert unknown.status_code == 401 and unknown.json()["code"] == -2015

    socket = Socket(ws_url(exchange, f"/ws/{found}"))
    assert stream_call("DELETE", key, listenKey=found).json() == {}
    expired = socket.until(lambda m: m.get("e") == "listenKeyExpired", timeout_s=15)
    assert expired["listenKey"] == found
    with pytest.raises(ConnectionClosedOK):  # the server closes the stream after it (1000)
        socket.recv(10)
    answer = stream_call("PUT", key, listenKey=found)
    assert answer.status_code == 400 and error_of(answer) == NOT_EXISTS
    refused = Socket(ws_url(exchange, f"/ws/{found}"))
    assert "listenKey does not exist" in refused.recv(10)["error"]["msg"]


def test_an_expired_key_ends_its_stream(exchange: Exchange) -> None:
    trader = exchange.register("ud-expiry")
    found = listen_key(trader.key(["read"]))
    socket = Socket(ws_url(exchange, f"/stream?streams=btcusd@trade/{found}"))
    socket.send(method="LIST_SUBSCRIPTIONS", id=1)  # a public stream beside the user's
    assert socket.until(lambda m: m.get("id") == 1)["result"] == sorted(["btcusd@trade", found])
    conn = redis_client.client(exchange.settings)
    assert conn.pexpire(redis_key(namespace(exchange.settings, "api"), found), 1)
    expired = socket.until(lambda m: m.get("data", {}).get("e") == "listenKeyExpired",
                           timeout_s=15)  # fmt: skip
    assert expired == {"stream": found, "data": {**expired["data"], "listenKey": found}}
    with pytest.raises(ConnectionClosedOK):  # and the connection ends (after any trades)
        for _ in range(1_000):
            socket.recv(10)
    assert error_of(stream_call("PUT", trader.key(["read"]), listenKey=found)) == NOT_EXISTS


def revoke(trader: Trader, key: ApiKey) -> None:
    with trader.http() as http:
        answer = http.delete("/tradex/v1/apiKeys", params={"keyId": key.key_id})
    assert answer.status_code == 200, answer.text


def test_revoking_an_api_key_ends_its_listen_key_and_open_streams(exchange: Exchange) -> None:
    trader = exchange.register("ud-revoke")
    key, kept = trader.key(["read"]), trader.key(["read"])
    found, other = listen_key(key), listen_key(kept)
    socket = Socket(ws_url(exchange, f"/ws/{found}"))
    combined = Socket(ws_url(exchange, f"/stream?streams=btcusd@trade/{other}"))
    time.sleep(0.5)  # both attached
    revoke(trader, key)
    expired = socket.until(lambda m: m.get("e") == "listenKeyExpired", timeout_s=15)
    assert expired["listenKey"] == found and expired["E"] > 0
    with pytest.raises(ConnectionClosedOK):  # then the server closes the stream (1000)
        socket.recv(10)
    conn = redis_client.client(exchange.settings)
    assert not conn.exists(redis_key(namespace(exchange.settings, "api"), found))
    refused = Socket(ws_url(exchange, f"/ws/{found}"))
    assert "listenKey does not exist" in refused.recv(10)["error"]["msg"]
    # the user's other key, its listenKey and its stream live on
    assert stream_call("PUT", kept, listenKey=other).json() == {}
    assert not [m for m in combined.quiet(1.0) if m.get("data", {}).get("e") == "listenKeyExpired"]
    combined.send(method="LIST_SUBSCRIPTIONS", id=1)
    assert combined.until(lambda m: m.get("id") == 1)["result"] == sorted(["btcusd@trade", other])
    combined.close()


def test_a_listen_key_opened_with_a_token_ends_with_its_session(exchange: Exchange) -> None:
    """A token's listenKey is the session's: logout ends its stream (listenKeyExpired) and
    makes it unusable; the same user's key from another session lives on."""
    trader = exchange.register("ud-logout")
    other_session = exchange.login(trader.username)["accessToken"]

    def open_with(token: str) -> str:
        with exchange.client(token) as http:
            answer = http.post("/api/v3/userDataStream")
        assert answer.status_code == 200, answer.text
        found: str = answer.json()["listenKey"]
        return found

    mine, kept = open_with(trader.token), open_with(other_session)
    assert mine != kept  # one key per session
    assert open_with(trader.token) == mine  # a second POST of the session reuses it
    socket = Socket(ws_url(exchange, f"/ws/{mine}"))
    staying = Socket(ws_url(exchange, f"/ws/{kept}"))
    time.sleep(0.5)  # both attached
    with trader.http() as http:
        assert http.post("/tradex/v1/auth/logout").status_code == 200
    expired = socket.until(lambda m: m.get("e") == "listenKeyExpired", timeout_s=15)
    assert expired["listenKey"] == mine
    with pytest.raises(ConnectionClosedOK):
        socket.recv(10)
    refused = Socket(ws_url(exchange, f"/ws/{mine}"))
    assert "listenKey does not exist" in refused.recv(10)["error"]["msg"]
    assert not [m for m in staying.quiet(1.0) if m.get("e") == "listenKeyExpired"]
    staying.close()


def test_orders_fills_and_balances_reach_the_accounts_stream_only(exchange: Exchange) -> None:
    seller = funded(exchange, "ud-seller", btc="1")
    buyer = funded(exchange, "ud-buyer", usd="100000")
    bystander = funded(exchange, "ud-bystander", usd="1000")
    sells = Socket(ws_url(exchange, f"/ws/{listen_key(seller.key(['read']))}"))
    combined_key = listen_key(buyer.key(["read"]))
    buys = Socket(ws_url(exchange, f"/stream?streams={combined_key}"))
    quiet = Socket(ws_url(exchange, f"/ws/{listen_key(bystander.key(['read']))}"))
    time.sleep(0.5)  # the subscriptions are attached

    price = inside_spread(exchange)
    ask = order(seller, "SELL", "0.002", str(price), newClientOrderId="ud-ask-1",
                selfTradePreventionMode="EXPIRE_MAKER")  # fmt: skip
    new = sells.until(execution("NEW", ask["orderId"]), what="the ask's NEW")
    assert {k: new[k] for k in ("s", "c", "S", "o", "f", "X", "z", "t", "C", "V")} == {
        "s": "BTCUSD", "c": "ud-ask-1", "S": "SELL", "o": "LIMIT", "f": "GTC", "X": "NEW",
        "z": "0.000", "t": -1, "C": "", "V": "EXPIRE_MAKER",
    }  # fmt: skip
    assert Decimal(new["q"]) == Decimal("0.002") and Decimal(new["p"]) == price
    assert new["O"] > 0 and new["E"] >= new["O"]
    held = sells.until(position("BTC"), what="the ask's hold")
    assert [(r["a"], Decimal(r["f"]), Decimal(r["l"])) for r in held["B"]] == [
        ("BTC", Decimal("0.998"), Decimal("0.002"))
    ]

    bid = order(buyer, "BUY", LOT, str(price))

    def data(check: Any) -> Any:
        return lambda m: m["stream"] == combined_key and check(m["data"])

    bought = buys.until(data(execution("TRADE", bid["orderId"])), what="the buyer's TRADE")["data"]
    assert bought["X"] == "FILLED" and bought["S"] == "BUY" and bought["m"] is False
    assert bought["V"] == "NONE"
    assert Decimal(bought["l"]) == Decimal(LOT) == Decimal(bought["z"])
    assert Decimal(bought["L"]) == price and bought["N"] == "USD" and bought["t"] > 0
    assert Decimal(bought["Z"]) == price * Decimal(LOT)
    with buyer.http() as http:  # the fee as myTrades has it (minor units, rounded up)
        fills = wait_until(lambda: http.get("/api/v3/myTrades", params={"symbol": "BTCUSD"})
                           .json(), what="the buyer's fill in the read model")  # fmt: skip
    assert [(f["id"], f["commission"]) for f in fills] == [(bought["t"], bought["n"])]
    buys.until(data(execution("NEW", bid["orderId"])), what="the bid's NEW before it")
    sold = sells.until(execution("TRADE", ask["orderId"]), what="the seller's TRADE")
    assert sold["X"] == "PARTIALLY_FILLED" and sold["m"] is True and sold["t"] == bought["t"]
    assert Decimal(sold["z"]) == Decimal(LOT) and sold["c"] == "ud-ask-1"
    assert sold["V"] == "EXPIRE_MAKER"
    buys.until(data(position("BTC", LOT)), what="the buyer's BTC")

    with seller.http() as http:
        answer = http.delete("/api/v3/order", params={
            "symbol": "BTCUSD", "orderId": ask["orderId"], "newClientOrderId": "ud-cancel-1"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    gone = sells.until(execution("CANCELED", ask["orderId"]), what="the ask's CANCELED")
    assert gone["X"] == "CANCELED" and gone["C"] == "ud-ask-1" and gone["c"] == "ud-cancel-1"
    assert gone["V"] == "EXPIRE_MAKER"
    assert Decimal(gone["z"]) == Decimal(LOT) and gone["w"] is False
    sells.until(position("BTC", "0.999"), what="the hold released")

    exchange.deposit(buyer.account, "USD", "12.34")
    update = buys.until(data(lambda m: m.get("e") == "balanceUpdate"), what="the deposit")
    assert update["data"]["a"] == "USD" and update["data"]["d"] == "12.34"

    with buyer.http() as http:  # refused by the account processor: REJECTED, with the reason
        answer = http.post("/api/v3/order", params={
            "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "100", "price": str(price), "newClientOrderId": "ud-too-big"})  # fmt: skip
    assert answer.status_code == 400 and answer.json()["code"] == -2010, answer.text
    rejected = buys.until(data(lambda m: m.get("x") == "REJECTED"), what="the rejection")["data"]
    assert (rejected["c"], rejected["X"], rejected["r"]) == (
        "ud-too-big",
        "REJECTED",
        "INSUFFICIENT_FUNDS",
    )

    mine = {ask["orderId"], bid["orderId"]}
    for message in quiet.quiet(2.0):  # the bystander's stream carries none of it
        assert message.get("i") not in mine and message.get("e") != "balanceUpdate", message
    for socket in (sells, buys, quiet):
        socket.close()


def ws_api_subscribe(key: ApiKey, secret: str | None = None, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": key.key, "timestamp": int(time.time() * 1000), **extra}
    query = urlencode(sorted(params.items()))
    signature = hmac.new((secret or key.secret).encode(), query.encode(), hashlib.sha256)
    return {"id": "s1", "method": "userDataStream.subscribe.signature",
            "params": {**params, "signature": signature.hexdigest()}}  # fmt: skip


def test_ws_api_signature_subscription(exchange: Exchange) -> None:
    trader = funded(exchange, "ud-wsapi", usd="500")
    key = trader.key(["read", "trade"])
    socket = Socket(ws_url(exchange, "/ws-api/v3"))
    socket.send(**ws_api_subscribe(key, secret="0" * 64))
    refused = socket.until(lambda m: m.get("id") == "s1")
    assert refused["status"] == 401 and refused["error"]["code"] == -1022
    socket.send(id=2, method="order.place", params={})
    assert socket.until(lambda m: m.get("id") == 2)["status"] == 400
    socket.send(**ws_api_subscribe(key, recvWindow=5000))
    answer = socket.until(lambda m: m.get("id") == "s1")
    assert answer == {"id": "s1", "status": 200, "result": {"subscriptionId": 0}}
    placed = order(trader, "BUY", LOT, "10000")
    event = socket.until(lambda m: "event" in m and m["event"].get("i") == placed["orderId"])
    assert event["subscriptionId"] == 0 and event["event"]["x"] == "NEW"
    socket.send(id=3, method="userDataStream.unsubscribe", params={"subscriptionId": 0})
    assert socket.until(lambda m: m.get("id") == 3)["status"] == 200
    socket.close()


def test_ws_api_subscription_ends_when_its_api_key_is_revoked(exchange: Exchange) -> None:
    """Two subscriptions on one connection, by two keys of the account: revoking one ends
    its subscription with ``eventStreamTerminated``; the other and the connection stay."""
    trader = funded(exchange, "ud-wsapi-revoke", usd="500")
    doomed, kept = trader.key(["read"]), trader.key(["read"])
    socket = Socket(ws_url(exchange, "/ws-api/v3"))
    for number, key in enumerate((doomed, kept)):
        socket.send(**{**ws_api_subscribe(key), "id": f"s{number}"})
        answer = socket.until(lambda m, n=number: m.get("id") == f"s{n}")
        assert answer["result"] == {"subscriptionId": number}, answer
    revoke(trader, doomed)
    ended = socket.until(lambda m: m.get("event", {}).get("e") == "eventStreamTerminated",
                         timeout_s=15)  # fmt: skip
    assert ended == {"subscriptionId": 0, "event": {"e": "eventStreamTerminated",
                                                     "E": ended["event"]["E"]}}  # fmt: skip
    placed = order(trader, "BUY", LOT, "10000")
    event = socket.until(lambda m: m.get("event", {}).get("i") == placed["orderId"])
    assert event["subscriptionId"] == 1 and event["event"]["x"] == "NEW"
    socket.quiet(1.0)
    after = socket.seen[socket.seen.index(ended) + 1 :]
    assert [m for m in after if m.get("subscriptionId") == 0] == [], after
    socket.send(id="u", method="userDataStream.unsubscribe", params={"subscriptionId": 0})
    gone = socket.until(lambda m: m.get("id") == "u")  # already ended
    assert gone["status"] == 400 and gone["error"]["code"] == -1130, gone
    socket.send(id="p", method="ping", params={})
    assert socket.until(lambda m: m.get("id") == "p")["status"] == 200
    socket.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_python_binance_user_socket_unchanged_but_for_the_urls(exchange: Exchange) -> None:
    from binance import BinanceSocketManager

    trader = funded(exchange, "ud-pybinance", usd="1000")
    key = trader.key(["read", "trade"])

    Local = python_binance(exchange)

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        client = Local(key.key, key.secret)
        try:
            async with BinanceSocketManager(client).user_socket() as stream:
                placed = await client.order_limit_buy(symbol="BTCUSD", quantity=LOT,
                                                      price="10000")  # fmt: skip
                while True:
                    event = await asyncio.wait_for(stream.recv(), 60)
                    if event.get("e") == "executionReport":
                        return placed, event
        finally:
            await client.close_connection()

    placed, event = asyncio.run(run())
    assert event["i"] == placed["orderId"] and event["x"] == "NEW"
    assert event["c"] == placed["clientOrderId"] and event["s"] == "BTCUSD"


def ccxt_pro(exchange: Exchange, key: str, secret: str) -> Any:
    """ccxt.pro's binance with the test exchange's URLs, nothing else changed."""
    import ccxt.pro

    client = ccxt.pro.binance({"apiKey": key, "secret": secret})
    rest = ccxt_binance(exchange.url, key, secret)  # its URLs, nothing else
    client.urls["api"].update({k: v for k, v in rest.urls["api"].items() if k != "ws"})
    client.urls["api"]["ws"]["spot"] = ws_url(exchange, "/ws")
    client.urls["api"]["ws"]["ws-api"]["spot"] = ws_url(exchange, "/ws-api/v3")
    return client


def test_ccxt_pro_watches_the_public_market_unchanged_but_for_the_urls(
    exchange: Exchange,
) -> None:
    """watch_order_book (the depth diff stream and the REST snapshot), watch_bids_asks
    (@bookTicker) and watch_ticker (@miniTicker) with a new best bid placed meanwhile; then
    watch_trades and watch_ohlcv with a seller filling it."""
    trader = funded(exchange, "ud-pro-market", usd="1000")
    seller = funded(exchange, "ud-pro-seller", btc="1")
    key = trader.key(["read", "trade"])
    price = inside_spread(exchange)

    async def run() -> dict[str, Any]:
        client = ccxt_pro(exchange, key.key, key.secret)
        found: dict[str, Any] = {}
        try:
            await client.load_markets()
            await asyncio.wait_for(client.watch_order_book("BTC/USD"), 60)
            await asyncio.wait_for(client.watch_bids_asks(["BTC/USD"]), 60)
            found["ticker"] = await asyncio.wait_for(client.watch_ticker("BTC/USD"), 60)

            async def book() -> None:  # updates until the new bid is in the book
                while True:
                    seen = await client.watch_order_book("BTC/USD")
                    if seen["bids"] and seen["bids"][0][0] == float(price):
                        found["book"] = (seen["bids"][0], seen["nonce"])
                        return

            async def top() -> None:  # ... and in the best bid and ask
                while True:
                    tops = await client.watch_bids_asks(["BTC/USD"])
                    if tops["BTC/USD"]["bid"] == float(price):
                        found["top"] = tops["BTC/USD"]
                        return

            watching = asyncio.gather(book(), top())
            await asyncio.sleep(0.5)
            await asyncio.to_thread(order, trader, "BUY", LOT, str(price))
            await asyncio.wait_for(watching, 60)
            with exchange.client() as http:  # the same book through REST
                found["rest"] = http.get("/api/v3/depth", params={"symbol": "BTCUSD",
                                                                  "limit": 1}).json()  # fmt: skip

            async def trades() -> None:
                while not any(t["price"] == float(price) for t in
                              await client.watch_trades("BTC/USD")):  # fmt: skip
                    pass
                found["trades"] = True

            async def candles() -> None:
                while True:
                    seen = await client.watch_ohlcv("BTC/USD", "1m")
                    if seen and seen[-1][4] == float(price):
                        found["candle"] = seen[-1]
                        return

            watching = asyncio.gather(trades(), candles())
            await asyncio.sleep(0.5)
            await asyncio.to_thread(order, seller, "SELL", LOT, str(price))
            await asyncio.wait_for(watching, 60)
        finally:
            await client.close()
        return found

    found = asyncio.run(run())
    (best, amount), nonce = found["book"]
    assert (best, amount) == (float(price), 0.001) and nonce > 0
    assert (found["top"]["bid"], found["top"]["bidVolume"]) == (float(price), 0.001)
    assert found["ticker"]["symbol"] == "BTC/USD"
    assert found["rest"]["bids"][0] == [str(price), LOT]
    assert found["trades"] and found["candle"][5] >= 0.001


def test_ccxt_pro_watch_orders_balance_and_trades_unchanged_but_for_the_urls(
    exchange: Exchange,
) -> None:

    trader = funded(exchange, "ud-ccxt", usd="1000")
    seller = funded(exchange, "ud-ccxt-seller", btc="1")
    key = trader.key(["read", "trade"])
    price = inside_spread(exchange)

    async def run() -> dict[str, Any]:
        client = ccxt_pro(exchange, key.key, key.secret)
        found: dict[str, Any] = {}
        try:
            await client.load_markets()
            watching = asyncio.ensure_future(client.watch_orders("BTC/USD"))
            balance = asyncio.ensure_future(client.watch_balance())
            await asyncio.sleep(1.0)  # subscribed (the WebSocket API's answer)
            found["placed"] = await client.create_order("BTC/USD", "limit", "buy", 0.001,
                                                        float(price))  # fmt: skip
            found["orders"] = [  # as it was then (ccxt updates its cache in place)
                (o["id"], o["status"], o["symbol"], o["price"], o["amount"])
                for o in await asyncio.wait_for(watching, 60)
            ]
            found["usd"] = dict((await asyncio.wait_for(balance, 60))["USD"])
            trades = asyncio.ensure_future(client.watch_my_trades("BTC/USD"))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(order, seller, "SELL", LOT, str(price))
            found["trades"] = await asyncio.wait_for(trades, 60)
        finally:
            await client.close()
        return found

    found = asyncio.run(run())
    placed = found["placed"]
    assert found["orders"] == [(placed["id"], "open", "BTC/USD", float(price), 0.001)]
    usd = found["usd"]  # the hold: the price and the taker fee at most (0.2 %)
    assert usd["used"] == pytest.approx(float(price) * 0.001 * 1.002, abs=0.01)
    assert usd["free"] + usd["used"] == pytest.approx(1000)
    [trade] = found["trades"]
    assert (trade["order"], trade["side"], trade["price"], trade["amount"]) == (
        placed["id"],
        "buy",
        float(price),
        0.001,
    )
    assert trade["takerOrMaker"] == "maker" and trade["fee"]["currency"] == "USD"
