"""The console tests' seeded exchange: fixed users, markets and a few orders and one trade.

Everything here is deterministic but the times and ids the processors give (the golden
screenshots mask those): the same users with the same roles and deposits, two
instruments, a book on each and one trade on BTCUSD. The exchange is one per pytest worker
(tests/queries/exchange.py starts it); its PostgreSQL database is its own, so the users'
names are fixed.

    users = seed(exchange)      # {"alice": ConsoleUser, "bob": ..., "operator", "auditor", "admin"}
    carol = new_trader(exchange, "carol", {"USD": "500"})   # a test's own trader, funded
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tests.queries.exchange import ADMIN, PASSWORD, Exchange

# name: (roles, deposits); "admin" is the exchange's own (tradex api create-user)
USERS: dict[str, tuple[list[str], dict[str, str]]] = {
    "alice": (["trader"], {"USD": "100000", "BTC": "2", "ETH": "10"}),
    "bob": (["trader"], {"USD": "50000", "BTC": "5", "ETH": "20"}),
    "operator": (["admin", "trader"], {"USD": "1000"}),
    "auditor": (["auditor"], {}),
}
# the market the seed makes, in order: (user, symbol, side, quantity, price)
ORDERS = (
    ("bob", "BTCUSD", "SELL", "0.500", "60000"),
    ("bob", "BTCUSD", "SELL", "0.250", "60100"),
    ("alice", "BTCUSD", "BUY", "0.200", "59900"),
    ("alice", "BTCUSD", "BUY", "0.100", "60000"),  # takes 0.1 of bob's first: one trade
    ("bob", "ETHUSD", "SELL", "1.50", "3000"),
    ("alice", "ETHUSD", "BUY", "2.00", "2990"),
)
# bob asks the exchange to pay out; the operator's queue shows it
WITHDRAWAL = ("bob", "USD", "250")
ETH_INSTRUMENT = {
    "symbol": "ETH-USD", "tickSize": "1", "stepSize": "0.01", "minNotional": "10",
    "priceBandBps": 0, "makerFeePpm": 1_000, "takerFeePpm": 2_000,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ConsoleUser:
    username: str
    password: str
    user_id: int
    roles: tuple[str, ...]
    account: int | None  # traders' first account

    def tokens(self, exchange: Exchange) -> dict[str, Any]:
        """A fresh login: {accessToken, refreshToken, expiresIn, ...}."""
        return exchange.login(self.username, self.password)


def _make_user(exchange: Exchange, name: str, roles: list[str]) -> ConsoleUser:
    made = exchange.admin("/tradex/v1/admin/users",
                          {"username": name, "password": PASSWORD, "roles": roles})  # fmt: skip
    accounts = made["accountIds"]
    assert ("trader" in roles) == bool(accounts), made
    return ConsoleUser(name, PASSWORD, made["userId"], tuple(sorted(roles)),
                       accounts[0] if accounts else None)  # fmt: skip


def place(exchange: Exchange, token: str, symbol: str, side: str, quantity: str,
          price: str) -> dict[str, Any]:  # fmt: skip
    """A GTC limit order through the API; its acknowledgement."""
    with exchange.client(token) as http:
        answer = http.post("/api/v3/order", params={
            "symbol": symbol, "side": side, "type": "LIMIT", "timeInForce": "GTC",
            "quantity": quantity, "price": price})  # fmt: skip
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def free(exchange: Exchange, token: str) -> dict[str, Decimal]:
    """The account's available balances but zeros (Binance's /api/v3/account `free`)."""
    with exchange.client(token) as http:
        body = http.get("/api/v3/account").json()
    return {b["asset"]: Decimal(b["free"]) for b in body["balances"] if Decimal(b["free"])}


def seed(exchange: Exchange) -> dict[str, ConsoleUser]:
    """Users, the second market, deposits, the orders and the withdrawal; returns when the
    read models show all of it."""
    admin_id = exchange.login(*ADMIN)["userId"]
    users = {"admin": ConsoleUser(ADMIN[0], ADMIN[1], admin_id, ("admin",), None)}
    exchange.admin("/tradex/v1/admin/assets", {"code": "ETH", "scale": 8})
    exchange.admin("/tradex/v1/admin/instruments", ETH_INSTRUMENT)
    for name, (roles, deposits) in USERS.items():
        users[name] = user = _make_user(exchange, name, roles)
        for asset, amount in deposits.items():
            assert user.account is not None, name
            exchange.deposit(user.account, asset, amount)
    tokens = {name: users[name].tokens(exchange)["accessToken"] for name in ("alice", "bob")}
    for name, (_, deposits) in USERS.items():
        if name in tokens:
            wait_equal(functools.partial(free, exchange, tokens[name]),
                       {a: Decimal(v) for a, v in deposits.items()}, f"{name}'s deposits")  # fmt: skip
    with exchange.client() as http:
        wait_equal(lambda: len(http.get("/api/v3/exchangeInfo").json()["symbols"]), 2,
                   "ETHUSD in exchangeInfo")  # fmt: skip
    for name, symbol, side, quantity, price in ORDERS:
        place(exchange, tokens[name], symbol, side, quantity, price)
    who, asset, amount = WITHDRAWAL
    with exchange.client(tokens[who]) as http:
        answer = http.post("/tradex/v1/withdrawals", json={"asset": asset, "amount": amount})
    assert answer.status_code == 200, answer.text
    _wait_market(exchange)
    return users


def wait_equal(read: Callable[[], Any], expected: Any, what: str, timeout_s: float = 60.0) -> None:
    """Until `read()` == `expected`; on a timeout, says what it read last."""
    deadline = time.monotonic() + timeout_s
    while (found := read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {found!r} != {expected!r}")
        time.sleep(0.2)


def _wait_market(exchange: Exchange) -> None:
    """Until the books, the trade and the balances the seed made are in the read models."""
    books = {
        "BTCUSD": ([["59900", "0.200"]], [["60000", "0.400"], ["60100", "0.250"]]),
        "ETHUSD": ([["2990", "2.00"]], [["3000", "1.50"]]),
    }
    with exchange.client() as http:
        for symbol, sides in books.items():

            def book(s: str = symbol) -> tuple[Any, Any]:
                depth = http.get("/api/v3/depth", params={"symbol": s}).json()
                return depth.get("bids"), depth.get("asks")

            # the first run compiles the matcher's kernels (Numba, cached afterwards)
            wait_equal(book, sides, f"the seeded book of {symbol}", timeout_s=300.0)
        wait_equal(lambda: len(http.get("/api/v3/trades", params={"symbol": "BTCUSD"}).json()),
                   1, "the seeded trade")  # fmt: skip
    # settled: alice took 0.1 BTC; bob got 6,000.00 less his 0.1 % maker fee, 250 held
    alice, bob = (exchange.login(name, PASSWORD)["accessToken"] for name in ("alice", "bob"))
    wait_equal(lambda: free(exchange, alice)["BTC"], Decimal("2.1"), "alice's fill")
    wait_equal(lambda: free(exchange, bob)["USD"], Decimal("55744"), "bob's fill")


def new_trader(exchange: Exchange, prefix: str, deposits: dict[str, str]) -> ConsoleUser:
    """A trader of a test's own (a unique name), with its deposits in the read models."""
    trader = exchange.register(prefix)
    for asset, amount in deposits.items():
        exchange.deposit(trader.account, asset, amount)
    expected = {a: Decimal(v) for a, v in deposits.items()}
    wait_equal(functools.partial(free, exchange, trader.token), expected, f"{prefix}'s deposits")
    return ConsoleUser(trader.username, PASSWORD, trader.user_id, ("trader",), trader.account)


def new_market(exchange: Exchange, base: str, scale: int = 8, **rules: Any) -> str:
    """A fresh instrument `base`-USD (its asset made first); its symbol on the wire once
    exchangeInfo lists it. Default rules: tick 1 USD, lot 0.01, min notional 10, fees
    0.1 % maker / 0.2 % taker."""
    exchange.admin("/tradex/v1/admin/assets", {"code": base, "scale": scale})
    exchange.admin("/tradex/v1/admin/instruments", {
        "symbol": f"{base}-USD", "tickSize": "1", "stepSize": "0.01", "minNotional": "10",
        "priceBandBps": 0, "makerFeePpm": 1_000, "takerFeePpm": 2_000, **rules})  # fmt: skip
    symbol = f"{base}USD"
    with exchange.client() as http:

        def listed() -> bool:
            found = http.get("/api/v3/exchangeInfo").json()["symbols"]
            return any(s["symbol"] == symbol for s in found)

        wait_equal(listed, True, f"{symbol} in exchangeInfo")
    return symbol
