"""Trading over Binance's WebSocket API (``/ws-api/v3``) on the real stack: an order
placed (the processor's outcome), queried, listed, cancelled; the account; REST's refusals
(bad or stale signature, a key without ``trade``, a malformed order) writing nothing to the
log; a signature used once; both signing forms (as sent, percent-encoded); ccxt.pro's and
python-binance's WebSocket order methods with only their URLs changed. Without the stack:
the signed text against ccxt.pro's and python-binance's own signing, the parameter checks,
``rateLimits``, and the methods being the REST endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
import types
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.queries.exchange import LOT, ApiKey, Exchange
from tests.queries.test_security import command_ends
from tests.queries.test_user_data import ccxt_pro
from tests.queries.test_websocket import Socket, funded, python_binance, ws_url
from tradex.queries import app, ws_api_trade
from tradex.queries.config import RateLimit
from tradex.queries.errors import ApiError
from tradex.queries.rate_limits import Usage

BUY_LOW: dict[str, Any] = {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT",
                           "timeInForce": "GTC", "quantity": LOT,
                           "price": "10000"}  # fmt: skip  # rests: far under the market
_last_ms = [0]


def timestamp_ms() -> int:
    """Now, strictly increasing (two equal requests in one ms would sign alike: a replay)."""
    _last_ms[0] = max(int(time.time() * 1000), _last_ms[0] + 1)
    return _last_ms[0]


def signed(key: ApiKey, method: str, request_id: str, secret: str | None = None,
           encoded: bool = False, **params: Any) -> dict[str, Any]:  # fmt: skip
    """A signed WebSocket API request: HMAC of the other parameters sorted by name, as
    ``name=value&…`` as sent (ccxt.pro) or percent-encoded (python-binance)."""
    values = {"apiKey": key.key, "timestamp": timestamp_ms(), **params}
    pairs = sorted(
        (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items()
    )
    text = urlencode(pairs) if encoded else "&".join(f"{k}={v}" for k, v in pairs)
    signature = hmac.new((secret or key.secret).encode(), text.encode(), hashlib.sha256)
    return {"id": request_id, "method": method,
            "params": {**values, "signature": signature.hexdigest()}}  # fmt: skip


class WsApi:
    """One ``/ws-api/v3`` connection and an API key; answers by request id."""

    def __init__(self, exchange: Exchange, key: ApiKey) -> None:
        self.socket = Socket(ws_url(exchange, "/ws-api/v3"))
        self.key = key
        self.ids = itertools.count()

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        self.socket.send(**message)
        found: dict[str, Any] = self.socket.until(lambda m: m.get("id") == message["id"])
        return found

    def ask(self, method: str, **params: Any) -> dict[str, Any]:
        return self.send(signed(self.key, method, f"r{next(self.ids)}", **params))

    def close(self) -> None:
        self.socket.close()


def error(answer: dict[str, Any]) -> tuple[int, int]:
    return answer["status"], answer.get("error", {}).get("code", 0)


@pytest.mark.integration
def test_an_order_placed_queried_listed_and_cancelled(exchange: Exchange) -> None:
    trader = funded(exchange, "wsapi-orders", usd="500")
    key = trader.key(["read", "trade"])
    api = WsApi(exchange, key)
    client_id = f"wsapi-{uuid.uuid4().hex[:12]}"
    placed = api.ask("order.place", **BUY_LOW, newClientOrderId=client_id)
    assert placed["status"] == 200, placed
    result = placed["result"]
    assert (result["status"], result["clientOrderId"], result["fills"]) == ("NEW", client_id, [])
    assert (result["symbol"], result["side"], result["type"]) == ("BTCUSD", "BUY", "LIMIT")
    assert Decimal(result["price"]) == 10_000 and Decimal(result["origQty"]) == Decimal(LOT)
    [limits] = placed["rateLimits"]  # the order bucket, as Binance's ORDERS
    assert limits["rateLimitType"] == "ORDERS" and 1 <= limits["count"] <= limits["limit"]
    order_id = result["orderId"]

    status = api.ask("order.status", symbol="BTCUSD", orderId=order_id)
    assert status["status"] == 200 and status["result"]["status"] == "NEW", status
    by_client = api.ask("order.status", symbol="BTCUSD", origClientOrderId=client_id,
                        returnRateLimits=False)  # fmt: skip
    assert by_client["result"]["orderId"] == order_id and "rateLimits" not in by_client
    assert status["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"  # the read bucket
    rest = key.signed("GET", "/api/v3/order", {"symbol": "BTCUSD", "orderId": order_id}).json()
    same = ("orderId", "clientOrderId", "price", "origQty", "side", "type", "timeInForce")
    assert {k: status["result"][k] for k in same} == {k: rest[k] for k in same}

    def listed() -> bool:
        answer = api.ask("openOrders.status", symbol="BTCUSD")
        assert answer["status"] == 200, answer
        return order_id in [o["orderId"] for o in answer["result"]]

    deadline = time.monotonic() + 30
    while not listed():  # the read model has it within moments
        assert time.monotonic() < deadline, "the order never showed in openOrders.status"
        time.sleep(0.1)
    account = api.ask("account.status", omitZeroBalances=True)
    usd = {b["asset"]: b for b in account["result"]["balances"]}["USD"]
    assert Decimal(usd["locked"]) >= 10 and Decimal(usd["free"]) + Decimal(usd["locked"]) == 500
    assert (
        account["result"]["canTrade"] is True and account["result"]["accountId"] == trader.account
    )

    cancelled = api.ask("order.cancel", symbol="BTCUSD", orderId=order_id)
    assert cancelled["status"] == 200, cancelled
    assert cancelled["result"]["status"] == "CANCELED"
    assert cancelled["result"]["origClientOrderId"] == client_id
    assert error(api.ask("order.cancel", symbol="BTCUSD", orderId=order_id)) == (400, -2011)
    assert error(api.ask("order.status", symbol="BTCUSD", orderId=987_654_321)) == (404, -2013)
    unaffordable = api.ask("order.place", **{**BUY_LOW, "quantity": "1", "price": "20000"})
    assert error(unaffordable) == (400, -2010)
    assert "insufficient balance" in unaffordable["error"]["msg"], unaffordable
    api.close()


@pytest.mark.integration
def test_refused_requests_write_nothing_and_a_signature_is_used_once(
    exchange: Exchange,
) -> None:
    trader = funded(exchange, "wsapi-refused", usd="500")
    key, reader = trader.key(["read", "trade"]), trader.key(["read"])
    api = WsApi(exchange, key)
    without_price = {k: v for k, v in BUY_LOW.items() if k != "price"}
    before = command_ends(exchange)
    stale_ms = int(time.time() * 1000) - 120_000
    nobody = ApiKey(key.url, "A" * 64, key.secret, "")
    refusals = {
        "bad signature": (signed(key, "order.place", "a", secret="0" * 64, **BUY_LOW), 401, -1022),
        "stale": (signed(key, "order.place", "b", **BUY_LOW, timestamp=stale_ms), 401, -1021),
        "read-only key": (signed(reader, "order.place", "c", **BUY_LOW), 403, -70013),
        "no price": (signed(key, "order.place", "d", **without_price), 400, -1102),
        "bad side": (signed(key, "order.place", "e", **{**BUY_LOW, "side": "UP"}), 400, -1130),
        "unknown key": (signed(nobody, "order.place", "f", **BUY_LOW), 401, -2015),
    }
    for name, (message, status, code) in refusals.items():
        answer = api.send(message)
        assert error(answer) == (status, code), (name, answer)
    no_key = {"id": "g", "method": "order.place", "params": {**BUY_LOW, "timestamp": 1}}
    assert error(api.send(no_key)) == (400, -1102)
    nested = signed(key, "order.place", "h", **BUY_LOW)
    nested["params"]["price"] = ["10000"]
    assert error(api.send(nested)) == (400, -1102)
    assert error(api.send({"id": "i", "method": "order.test", "params": {}})) == (400, -1130)
    assert command_ends(exchange) == before  # nothing of them reached the log

    first = signed(key, "order.place", "j", **BUY_LOW)
    assert api.send(first)["result"]["status"] == "NEW"
    after = command_ends(exchange)
    assert after != before
    replayed = api.send(first)  # the same signature again
    assert error(replayed) == (401, -70011), replayed
    assert command_ends(exchange) == after

    for encoded in (False, True):  # a client id that percent-encoding changes: both forms
        client_id = f"ws:enc/{int(encoded)}-{uuid.uuid4().hex[:8]}"
        answer = api.send(signed(key, "order.place", f"k{encoded}", encoded=encoded, **BUY_LOW,
                                 newClientOrderId=client_id))  # fmt: skip
        assert answer["status"] == 200 and answer["result"]["clientOrderId"] == client_id, answer
    deadline = time.monotonic() + 30
    while len(api.ask("openOrders.status", symbol="BTCUSD")["result"]) < 3:
        # in the read model first: DELETE /api/v3/openOrders fails (-1000) on an order only
        # the command client's recent outcomes know (they map it to the cancel's events)
        assert time.monotonic() < deadline, "the orders never showed in openOrders.status"
        time.sleep(0.1)
    cancelled = api.ask("openOrders.cancelAll", symbol="BTCUSD")
    assert cancelled["status"] == 200 and len(cancelled["result"]) == 3, cancelled
    assert {o["status"] for o in cancelled["result"]} == {"PENDING_CANCEL"}
    api.close()


@pytest.mark.integration
def test_ccxt_pro_orders_over_the_ws_api_unchanged_but_for_the_url(exchange: Exchange) -> None:
    import ccxt

    trader = funded(exchange, "wsapi-ccxt", usd="1000")
    key = trader.key(["read", "trade"])
    price = 10_000.0  # rests: far under the market

    async def run() -> dict[str, Any]:
        client = ccxt_pro(exchange, key.key, key.secret)
        found: dict[str, Any] = {}
        try:
            await client.load_markets()
            placed = await client.create_order_ws("BTC/USD", "limit", "buy", 0.001, price)
            found["placed"] = placed
            found["fetched"] = await client.fetch_order_ws(placed["id"], "BTC/USD")
            for _ in range(100):  # the read model lists it within moments
                found["open"] = await client.fetch_open_orders_ws("BTC/USD")
                if any(o["id"] == placed["id"] for o in found["open"]):
                    break
                await asyncio.sleep(0.1)
            found["balance"] = await client.fetch_balance_ws()
            found["cancelled"] = await client.cancel_order_ws(placed["id"], "BTC/USD")
            try:
                await client.create_order_ws("BTC/USD", "limit", "buy", 1, 20_000)
            except ccxt.BaseError as exc:
                found["refused"] = exc
        finally:
            await client.close()
        return found

    found = asyncio.run(run())
    placed = found["placed"]
    assert (placed["status"], placed["symbol"], placed["price"], placed["amount"]) == (
        "open", "BTC/USD", price, 0.001)  # fmt: skip
    assert found["fetched"]["id"] == placed["id"] and found["fetched"]["status"] == "open"
    assert placed["id"] in [o["id"] for o in found["open"]]
    # ccxt 4.5's handle_account_status_ws parses account.status without the market type (as
    # futures' "assets": no spot balance comes out); Binance's body is there, in "info"
    usd = {b["asset"]: b for b in found["balance"]["info"]["balances"]}["USD"]
    assert Decimal(usd["locked"]) > 0 and Decimal(usd["free"]) + Decimal(usd["locked"]) == 1000
    assert found["cancelled"]["id"] == placed["id"] and found["cancelled"]["status"] == "canceled"
    # -2010 is InvalidOrder to ccxt, as over REST (tests/queries/test_clients.py)
    assert isinstance(found["refused"], ccxt.InvalidOrder), repr(found["refused"])
    assert "insufficient balance" in str(found["refused"])


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_python_binance_ws_orders_unchanged_but_for_the_urls(exchange: Exchange) -> None:
    trader = funded(exchange, "wsapi-pybinance", usd="1000")
    key = trader.key(["read", "trade"])

    Local = python_binance(exchange)

    async def run() -> tuple[dict[str, Any], ...]:
        client = Local(key.key, key.secret)
        try:
            placed = await client.ws_create_order(**BUY_LOW)
            fetched = await client.ws_get_order(symbol="BTCUSD", orderId=placed["orderId"])
            cancelled = await client.ws_cancel_order(symbol="BTCUSD", orderId=placed["orderId"])
            account = await client.ws_get_account()
        finally:
            await client.close_connection()
        return placed, fetched, cancelled, account

    placed, fetched, cancelled, account = asyncio.run(run())
    assert placed["status"] == "NEW" and placed["clientOrderId"].startswith("x-")
    assert fetched["orderId"] == placed["orderId"] == cancelled["orderId"]
    assert cancelled["status"] == "CANCELED" and account["accountId"] == trader.account


SECRET = "s" * 64


def verifies(params: dict[str, Any]) -> bool:
    """Whether a client's signed parameters pass: one of :func:`ws_api_trade.payloads`."""
    values = ws_api_trade.checked_values(params)
    found = [hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
             for payload in ws_api_trade.payloads(values)]  # fmt: skip
    return params["signature"] in found


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_signed_text_is_the_clients_own() -> None:
    """ccxt.pro's ``sign_params`` (as sent) and python-binance's ``_sign_ws_params``
    (percent-encoded), called on plain objects: no client session is opened here."""
    import ccxt.pro
    from binance.base_client import BaseClient

    order = {**BUY_LOW, "newClientOrderId": "x-R4:a/b.c_d", "returnRateLimits": False}
    client = ccxt.pro.binance({"apiKey": "k" * 64, "secret": SECRET})
    assert verifies(client.sign_params(dict(order)))  # as sent, booleans true/false
    keys = types.SimpleNamespace(API_KEY="k" * 64, API_SECRET=SECRET, PRIVATE_KEY=None,
                                 timestamp_offset=0)  # fmt: skip
    keys._hmac_signature = lambda text: BaseClient._hmac_signature(keys, text)
    signed_by_pybinance = BaseClient._sign_ws_params(
        keys,
        {k: v for k, v in order.items() if k != "returnRateLimits"},
        lambda data: BaseClient._generate_ws_api_signature(keys, data),
    )  # percent-encoded
    assert verifies(signed_by_pybinance)
    assert not verifies({**signed_by_pybinance, "price": "10010"})
    plain = {"apiKey": "k", "timestamp": 1, "symbol": "BTCUSD", "signature": "x"}
    assert ws_api_trade.payloads(plain) == [b"apiKey=k&symbol=BTCUSD&timestamp=1"]


def test_parameters_are_checked_as_rest_reads_them() -> None:
    assert ws_api_trade.checked_values({"a": "1", "b": None, "c": True}) == {"a": "1", "c": True}
    for value, code in (([1], -1102), ({"x": 1}, -1102), ("", -1102), ("a\x00b", -1100),
                        ("\ud800", -1100), ("x" * 513, -1100)):  # fmt: skip
        with pytest.raises(ApiError) as caught:
            ws_api_trade.checked_values({"price": value})
        assert (caught.value.code.code, caught.value.field) == (code, "price"), value


def test_rate_limits_are_binances_shape() -> None:
    order = Usage(RateLimit("order", 50, 10), 3, 1_000)
    assert ws_api_trade.rate_limits(order) == [{"rateLimitType": "ORDERS", "interval": "SECOND",
                                                "intervalNum": 10, "limit": 50, "count": 3}]  # fmt: skip
    read = Usage(RateLimit("read", 6_000, 60), 7, 1_000)
    [found] = ws_api_trade.rate_limits(read)
    assert (found["rateLimitType"], found["interval"], found["intervalNum"]) == (
        "REQUEST_WEIGHT", "MINUTE", 1)  # fmt: skip


def test_the_methods_are_the_rest_endpoints() -> None:
    for method, endpoint in ws_api_trade.METHODS.items():
        assert endpoint in app.ENDPOINTS, method
        assert (endpoint.method, endpoint.path) == ws_api_trade.ROUTES[method]
    trading = {m for m, e in ws_api_trade.METHODS.items() if e.access.permission == "trade"}
    assert trading == {"order.place", "order.cancel", "order.cancelReplace",
                       "order.amend.keepPriority", "openOrders.cancelAll"}  # fmt: skip
