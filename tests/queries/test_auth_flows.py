"""Sessions, tokens, lockout, key rotation and rate limits, with the app in this process
(an injected clock, low limits) on the running exchange's stores and log; a WebSocket's
private channels ending at its access token's expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.queries.exchange import PASSWORD, Exchange, Trader
from tradex.queries.app import create_app
from tradex.queries.config import ApiConfig, RateLimit

pytestmark = pytest.mark.integration

NS = 1_000_000_000
TTL_S = 60


class Clock:
    def __init__(self) -> None:
        import time

        self.now_ns = time.time_ns()

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * NS)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def app(exchange: Exchange, clock: Clock) -> Iterator[TestClient]:
    config = ApiConfig(
        access_token_ttl_s=TTL_S, login_failures_max=3, lockout_s=120, argon2_time_cost=1,
        argon2_memory_kib=8192, master_key_path=exchange.log_dir / "master.key",
        rate_limits=(RateLimit("read", 1_000_000, 60), RateLimit("order", 1_000_000, 10),
                     RateLimit("auth", 1_000_000, 60)), ws_auth_check_ms=100,
    )  # fmt: skip
    with TestClient(create_app(exchange.settings, config, clock)) as client:
        yield client


def login(app: TestClient, username: str, password: str = PASSWORD) -> dict:
    answer = app.post("/tradex/v1/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()


def me(app: TestClient, token: str) -> int:
    return app.get("/tradex/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_access_tokens_expire(app: TestClient, exchange: Exchange, clock: Clock) -> None:
    trader = exchange.register("expiry")
    token = login(app, trader.username)["accessToken"]
    assert me(app, token) == 200
    clock.advance(TTL_S + 1)
    assert me(app, token) == 401
    assert me(app, login(app, trader.username)["accessToken"]) == 200


def test_private_channels_end_when_the_access_token_expires(
    app: TestClient, exchange: Exchange, clock: Clock
) -> None:
    """The session lives on but the token expires: the gateway's private subscriptions end
    at the expiry with an error frame (nothing asked), the public ones stay."""
    trader = exchange.register("ws-expiry")
    token = login(app, trader.username)["accessToken"]
    with app.websocket_connect("/tradex/v1/ws") as ws:

        def until(check: Any) -> dict[str, Any]:
            while not check(found := ws.receive_json()):
                pass
            return found

        ws.send_json({"op": "auth", "token": token})
        assert until(lambda m: True)["type"] == "authenticated"
        for request in ({"channel": "orders"}, {"channel": "ticker", "symbol": "BTCUSD"}):
            ws.send_json({"op": "subscribe", **request})
            assert until(lambda m: m.get("type") == "subscribed")["channel"] == request["channel"]
        clock.advance(TTL_S + 1)
        errors: list[dict[str, Any]] = []
        for attempt in range(50):  # a ping's pong comes after what was sent before it
            ws.send_json({"op": "ping", "id": attempt})
            while (found := ws.receive_json()).get("type") != "pong":
                errors += [found] if found.get("type") == "error" else []
            if errors:
                break
            time.sleep(0.1)
        [ended] = errors
        assert (ended["error"], ended["id"]) == ("TOKEN_INVALID", None), ended
        assert "expired" in ended["msg"] and "orders" in ended["msg"], ended
        ws.send_json({"op": "subscribe", "channel": "orders", "id": "again"})
        assert until(lambda m: m.get("id") == "again")["error"] == "UNAUTHORIZED"
        ws.send_json({"op": "unsubscribe", "channel": "ticker", "symbol": "BTCUSD", "id": "t"})
        assert until(lambda m: m.get("id") == "t")["type"] == "unsubscribed"


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_session(
    app: TestClient, exchange: Exchange
) -> None:
    trader = exchange.register("refresh")
    first = login(app, trader.username)
    rotated = app.post("/tradex/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refreshToken"] != first["refreshToken"]
    assert me(app, second["accessToken"]) == 200
    reused = app.post("/tradex/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reused.status_code == 401
    assert reused.json()["error"] == "REFRESH_INVALID"
    # the reuse revoked the session: the live tokens of it stop working too
    assert me(app, second["accessToken"]) == 401
    again = app.post("/tradex/v1/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert again.status_code == 401


def test_logout_revokes_access_and_refresh(app: TestClient, exchange: Exchange) -> None:
    trader = exchange.register("logout")
    session = login(app, trader.username)
    headers = {"Authorization": f"Bearer {session['accessToken']}"}
    assert app.post("/tradex/v1/auth/logout", headers=headers).status_code == 200
    assert me(app, session["accessToken"]) == 401
    refused = app.post("/tradex/v1/auth/refresh", json={"refreshToken": session["refreshToken"]})
    assert refused.status_code == 401


def test_logout_all_revokes_every_session_of_the_user_only(
    app: TestClient, exchange: Exchange
) -> None:
    trader = exchange.register("logout-all")  # logged in once by the API's own process
    other = exchange.register("logout-all-other")
    sessions = [login(app, trader.username) for _ in range(3)]
    bystander = login(app, other.username)
    headers = {"Authorization": f"Bearer {sessions[0]['accessToken']}"}
    answer = app.post("/tradex/v1/auth/logoutAll", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True, "sessions": 4}
    assert me(app, trader.token) == 401
    for session in sessions:
        assert me(app, session["accessToken"]) == 401
        refused = app.post("/tradex/v1/auth/refresh",
                           json={"refreshToken": session["refreshToken"]})  # fmt: skip
        assert refused.status_code == 401
        assert refused.json()["error"] == "REFRESH_INVALID"
    assert me(app, bystander["accessToken"]) == 200
    # a session opened afterwards works, and only it is revoked by the next logoutAll
    fresh = login(app, trader.username)
    headers = {"Authorization": f"Bearer {fresh['accessToken']}"}
    assert app.post("/tradex/v1/auth/logoutAll", headers=headers).json()["sessions"] == 1
    assert me(app, fresh["accessToken"]) == 401
    # logged out, the call itself is refused and changes nothing
    assert app.post("/tradex/v1/auth/logoutAll", headers=headers).status_code == 401
    assert me(app, bystander["accessToken"]) == 200


def test_repeated_failures_lock_the_user_out(
    app: TestClient, exchange: Exchange, clock: Clock
) -> None:
    trader = exchange.register("lockout")
    for _ in range(2):
        wrong = app.post("/tradex/v1/auth/login",
                         json={"username": trader.username, "password": "wrong-password"})  # fmt: skip
        assert wrong.json()["error"] == "CREDENTIALS_INVALID"
    third = app.post("/tradex/v1/auth/login",
                     json={"username": trader.username, "password": "wrong-password"})  # fmt: skip
    assert third.json()["error"] == "LOGIN_LOCKED"
    locked = app.post("/tradex/v1/auth/login",
                      json={"username": trader.username, "password": PASSWORD})  # fmt: skip
    assert locked.status_code == 401
    assert locked.json()["error"] == "LOGIN_LOCKED"
    assert int(locked.headers["Retry-After"]) > 0
    assert f"try again in {locked.headers['Retry-After']} s" in locked.json()["msg"]
    clock.advance(121)
    assert login(app, trader.username)["accessToken"]
    unknown = app.post("/tradex/v1/auth/login", json={"username": "nobody-here", "password": "x"})
    assert unknown.json()["error"] == "CREDENTIALS_INVALID"  # the same answer as a bad password


def test_signing_keys_rotate_and_the_jwks_follows(
    app: TestClient, exchange: Exchange, clock: Clock
) -> None:
    admin = login(app, "admin", "admin-password-1")
    old_token = admin["accessToken"]
    before = {k["kid"] for k in app.get("/.well-known/jwks.json").json()["keys"]}
    headers = {"Authorization": f"Bearer {old_token}"}
    rotated = app.post("/tradex/v1/admin/signingKeys/rotate", headers=headers)
    assert rotated.status_code == 200, rotated.text
    kid = rotated.json()["kid"]
    keys = {k["kid"] for k in app.get("/.well-known/jwks.json").json()["keys"]}
    assert keys == before | {kid}
    fresh = login(app, "admin", "admin-password-1")["accessToken"]
    import jwt

    assert jwt.get_unverified_header(fresh)["kid"] == kid
    assert me(app, old_token) == 200  # the old key still verifies its live tokens
    # (retiring it is tests/queries/test_tokens.py's: the other tests share these keys)


def test_rate_limits_answer_429_with_retry_after(exchange: Exchange, clock: Clock) -> None:
    config = ApiConfig(
        argon2_time_cost=1, argon2_memory_kib=8192, master_key_path=exchange.log_dir / "master.key",
        rate_limits=(RateLimit("read", 5, 60), RateLimit("order", 2, 10), RateLimit("auth", 50, 60)),
    )  # fmt: skip
    # its own client address: the counters of this IP are this test's alone
    with TestClient(create_app(exchange.settings, config, clock),
                    client=("10.1.2.3", 50000)) as http:  # fmt: skip
        seen = [http.get("/api/v3/ping") for _ in range(6)]
        assert [r.status_code for r in seen[:5]] == [200] * 5
        assert seen[0].headers["X-RateLimit-Limit"] == "5"
        assert [r.headers["X-RateLimit-Remaining"] for r in seen[:5]] == ["4", "3", "2", "1", "0"]
        assert seen[5].status_code == 429
        assert seen[5].json()["code"] == -1003
        assert 0 < int(seen[5].headers["Retry-After"]) <= 60
        trader: Trader = exchange.register("limited")
        auth = {"Authorization": f"Bearer {login(http, trader.username)['accessToken']}"}
        order = {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "1", "price": "10"}  # fmt: skip
        answers = [http.post("/api/v3/order", params=order, headers=auth) for _ in range(3)]
        assert [a.status_code for a in answers[:2]] == [400, 400]  # unfunded: rejected, counted
        assert answers[2].status_code == 429
        assert answers[2].json()["code"] == -1015
        assert answers[0].headers["X-MBX-ORDER-COUNT-10S"] == "1"


def test_a_profiled_worker_writes_its_event_loops_profile_as_it_stops(
    exchange: Exchange, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TRADEX_API_PROFILE_PATH (`tradex bench api --profile`): the worker's event loop is
    profiled from start-up to shutdown and written to <path>.<pid>, the requests' handlers
    in it (`python -m cProfile` wrote nothing: uvicorn re-raises SIGTERM after shutdown)."""
    import os
    import pstats

    from tradex.queries import config as config_module

    monkeypatch.setenv("TRADEX_API_PROFILE_PATH", str(tmp_path / "api.prof"))
    monkeypatch.setenv("TRADEX_API_MASTER_KEY_PATH", str(exchange.log_dir / "master.key"))
    config = config_module.load(exchange.settings)
    assert config.profile_path == tmp_path / "api.prof"
    with TestClient(create_app(exchange.settings, config)) as client:
        assert client.get("/api/v3/time").status_code == 200
    written = tmp_path / f"api.prof.{os.getpid()}"
    handled = [f for f in pstats.Stats(str(written)).stats if f[2] == "server_time"]  # type: ignore[attr-defined]
    assert handled, "the endpoint's handler ran in the profiled loop"
