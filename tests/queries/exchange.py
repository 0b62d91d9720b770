"""A running exchange for the API tests: every stage and the API as processes.

One per test session (:func:`start`): its own topic prefix and PostgreSQL database; the
reference processor, an account processor, the matcher, the postgres/timescale/redis
projectors and ``tradex run api`` as processes (``tradex.exchange_services.
api_exchange_services``, run by ``tradex.infra.exchange``; ``tradex bench api`` starts the
same); an admin made with ``tradex api
create-user``; BTC and USD and the instrument BTC-USD (BTCUSD on the wire) created through
the admin API. Tests register their own users, so they do not depend on each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tradex.exchange_services import discard, start_api_exchange
from tradex.infra.exchange import Exchange as Services
from tradex.infra.local_process import StackError
from tradex.infra.settings import REPO_ROOT, Settings

PARTITIONS = 2
START_TIMEOUT_S = 120.0
ADMIN = ("admin", "admin-password-1")
PASSWORD = "a-good-password"
LOT = "0.001"  # BTCUSD stepSize
TICK = "10"  # BTCUSD tickSize (USD per BTC)


@dataclasses.dataclass
class Exchange:
    services: Services  # the processes (tradex.infra.exchange)
    url: str
    admin_token: str = ""

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def env(self) -> dict[str, str]:
        return self.services.env

    @property
    def log_dir(self) -> Path:
        return self.services.log_dir

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        with self.client() as http:
            answer = http.post("/tradex/v1/auth/login",
                               json={"username": username, "password": password})  # fmt: skip
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def register(self, prefix: str) -> Trader:
        """A new trader with one account, logged in."""
        username = f"{prefix}-{uuid.uuid4().hex[:8]}"
        with self.client() as http:
            answer = http.post("/tradex/v1/auth/register",
                               json={"username": username, "password": PASSWORD})  # fmt: skip
        assert answer.status_code == 200, answer.text
        user = answer.json()
        tokens = self.login(username)
        return Trader(self, username, user["userId"], user["accountIds"][0], tokens["accessToken"],
                      tokens["refreshToken"])  # fmt: skip

    def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.client(self.admin_token) as http:
            answer = http.post(path, json=body)
        assert answer.status_code == 200, (path, answer.text)
        found: dict[str, Any] = answer.json()
        return found

    def deposit(self, account: int, asset: str, amount: str) -> None:
        self.admin("/tradex/v1/admin/deposits",
                   {"accountId": account, "asset": asset, "amount": amount})  # fmt: skip

    def log_tail(self) -> str:
        return _log_tail(self.log_dir)


@dataclasses.dataclass
class Trader:
    exchange: Exchange
    username: str
    user_id: int
    account: int
    token: str
    refresh: str

    def http(self) -> httpx.Client:
        return self.exchange.client(self.token)

    def key(self, permissions: list[str] | None = None, **extra: Any) -> ApiKey:
        with self.http() as http:
            answer = http.post("/tradex/v1/apiKeys", json={
                "permissions": permissions or ["read", "trade", "withdraw"], **extra})  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return ApiKey(self.exchange.url, body["apiKey"], body["secretKey"], body["keyId"])


@dataclasses.dataclass
class ApiKey:
    url: str
    key: str
    secret: str
    key_id: str

    def signed(
        self, method: str, path: str, params: dict[str, Any] | None = None,
        timestamp_ms: int | None = None, secret: str | None = None, body: bool = False,
    ) -> httpx.Response:  # fmt: skip
        """A Binance-style signed request (params in the query, or the form body)."""
        values = dict(params or {})
        values.setdefault("timestamp", timestamp_ms or int(time.time() * 1000))
        query = urlencode(values)
        signature = hmac.new((secret or self.secret).encode(), query.encode(), hashlib.sha256)
        query += f"&signature={signature.hexdigest()}"
        headers = {"X-MBX-APIKEY": self.key}
        with httpx.Client(base_url=self.url, timeout=30) as http:
            if body:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                return http.request(method, path, content=query, headers=headers)
            return http.request(method, f"{path}?{query}", headers=headers)


def _env(log_dir: Path) -> dict[str, str]:
    """The API's settings for the tests (the exchange's own come from its settings)."""
    return dict(
        TRADEX_API_MASTER_KEY_PATH=str(log_dir / "master.key"),
        TRADEX_API_ARGON2_TIME_COST="1",
        TRADEX_API_ARGON2_MEMORY_KIB="8192",
        TRADEX_API_READ_WEIGHT_PER_MIN="1000000",
        TRADEX_API_ORDERS_PER_10S="100000",
        TRADEX_API_AUTH_PER_MIN="100000",
        TRADEX_API_LOGIN_FAILURES_MAX="3",
        TRADEX_API_LOCKOUT_S="60",
        TRADEX_API_WS_QUEUE_MAX="50",
        TRADEX_API_WS_AUTH_CHECK_MS="250",
        # the roles tests leave the mirror behind the log on purpose: this worker's periodic
        # reconcile must not catch it up under them (they start workers of their own)
        TRADEX_API_ROLES_RECONCILE_S="86400",
    )


def _log_tail(log_dir: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n" + path.read_text()[-3000:] for path in sorted(log_dir.iterdir())
    )


def wait_until(check: Any, timeout_s: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)


def start(base: Settings, log_dir: Path) -> Iterator[Exchange]:
    try:
        services, url = start_api_exchange(
            base, log_dir, "q", f"q{uuid.uuid4().hex[:8]}-", f"t_{uuid.uuid4().hex[:12]}",
            PARTITIONS, _env(log_dir), ready_s=START_TIMEOUT_S,
        )  # fmt: skip
    except StackError as exc:
        raise AssertionError(f"{exc}\n{_log_tail(log_dir)}") from exc
    exchange = Exchange(services, url)
    try:
        made = subprocess.run(
            [sys.executable, "-m", "tradex.cli", "api", "create-user", "--username", ADMIN[0],
             "--roles", "admin"], input=ADMIN[1] + "\n", env=exchange.env, capture_output=True,
            text=True, timeout=120, cwd=REPO_ROOT,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        exchange.admin_token = exchange.login(*ADMIN)["accessToken"]
        exchange.admin("/tradex/v1/admin/assets", {"code": "BTC", "scale": 8})
        exchange.admin("/tradex/v1/admin/assets", {"code": "USD", "scale": 2})
        exchange.admin("/tradex/v1/admin/instruments", {
            "symbol": "BTC-USD", "tickSize": TICK, "stepSize": LOT, "minNotional": "10",
            "priceBandBps": 0, "makerFeePpm": 1_000, "takerFeePpm": 2_000,
        })  # fmt: skip
        with exchange.client() as http:
            wait_until(lambda: http.get("/api/v3/exchangeInfo").json().get("symbols"),
                       what="BTCUSD in exchangeInfo")  # fmt: skip
        yield exchange
    finally:
        stop(exchange, base)


def stop(exchange: Exchange, base: Settings) -> None:
    exchange.services.stop()
    discard(base, exchange.settings)
