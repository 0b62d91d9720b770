"""Off-the-shelf Binance clients against TradeX, unchanged except the base URL: ccxt's
``binance`` class and python-binance."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.queries.exchange import Exchange, Trader, wait_until

pytestmark = pytest.mark.integration


def ccxt_binance(url: str, key: str, secret: str) -> Any:
    client = ccxt.binance({"apiKey": key, "secret": secret, "enableRateLimit": False})
    for name, value in list(client.urls["api"].items()):  # the base URL, nothing else
        if isinstance(value, str):
            path = (
                value.split("://", 1)[1].split("/", 1)[1] if "/" in value.split("://", 1)[1] else ""
            )
            client.urls["api"][name] = f"{url}/{path}".rstrip("/")
    return client


@pytest.fixture(scope="module")
def funded(exchange: Exchange) -> tuple[Trader, Trader]:
    buyer, seller = exchange.register("ccxt-buyer"), exchange.register("ccxt-seller")
    exchange.deposit(buyer.account, "USD", "50000")
    exchange.deposit(seller.account, "BTC", "2")
    return buyer, seller


def test_ccxt_binance_unchanged_but_for_the_url(
    exchange: Exchange, funded: tuple[Trader, Trader]
) -> None:
    buyer, seller = funded
    b_key, s_key = buyer.key(), seller.key()
    b = ccxt_binance(exchange.url, b_key.key, b_key.secret)
    s = ccxt_binance(exchange.url, s_key.key, s_key.secret)
    markets = b.load_markets()
    market = markets["BTC/USD"]
    assert market["id"] == "BTCUSD"
    assert market["spot"] and market["active"]
    assert Decimal(str(market["precision"]["price"])) == Decimal("10")
    assert Decimal(str(market["precision"]["amount"])) == Decimal("0.001")
    assert market["limits"]["cost"]["min"] == 10
    wait_until(lambda: s.fetch_balance()["BTC"]["free"] == 2, what="the seller's deposit")
    wait_until(lambda: b.fetch_balance()["USD"]["free"] == 50000, what="the buyer's deposit")

    ask = s.create_order("BTC/USD", "limit", "sell", 0.2, 61000)
    assert ask["status"] == "open" and ask["id"]
    fetched = wait_until(lambda: _fetch(s, ask["id"]), what="the ask in the read model")
    assert fetched["price"] == 61000 and fetched["amount"] == 0.2
    book = wait_until(lambda: b.fetch_order_book("BTC/USD")["asks"], what="the ask in the book")
    assert book[0] == [61000.0, 0.2]
    top = b.fetch_bids_asks(["BTC/USD"])["BTC/USD"]  # /api/v3/ticker/bookTicker
    assert (top["ask"], top["askVolume"]) == (61000.0, 0.2)

    bid = b.create_order("BTC/USD", "limit", "buy", 0.1, 61000)
    wait_until(lambda: (_fetch(b, bid["id"]) or {}).get("status") == "closed", what="bid filled")
    trades = wait_until(lambda: b.fetch_my_trades("BTC/USD"), what="the buyer's fill")
    assert [(t["price"], t["amount"], t["side"], t["takerOrMaker"]) for t in trades] == [
        (61000.0, 0.1, "buy", "taker"),
    ]
    assert trades[0]["fee"]["currency"] == "USD" and trades[0]["fee"]["cost"] == pytest.approx(12.2)
    public = b.fetch_trades("BTC/USD")
    assert any(t["amount"] == 0.1 and t["price"] == 61000 for t in public)
    candles = wait_until(lambda: b.fetch_ohlcv("BTC/USD", "1m"), what="a candle")
    assert candles[-1][4] == 61000 and candles[-1][5] >= 0.1
    ticker = b.fetch_ticker("BTC/USD")
    assert ticker["last"] == 61000
    balance = wait_until(lambda: _settled(b), what="the buyer settled")
    assert balance["BTC"]["free"] == pytest.approx(0.1)
    assert balance["USD"]["total"] == pytest.approx(50000 - 6100 - 12.2)

    opened = s.fetch_open_orders("BTC/USD")
    assert [o["id"] for o in opened] == [ask["id"]]
    cancelled = s.cancel_order(ask["id"], "BTC/USD")
    assert cancelled["status"] == "canceled"
    assert wait_until(lambda: _fetch(s, ask["id"])["status"] == "canceled", what="cancelled")
    with pytest.raises(ccxt.OrderNotFound):
        b.fetch_order(ask["id"], "BTC/USD")  # the seller's order: not the buyer's business
    # -2010 is InvalidOrder to ccxt (its message-based InsufficientFunds mapping is keyed
    # by Binance's own hostnames); the reason is in the message
    with pytest.raises(ccxt.InvalidOrder, match="insufficient balance"):
        b.create_order("BTC/USD", "limit", "buy", 10, 60000)


def test_cancel_replace_with_ccxt_edit_order_and_its_failures(exchange: Exchange) -> None:
    """ccxt's edit_order is Binance's cancelReplace: the order cancelled, a new one placed.
    A cancel that fails: STOP_ON_FAILURE places nothing (-2022), ALLOW_FAILURE places the new
    order anyway (-2021, 409); both outcomes are in ``data``."""
    maker = exchange.register("ccxt-editor")
    exchange.deposit(maker.account, "BTC", "1")
    key = maker.key()
    client = ccxt_binance(exchange.url, key.key, key.secret)
    client.load_markets()
    wait_until(lambda: client.fetch_balance()["BTC"]["free"] == 1, what="the deposit")
    ask = client.create_order("BTC/USD", "limit", "sell", 0.2, 90000)
    edited = client.edit_order(ask["id"], "BTC/USD", "limit", "sell", 0.3, 91000)
    assert edited["id"] != ask["id"] and edited["status"] == "open"
    assert (edited["price"], edited["amount"]) == (91000, 0.3)
    assert wait_until(lambda: (_fetch(client, ask["id"]) or {}).get("status") == "canceled",
                      what="the first ask cancelled")  # fmt: skip
    opened = wait_until(lambda: client.fetch_open_orders("BTC/USD"), what="the new ask")
    assert [(o["id"], o["price"], o["amount"]) for o in opened] == [(edited["id"], 91000, 0.3)]

    replace = {"symbol": "BTCUSD", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
               "quantity": "0.1", "price": "92000", "cancelOrderId": ask["id"]}  # fmt: skip
    stop = key.signed("POST", "/api/v3/order/cancelReplace",
                      {**replace, "cancelReplaceMode": "STOP_ON_FAILURE"})  # fmt: skip
    assert stop.status_code == 400, stop.text
    assert stop.json()["code"] == -2022
    assert stop.json()["data"] == {
        "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": stop.json()["data"]["cancelResponse"]["msg"]},
        "newOrderResponse": None,
    }  # fmt: skip
    allow = key.signed("POST", "/api/v3/order/cancelReplace",
                       {**replace, "cancelReplaceMode": "ALLOW_FAILURE"})  # fmt: skip
    assert allow.status_code == 409, allow.text
    data = allow.json()["data"]
    assert allow.json()["code"] == -2021
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert (
        data["newOrderResponse"]["price"] == "92000" and data["newOrderResponse"]["status"] == "NEW"
    )
    opened = wait_until(lambda: len(client.fetch_open_orders("BTC/USD")) == 2 or None,
                        what="both asks open")  # fmt: skip
    # a new order that fails its filters: nothing is cancelled
    bad = key.signed("POST", "/api/v3/order/cancelReplace", {
        **replace, "cancelOrderId": edited["id"], "price": "92005",
        "cancelReplaceMode": "STOP_ON_FAILURE"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["code"] == -1013, bad.text
    assert {o["id"] for o in client.fetch_open_orders("BTC/USD")} >= {edited["id"]}
    # leave the shared book as it was: these asks would fill other tests' high bids
    client.cancel_all_orders("BTC/USD")
    wait_until(lambda: not client.fetch_open_orders("BTC/USD"), what="the asks cancelled")


def _fetch(client: Any, order_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client.fetch_order(order_id, "BTC/USD")
    except ccxt.OrderNotFound:
        return None
    return found


def _settled(client: Any) -> dict[str, Any] | None:
    balance: dict[str, Any] = client.fetch_balance()
    return balance if balance["BTC"]["free"] and not balance["USD"]["used"] else None


# python-binance imports websockets' deprecated legacy client at import time
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_python_binance_unchanged_but_for_the_url(
    exchange: Exchange, funded: tuple[Trader, Trader]
) -> None:
    from binance.client import Client

    buyer, _seller = funded
    key = buyer.key()
    client = Client(key.key, key.secret, base_endpoint="", ping=False)
    client.API_URL = f"{exchange.url}/api"  # the base URL
    assert client.ping() == {}
    assert abs(client.get_server_time()["serverTime"] - time.time() * 1000) < 5_000
    info = client.get_symbol_info("BTCUSD")
    assert info is not None and info["baseAsset"] == "BTC"
    assert client.get_order_book(symbol="BTCUSD")["lastUpdateId"] >= 0
    # the last price and the 5-minute average (the ccxt test above traded BTCUSD)
    with exchange.client() as http:
        last = http.get("/api/v3/trades", params={"symbol": "BTCUSD", "limit": 1}).json()[-1]
        candles = http.get("/api/v3/klines", params={"symbol": "BTCUSD", "interval": "1m"}).json()
    assert client.get_symbol_ticker(symbol="BTCUSD") == {"symbol": "BTCUSD", "price": last["price"]}
    assert {"symbol": "BTCUSD", "price": last["price"]} in client.get_symbol_ticker()
    avg = client.get_avg_price(symbol="BTCUSD")
    minute_ms = last["time"] // 60_000 * 60_000
    recent = [c for c in candles if minute_ms - 5 * 60_000 < c[0] <= minute_ms]
    volume, quote = sum(Decimal(c[5]) for c in recent), sum(Decimal(c[7]) for c in recent)
    assert (avg["mins"], avg["closeTime"]) == (5, minute_ms + 59_999)
    assert Decimal(avg["price"]) == pytest.approx(quote / volume, rel=Decimal("1e-6"))
    assert "balances" in client.get_account()
    order = client.order_limit_buy(symbol="BTCUSD", quantity="0.001", price="20000")
    assert order["status"] == "NEW"
    got = wait_until(lambda: _get(client, order["orderId"]), what="the order in the read model")
    assert got["clientOrderId"] == order["clientOrderId"]
    cancelled = client.cancel_order(symbol="BTCUSD", orderId=order["orderId"])
    assert cancelled["status"] == "CANCELED"


def _get(client: Any, order_id: int) -> dict[str, Any] | None:
    from binance.exceptions import BinanceAPIException

    try:
        found: dict[str, Any] = client.get_order(symbol="BTCUSD", orderId=order_id)
    except BinanceAPIException as exc:
        if exc.code == -2013:
            return None
        raise
    return found
