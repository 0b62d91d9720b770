"""The security matrix: every private endpoint refuses a missing, wrong, expired or revoked
token and a bad, replayed or stale signature (401); another user's order is 404; a trader
on an admin path is 403; a malformed request names its field and writes nothing."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.queries.exchange import Exchange, Trader
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_COMMANDS, REFERENCE_COMMANDS
from tradex.queries.app import ENDPOINTS

pytestmark = pytest.mark.integration

PRIVATE = [e for e in ENDPOINTS if not e.access.public]
# signed with an API key (the user-data stream's listenKey endpoints take the key alone,
# as Binance: tests/queries/test_user_data.py)
KEYED = [e for e in PRIVATE if e.access.keys and e.access.signed]


def command_ends(exchange: Exchange) -> dict[tuple[str, int], int]:
    with KafkaLog(exchange.settings, bulk=False) as log:
        return log.ends([ACCOUNT_COMMANDS, REFERENCE_COMMANDS])


def call(http: httpx.Client, method: str, path: str, **kwargs) -> httpx.Response:
    return http.request(method, path, **kwargs)


@pytest.fixture(scope="module")
def mallory(exchange: Exchange) -> Trader:
    return exchange.register("mallory")


def forged_token(user_id: int) -> str:
    """Well formed, but signed by a key TradeX never had."""
    return jwt.encode({"iss": "tradex", "sub": str(user_id), "sid": "x", "roles": ["admin"],
                       "iat": int(time.time()), "exp": int(time.time()) + 600},
                      Ed25519PrivateKey.generate(), algorithm="EdDSA",
                      headers={"kid": "nope"})  # fmt: skip


def test_every_private_endpoint_refuses_bad_tokens(exchange: Exchange, mallory: Trader) -> None:
    revoked = exchange.login(mallory.username)
    with exchange.client(revoked["accessToken"]) as http:
        assert http.post("/tradex/v1/auth/logout").status_code == 200
    before = command_ends(exchange)
    cases = {
        "none": {},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "forged": {"Authorization": f"Bearer {forged_token(mallory.user_id)}"},
        "revoked": {"Authorization": f"Bearer {revoked['accessToken']}"},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }
    with exchange.client() as http:
        for endpoint in PRIVATE:
            for name, headers in cases.items():
                answer = call(http, endpoint.method, endpoint.path, headers=headers)
                assert answer.status_code == 401, (endpoint.path, name, answer.text)
                body = answer.json()
                assert set(body) == {"code", "msg", "error", "field"}, body
    assert command_ends(exchange) == before  # nothing reached the log


def test_every_keyed_endpoint_refuses_bad_signatures(exchange: Exchange, mallory: Trader) -> None:
    key = mallory.key()
    wrong_secret = "0" * 64
    before = command_ends(exchange)
    for endpoint in KEYED:
        stale = int(time.time() * 1000) - 60_000
        future = int(time.time() * 1000) + 10_000
        for name, kwargs in {
            "bad": {"secret": wrong_secret},
            "stale": {"timestamp_ms": stale},
            "future": {"timestamp_ms": future},
        }.items():
            answer = key.signed(endpoint.method, endpoint.path, {"symbol": "BTCUSD"}, **kwargs)
            assert answer.status_code == 401, (endpoint.path, name, answer.text)
            assert answer.json()["code"] in (-1021, -1022), answer.json()
        unsigned = httpx.request(endpoint.method, f"{exchange.url}{endpoint.path}",
                                 headers={"X-MBX-APIKEY": key.key})  # fmt: skip
        assert unsigned.status_code == 401, unsigned.text
        unknown = httpx.request(endpoint.method, f"{exchange.url}{endpoint.path}",
                                headers={"X-MBX-APIKEY": "A" * 64})  # fmt: skip
        assert unknown.status_code == 401
        assert unknown.json()["code"] == -2015
    # a replayed request: the very same bytes twice
    first = key.signed("GET", "/api/v3/account", timestamp_ms=int(time.time() * 1000))
    assert first.status_code == 200, first.text
    replay = httpx.get(str(first.request.url), headers={"X-MBX-APIKEY": key.key})
    assert replay.status_code == 401
    assert replay.json()["code"] == -70011
    # the same parameters signed for two endpoints in one millisecond (ccxt.pro's
    # load_markets does it): one signature, two requests — neither is a replay
    same_ms = int(time.time() * 1000)
    account = key.signed("GET", "/api/v3/account", timestamp_ms=same_ms)
    orders = key.signed("GET", "/api/v3/openOrders", timestamp_ms=same_ms)
    assert account.request.url.params["signature"] == orders.request.url.params["signature"]
    assert (account.status_code, orders.status_code) == (200, 200), orders.text
    again = key.signed("GET", "/api/v3/openOrders", timestamp_ms=same_ms)
    assert (again.status_code, again.json()["code"]) == (401, -70011)
    assert command_ends(exchange) == before


def test_keys_permissions_ip_allow_list_and_revocation(exchange: Exchange, mallory: Trader) -> None:
    reader = mallory.key(["read"])
    order = {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.001", "price": "10000"}  # fmt: skip
    assert reader.signed("GET", "/api/v3/account").status_code == 200
    refused = reader.signed("POST", "/api/v3/order", order, body=True)
    assert refused.status_code == 403
    assert refused.json()["error"] == "PERMISSION_DENIED"
    elsewhere = mallory.key(["read"], ipAllowList=["10.9.9.0/24"])
    assert elsewhere.signed("GET", "/api/v3/account").status_code == 401
    here = mallory.key(["read"], ipAllowList=["127.0.0.1"])
    assert here.signed("GET", "/api/v3/account").status_code == 200
    with mallory.http() as http:
        assert http.delete("/tradex/v1/apiKeys", params={"keyId": here.key_id}).status_code == 200
        listed = {k["keyId"]: k for k in http.get("/tradex/v1/apiKeys").json()}
        assert listed[here.key_id]["revokedTime"] is not None
        assert "secretKey" not in listed[here.key_id]
    assert here.signed("GET", "/api/v3/account").status_code == 401


def test_other_users_orders_are_not_found(exchange: Exchange, mallory: Trader) -> None:
    victim = exchange.register("victim")
    exchange.deposit(victim.account, "USD", "1000")
    with victim.http() as http:
        placed = None
        for _ in range(50):
            placed = http.post("/api/v3/order", params={
                "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.001", "price": "10000", "newClientOrderId": "victim-1"})  # fmt: skip
            if placed.status_code == 200:
                break
            time.sleep(0.2)  # the deposit is on its way
        assert placed is not None and placed.status_code == 200, placed.text
        order_id = placed.json()["orderId"]
    before = command_ends(exchange)
    with mallory.http() as http:
        for method in ("GET", "DELETE"):
            for params in ({"orderId": order_id}, {"origClientOrderId": "victim-1"}):
                answer = http.request(
                    method, "/api/v3/order", params={"symbol": "BTCUSD", **params}
                )
                assert answer.status_code == 404, answer.text
                assert answer.json()["code"] == -2013
        other = http.get("/api/v3/account", params={"accountId": victim.account})
        assert other.status_code == 404
        assert (
            http.get("/tradex/v1/statement", params={"accountId": victim.account}).status_code
            == 404
        )
    assert command_ends(exchange) == before


def test_traders_are_forbidden_on_admin_and_audit_paths(
    exchange: Exchange, mallory: Trader
) -> None:
    before = command_ends(exchange)
    with mallory.http() as http:
        for endpoint in PRIVATE:
            if not endpoint.access.roles & {"trader"}:
                answer = call(http, endpoint.method, endpoint.path, json={})
                assert answer.status_code == 403, (endpoint.path, answer.text)
                assert answer.json()["error"] == "FORBIDDEN"
    assert command_ends(exchange) == before


def test_malformed_requests_name_the_field_and_write_nothing(
    exchange: Exchange, mallory: Trader
) -> None:
    exchange.deposit(mallory.account, "USD", "100")
    before = command_ends(exchange)
    order = {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.010", "price": "10000"}  # fmt: skip
    cases = [
        ({**order, "price": "10005"}, "price", -1013),  # off the tick (10)
        ({**order, "quantity": "0.0015"}, "quantity", -1013),  # off the lot (0.001)
        ({**order, "quantity": "0.0001"}, "quantity", -1013),
        ({**order, "price": "10", "quantity": "0.001"}, "quantity", -1013),  # notional < 10
        ({**order, "price": "1e5"}, "price", -1100),
        ({**order, "side": "HOLD"}, "side", -1130),
        ({**order, "symbol": "DOGEUSD"}, "symbol", -1121),
        ({k: v for k, v in order.items() if k != "quantity"}, "quantity", -1102),
        ({**order, "quoteOrderQty": "10"}, "quoteOrderQty", -1106),
    ]
    with mallory.http() as http:
        for params, field, code in cases:
            answer = http.post("/api/v3/order", params=params)
            assert answer.status_code == 400, (params, answer.text)
            assert (answer.json()["field"], answer.json()["code"]) == (field, code), answer.json()
        for body, field in (
            ({"asset": "USD", "amount": "-1"}, "amount"),
            ({"asset": "USD", "amount": "0.001"}, "amount"),  # USD has 2 decimals
            ({"asset": "usd", "amount": "1"}, "asset"),
            ({"asset": "USD", "amount": "1", "extra": 1}, "extra"),
        ):
            answer = http.post("/tradex/v1/withdrawals", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["field"] == field, answer.json()
        broken = http.post("/tradex/v1/withdrawals", content=b"{not json",
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert broken.status_code == 422
        assert broken.json()["field"] == "body"
    assert command_ends(exchange) == before
