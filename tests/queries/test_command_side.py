"""Issue 11's command side through the API, on the real stack: the admin recorded on
deposits, maker/checker decided (and recorded) by the account processor, amend and
cancel-all in both dialects."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.commands.support import read_events, read_log
from tests.queries.exchange import (
    ADMIN,
    PARTITIONS,
    PASSWORD,
    REPO_ROOT,
    Exchange,
    wait_until,
)
from tradex.commands.reference_client import ReferenceClient
from tradex.domain import (
    AmendSettled,
    ChangeUserRoles,
    CommandRejected,
    Deposited,
    OrderAmended,
    Reason,
    ReferenceCommandRejected,
    UserRolesChanged,
)
from tradex.infra.exchange import free_port
from tradex.log.source import KafkaLog
from tradex.log.topics import REFERENCE_EVENTS

pytestmark = pytest.mark.integration


def test_deposits_record_the_admin_and_the_processor_refuses_the_maker(exchange: Exchange) -> None:
    admin_id = exchange.login(*ADMIN)["userId"]
    name = f"maker-{uuid.uuid4().hex[:6]}"
    maker = exchange.admin("/tradex/v1/admin/users",
                           {"username": name, "password": PASSWORD, "roles": ["admin", "trader"]})  # fmt: skip
    (account,) = maker["accountIds"]
    with exchange.client(exchange.admin_token) as http:
        answer = http.post("/tradex/v1/admin/deposits", json={
            "accountId": account, "asset": "USD", "amount": "500"},
            headers={"Idempotency-Key": f"dep-{name}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    (deposited,) = wait_until(
        lambda: [e for e in _events_of_account(exchange, account) if isinstance(e, Deposited)],
        what="the deposit on the log",
    )
    assert deposited.actor == admin_id  # who credited the account, on the log
    token = exchange.login(name)["accessToken"]
    with exchange.client(token) as http:
        answer = http.post("/tradex/v1/withdrawals", json={"asset": "USD", "amount": "10"},
                           headers={"Idempotency-Key": "wd-own"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        decide = {"accountId": account, "withdrawalId": answer.json()["withdrawalId"]}
        own = http.post("/tradex/v1/admin/withdrawals/approve", json=decide,
                        headers={"Idempotency-Key": "approve-own"})  # fmt: skip
    assert own.status_code == 403, own.text
    assert own.json()["error"] == "MAKER_CHECKER"
    # the account processor refused it, and the log says who tried and why
    (refused,) = [e for e in _events_of_account(exchange, account)
                  if isinstance(e, CommandRejected)]  # fmt: skip
    assert (refused.reason, refused.command_type, refused.actor) == (
        Reason.MAKER_CHECKER, "ApproveWithdrawal", maker["userId"],
    )  # fmt: skip
    paid = exchange.admin("/tradex/v1/admin/withdrawals/approve", decide)
    assert paid["status"] == "PAID"


def _events_of_account(exchange: Exchange, account: int) -> list[Any]:
    return [
        logged.event
        for partition in range(PARTITIONS)
        for logged in read_events(exchange.settings, partition)
        if logged.event.account_id == account
    ]


def _limit(http: Any, price: str, qty: str) -> dict[str, Any]:
    answer = http.post("/api/v3/order", params={
        "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": qty, "price": price})  # fmt: skip
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_amend_and_cancel_all_in_both_dialects(exchange: Exchange) -> None:
    trader = exchange.register("amender")
    exchange.deposit(trader.account, "USD", "1000")
    with trader.http() as http:
        wait_until(lambda: http.get("/api/v3/account").json()["balances"], what="the deposit")
        first = _limit(http, "1000", "0.1")  # 100 USD (+ fee bound) held
        second = _limit(http, "1000", "0.1")
        _limit(http, "1000", "0.1")

        # TradeX: price and quantity; the hold grows first (the amend is on the log)
        amended = http.post("/tradex/v1/orders/amend", params={
            "symbol": "BTC-USD", "orderId": first["orderId"], "price": "1500", "quantity": "0.2"})  # fmt: skip
        assert amended.status_code == 200, amended.text
        body = amended.json()["amendedOrder"]
        assert (body["price"], body["origQty"]) == ("1500", "0.200")
        (event,) = [e for e in _events_of_account(exchange, trader.account)
                    if isinstance(e, OrderAmended)]  # fmt: skip
        assert (event.price_bound, event.qty_bound, event.actor) == (150, 200, trader.user_id)
        too_much = http.post("/tradex/v1/orders/amend", params={
            "symbol": "BTC-USD", "orderId": second["orderId"], "quantity": "100"})  # fmt: skip
        assert too_much.status_code == 400, too_much.text
        assert too_much.json()["code"] == -2010
        assert "INSUFFICIENT_FUNDS" in too_much.json()["msg"]

        # Binance: quantity down, priority kept; the engine's AmendApplied reaches the order
        keep = http.put("/api/v3/order/amend/keepPriority", params={
            "symbol": "BTCUSD", "orderId": second["orderId"], "newQty": "0.05"})  # fmt: skip
        assert keep.status_code == 200, keep.text
        assert keep.json()["amendedOrder"]["origQty"] == "0.050"
        up = http.put("/api/v3/order/amend/keepPriority", params={
            "symbol": "BTCUSD", "orderId": second["orderId"], "newQty": "0.5"})  # fmt: skip
        assert up.status_code == 400, up.text

        def amended_in_read_model() -> dict[str, Any] | None:
            order = http.get("/api/v3/order", params={"symbol": "BTCUSD",
                                                        "orderId": second["orderId"]}).json()  # fmt: skip
            return order if order.get("origQty") == "0.050" else None

        wait_until(amended_in_read_model, what="the engine applied the amend")

        def locked() -> str:
            rows = http.get("/api/v3/account").json()["balances"]
            return str({b["asset"]: b["locked"] for b in rows}.get("USD"))

        # the engine confirmed the smaller quantity: its hold fell at once, not at the end —
        # 0.2 at 1500 + 0.05 at 1000 + 0.1 at 1000, each with the 0.2 % taker fee bound
        # (it was 100.20 for the second order's 0.1 before: 501.00)
        wait_until(lambda: locked() == "450.90", what="the amend's fall released")

        # Binance cancel-all of a symbol: every open order, PENDING_CANCEL
        cancelled = http.delete("/api/v3/openOrders", params={"symbol": "BTCUSD"})
        assert cancelled.status_code == 200, cancelled.text
        assert len(cancelled.json()) == 3
        assert {o["status"] for o in cancelled.json()} == {"PENDING_CANCEL"}
        wait_until(lambda: http.get("/api/v3/openOrders", params={"symbol": "BTCUSD"}).json()
                   == [], what="the orders ended")  # fmt: skip

        def released() -> bool:
            rows = http.get("/api/v3/account").json()["balances"]
            return {b["asset"]: b["locked"] for b in rows}.get("USD") == "0.00"

        wait_until(released, what="every hold released")
        again = http.delete("/api/v3/openOrders", params={"symbol": "BTCUSD"})
        assert again.status_code == 400 and again.json()["code"] == -2011, again.text

        # TradeX cancel-all, no symbol
        ids = {_limit(http, "1000", "0.1")["orderId"], _limit(http, "1000", "0.1")["orderId"]}
        every = http.delete("/tradex/v1/orders")
        assert every.status_code == 200, every.text
        assert set(every.json()["cancelling"]) == ids and every.json()["more"] is False


def test_a_self_trade_prevention_decrement_releases_the_hold_at_once(exchange: Exchange) -> None:
    """Binance's DECREMENT: an order meeting its own account's loses the quantity they would
    have traded, both of them; whichever has none left ends. What the decrement removed
    stops being held as soon as the engine's confirmation is settled, not when the order
    ends."""
    trader = exchange.register("decrement")
    exchange.deposit(trader.account, "USD", "1000")
    exchange.deposit(trader.account, "BTC", "1")
    with trader.http() as http:

        def locked() -> dict[str, Decimal]:
            rows = http.get("/api/v3/account").json()["balances"]
            return {b["asset"]: Decimal(b["locked"]) for b in rows}

        wait_until(lambda: len(locked()) == 2, what="the deposits")

        def order(side: str, qty: str) -> dict[str, Any]:
            answer = http.post("/api/v3/order", params={
                "symbol": "BTCUSD", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                "quantity": qty, "price": "1000", "selfTradePreventionMode": "DECREMENT"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            found: dict[str, Any] = answer.json()
            return found

        sell = order("SELL", "0.3")
        wait_until(lambda: locked()["BTC"] == Decimal("0.3"), what="the sell held")
        # a buy of 0.1 meets the sell: the buy has nothing left (it ends), the sell keeps 0.2
        order("BUY", "0.1")
        wait_until(lambda: locked() == {"BTC": Decimal("0.2"), "USD": 0},
                   what="the maker's decrement released")  # fmt: skip
        # a buy of 0.5 meets the sell's 0.2: the sell ends, the buy rests with 0.3 — held
        # for 0.3 at 1000 plus the 0.2 % taker fee bound (0.5 would be 501.00)
        buy = order("BUY", "0.5")
        wait_until(lambda: locked() == {"BTC": 0, "USD": Decimal("300.60")},
                   what="the taker's decrement released")  # fmt: skip
        info = http.get("/api/v3/exchangeInfo").json()["symbols"][0]
        assert "DECREMENT" in info["allowedSelfTradePreventionModes"]
        assert buy["selfTradePreventionMode"] == "DECREMENT"  # the account's answer

        def read_back() -> dict[str, Any] | None:
            found: dict[str, Any] = http.get("/api/v3/order", params={
                "symbol": "BTCUSD", "orderId": buy["orderId"]}).json()  # fmt: skip
            return found if found.get("status") == "NEW" else None

        assert wait_until(read_back, what="the buy in the read model")[
            "selfTradePreventionMode"] == "DECREMENT"  # fmt: skip
    events = _events_of_account(exchange, trader.account)
    assert not [e for e in events if isinstance(e, CommandRejected)], events
    assert [e.order_id for e in events if isinstance(e, AmendSettled)] == [
        sell["orderId"],
        buy["orderId"],
    ]
    assert all(e.amend_time_ns < 0 for e in events if isinstance(e, AmendSettled))


def _reference_events(exchange: Exchange) -> list[Any]:
    settings = exchange.settings
    with KafkaLog(settings) as log:
        partitions = log.partitions(REFERENCE_EVENTS)
    return [
        logged.event
        for p in range(partitions)
        for logged in read_log(settings, REFERENCE_EVENTS, p)
    ]


def test_roles_change_on_the_log_and_end_the_users_sessions(exchange: Exchange) -> None:
    admin_id = exchange.login(*ADMIN)["userId"]
    name = f"aud-{uuid.uuid4().hex[:6]}"
    user = exchange.admin("/tradex/v1/admin/users",
                          {"username": name, "password": PASSWORD, "roles": ["trader"]})  # fmt: skip
    before = exchange.login(name)
    assert before["roles"] == ["trader"]
    with exchange.client(before["accessToken"]) as http:
        assert http.get("/tradex/v1/audit/accounts").status_code == 403
        # a trader cannot change roles, not even their own
        denied = http.post("/tradex/v1/admin/users/roles",
                           json={"userId": user["userId"], "roles": ["admin", "trader"]})  # fmt: skip
        assert denied.status_code == 403 and denied.json()["error"] == "FORBIDDEN", denied.text
    changed = exchange.admin("/tradex/v1/admin/users/roles",
                             {"userId": user["userId"], "roles": ["trader", "auditor"]})  # fmt: skip
    assert changed["event"] == "UserRolesChanged"
    assert (changed["detail"]["roles"], changed["detail"]["actor"]) == ("auditor,trader", admin_id)
    # the old session ended: its access and refresh tokens no longer work
    with exchange.client(before["accessToken"]) as http:
        assert http.get("/tradex/v1/accounts").status_code == 401
        again = http.post("/tradex/v1/auth/refresh", json={"refreshToken": before["refreshToken"]})
        assert again.status_code == 401, again.text
    after = exchange.login(name)
    assert after["roles"] == ["auditor", "trader"]
    with exchange.client(after["accessToken"]) as http:
        assert http.get("/tradex/v1/audit/accounts").status_code == 200
    with exchange.client(exchange.admin_token) as http:
        listed = {u["userId"]: u for u in http.get("/tradex/v1/admin/users").json()}
        assert listed[user["userId"]]["roles"] == ["auditor", "trader"]
        # an admin cannot change their own roles: refused on the log (maker/checker)
        own = http.post("/tradex/v1/admin/users/roles",
                        json={"userId": admin_id, "roles": ["admin", "auditor"]})  # fmt: skip
        assert own.status_code == 403 and own.json()["error"] == "MAKER_CHECKER", own.text
        unknown = http.post("/tradex/v1/admin/users/roles", json={"userId": 987_654, "roles": []})
        assert unknown.status_code == 404, unknown.text
        logged = len(_reference_events(exchange))
        bad = http.post("/tradex/v1/admin/users/roles",
                        json={"userId": user["userId"], "roles": ["root"]})  # fmt: skip
        assert bad.status_code == 422 and "roles" in bad.text, bad.text
        listed = {u["userId"]: u for u in http.get("/tradex/v1/admin/users").json()}
        assert listed[admin_id]["roles"] == ["admin"]
    events = _reference_events(exchange)
    assert len(events) == logged  # the malformed request wrote nothing
    (logged_change,) = [e for e in events if isinstance(e, UserRolesChanged)
                        and e.user.user_id == user["userId"]]  # fmt: skip
    assert (logged_change.user.roles, logged_change.actor) == ("auditor,trader", admin_id)
    (self_change,) = [e for e in events if isinstance(e, ReferenceCommandRejected)
                      and e.command_type == "ChangeUserRoles" and e.reason == Reason.MAKER_CHECKER]  # fmt: skip
    assert f"user {admin_id} cannot change their own roles" in self_change.detail
    # the operator's command line: actor 0 on the log
    done = subprocess.run(
        [sys.executable, "-m", "tradex.cli", "api", "set-roles", "--username", name,
         "--roles", "trader"], env=exchange.env, capture_output=True, text=True, timeout=120,
        cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert exchange.login(name)["roles"] == ["trader"]
    last = [e for e in _reference_events(exchange) if isinstance(e, UserRolesChanged)][-1]
    assert (last.user.user_id, last.user.roles, last.actor) == (user["userId"], "trader", 0)
    nobody = subprocess.run(
        [sys.executable, "-m", "tradex.cli", "api", "set-roles", "--username", "no-such-user",
         "--roles", "trader"], env=exchange.env, capture_output=True, text=True, timeout=120,
        cwd=REPO_ROOT,
    )  # fmt: skip
    assert nobody.returncode == 1 and "no user named" in nobody.stderr


def _trader_whose_role_change_is_only_on_the_log(
    exchange: Exchange, prefix: str
) -> tuple[dict[str, Any], str, str]:
    """A trader, logged in, then given ``auditor,trader`` straight on the log (as a crash
    between the log and the mirror leaves it): (the user, the username, the stale token)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    user = exchange.admin("/tradex/v1/admin/users",
                          {"username": name, "password": PASSWORD, "roles": ["trader"]})  # fmt: skip
    stale = exchange.login(name)["accessToken"]
    with ReferenceClient(exchange.settings, name=f"t-roles-{prefix}") as client:
        outcome = client.execute(ChangeUserRoles(f"crash-{name}", time.time_ns(),
                                                 user["userId"], "auditor,trader", 0))  # fmt: skip
    assert isinstance(outcome.events[0], UserRolesChanged)
    return user, name, stale


@contextlib.contextmanager
def _api_worker(exchange: Exchange, log_path: Path, **env: str) -> Iterator[None]:
    """A second API worker of the exchange (its output in ``log_path``), healthy, stopped
    after the block."""
    port = free_port()
    environment = dict(exchange.env, TRADEX_API_PORT=str(port), **env)
    with log_path.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "tradex.cli", "run", "api", "--port",
                                   str(port)], env=environment, stdout=out,
                                  stderr=subprocess.STDOUT, cwd=REPO_ROOT)  # fmt: skip
    try:
        wait_until(lambda: _healthy(f"http://127.0.0.1:{port}"), timeout_s=60,
                   what="a second API worker")  # fmt: skip
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _mirror_caught_up(exchange: Exchange, name: str, stale: str) -> None:
    with exchange.client(stale) as http:
        assert http.get("/tradex/v1/accounts").status_code == 401  # its session ended
    assert exchange.login(name)["roles"] == ["auditor", "trader"]


def test_a_worker_starting_mirrors_the_roles_the_log_has(exchange: Exchange, tmp_path: Any) -> None:
    """A process that died between writing a role change to the log and mirroring it in
    the auth schema (here: the change written straight to the log, as such a crash leaves
    it) left the mirror behind, and tokens carry the mirror: the next API worker to start
    makes the mirror the log's and ends the user's sessions."""
    _user, name, stale = _trader_whose_role_change_is_only_on_the_log(exchange, "late")
    assert exchange.login(name)["roles"] == ["trader"]  # the mirror is behind the log
    with _api_worker(exchange, tmp_path / "api.log"):
        pass
    assert (
        "roles trader -> auditor,trader, as the log has them" in (tmp_path / "api.log").read_text()
    )
    _mirror_caught_up(exchange, name, stale)


def test_a_running_worker_catches_the_mirror_up_with_the_log(
    exchange: Exchange, tmp_path: Any
) -> None:
    """The same crash while workers run: a worker that reconciles every second (here;
    every minute by default) makes the mirror the log's without a restart."""
    log_path = tmp_path / "api.log"
    with _api_worker(exchange, log_path, TRADEX_API_ROLES_RECONCILE_S="1"):
        user, name, stale = _trader_whose_role_change_is_only_on_the_log(exchange, "running")
        caught_up = f"user {user['userId']}: roles trader -> auditor,trader, as the log has them"
        wait_until(lambda: caught_up in log_path.read_text(), timeout_s=30,
                   what="the running worker caught the mirror up")  # fmt: skip
    _mirror_caught_up(exchange, name, stale)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
