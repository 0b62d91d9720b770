"""The ops screens of the console in a real browser (Playwright driving Debian's chromium)
against the real API on the real stack: the operator creates an asset and an instrument,
halts and resumes it, deposits; approves a withdrawal another user requested and is refused
on their own with the reason shown; the auditor sees another account's balances as of a
past time and the verify/checkpoint status, and has nothing to change.

The browser is logged in by putting the API's tokens where the console keeps its session
(the login screen is another helper's, tested there)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.queries.exchange import PASSWORD, Exchange, Trader, wait_until

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
SESSION_KEY = "tradex.console.session"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield found
        found.close()


def _page(
    browser: Browser, exchange: Exchange, username: str, hash_path: str
) -> tuple[Page, list[str]]:
    """A page logged in as ``username`` (its session where the console keeps it), and the
    script errors it raises."""
    tokens = exchange.login(username)
    with exchange.client(tokens["accessToken"]) as http:
        me = http.get("/tradex/v1/me").json()
    session = {"user": me, "accessToken": tokens["accessToken"], "refreshToken": tokens["refreshToken"],
               "expiresAt": int(time.time() * 1000) + tokens["expiresIn"] * 1000}  # fmt: skip
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
    context.add_init_script(
        f"sessionStorage.setItem({json.dumps(SESSION_KEY)}, {json.dumps(json.dumps(session))});"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{exchange.url}/console/#{hash_path}")
    return page, errors


def _said(page: Page, role: Literal["status", "alert"], text: str) -> None:
    expect(page.get_by_role(role).filter(has_text=text)).to_be_visible()


def _user(exchange: Exchange, prefix: str, roles: list[str]) -> dict[str, Any]:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    return exchange.admin(
        "/tradex/v1/admin/users", {"username": name, "password": PASSWORD, "roles": roles}
    )


def test_operator_creates_halts_resumes_and_deposits(browser: Browser, exchange: Exchange) -> None:
    operator = _user(exchange, "op", ["admin"])
    trader = exchange.register("dep")
    page, errors = _page(browser, exchange, operator["username"], "/operator/assets")
    code = f"C{uuid.uuid4().hex[:5].upper()}"
    page.get_by_label("Code").fill(code)
    page.get_by_label("Scale (decimals)").fill("4")
    page.get_by_role("button", name="Create asset").click()
    _said(page, "status", f"Created {code} with 4 decimals")
    expect(page.get_by_role("table", name="Assets").get_by_role("row", name=code)).to_be_visible()
    page.get_by_role("link", name="Instruments").click()
    page.get_by_label("Base asset").select_option(code)
    page.get_by_label("Quote asset").select_option("USD")
    page.get_by_label("Tick size").fill("0.1")
    page.get_by_label("Step size").fill("0.1")
    page.get_by_label("Min notional").fill("1")
    page.get_by_role("button", name="Create instrument").click()
    symbol = f"{code}-USD"
    _said(page, "status", f"Created {symbol}")
    row = page.get_by_role("table", name="Instruments").get_by_role("row").filter(has_text=symbol)
    expect(row).to_contain_text("TRADING")
    row.get_by_role("button", name=f"Halt {symbol}").click()
    _said(page, "status", f"{symbol} halted")
    expect(row).to_contain_text("HALTED")
    row.get_by_role("button", name=f"Resume {symbol}").click()
    _said(page, "status", f"{symbol} resumed")
    expect(row).to_contain_text("TRADING")
    page.get_by_role("link", name="Deposits").click()
    page.get_by_label("Account").fill(str(trader.account))
    page.get_by_label("Asset").select_option("USD")
    page.get_by_label("Amount").fill("12.345")  # more decimals than USD has: refused here
    page.get_by_role("button", name="Deposit").click()
    _said(page, "alert", "at most 2 decimals")
    page.get_by_label("Amount").fill("12.34")
    page.get_by_role("button", name="Deposit").click()
    _said(page, "status", f"Deposited 12.34 USD to account {trader.account}")
    with trader.http() as http:
        usd = [b for b in http.get("/tradex/v1/balances").json()["balances"] if b["asset"] == "USD"]
    assert usd == [{"asset": "USD", "free": "12.34", "locked": "0.00", "total": "12.34"}]
    assert errors == []


def _request(exchange: Exchange, token: str, amount: str) -> str:
    with exchange.client(token) as http:
        answer = http.post("/tradex/v1/withdrawals", json={"asset": "USD", "amount": amount})
    assert answer.status_code == 200, answer.text
    withdrawal_id: str = answer.json()["withdrawalId"]
    return withdrawal_id


def test_operator_approves_anothers_withdrawal_and_is_refused_their_own(
    browser: Browser, exchange: Exchange
) -> None:
    checker = _user(exchange, "checker", ["admin", "trader"])
    exchange.deposit(checker["accountIds"][0], "USD", "30")
    own_id = _request(exchange, exchange.login(checker["username"])["accessToken"], "3")
    trader = exchange.register("asker")
    exchange.deposit(trader.account, "USD", "40")
    trader_page, trader_errors = _page(browser, exchange, trader.username, "/withdrawals")
    trader_page.get_by_label("Asset").select_option("USD")
    trader_page.get_by_label("Amount").fill("40.01")
    _said(trader_page, "alert", "More than available (40.00)")
    trader_page.get_by_label("Amount").fill("7.5")
    trader_page.get_by_role("button", name="Request withdrawal").click()
    _said(trader_page, "status", "Requested 7.50 USD")
    said = trader_page.get_by_role("status").filter(has_text="Requested").inner_text()
    found = re.search(r"wd-[A-Za-z0-9-]+", said)
    assert found is not None, said
    asked_id = found.group(0)
    page, errors = _page(browser, exchange, checker["username"], "/operator/withdrawals")
    queue = page.get_by_role("table", name="Withdrawal requests")
    theirs = queue.get_by_role("row").filter(has_text=asked_id)
    mine = queue.get_by_role("row").filter(has_text=own_id)
    for _ in range(20):  # the read model follows the log a moment later
        if theirs.count() and mine.count():
            break
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(500)
    expect(theirs).to_contain_text(trader.username)
    expect(mine).to_contain_text(checker["username"])
    headers = queue.get_by_role("columnheader")
    expect(headers.filter(has_text="Requested by")).to_have_count(1)
    expect(headers.filter(has_text="Decided by")).to_have_count(1)
    mine.get_by_role("button", name="Approve").click()
    alert = page.get_by_role("alert").filter(has_text="Refused")
    expect(alert).to_contain_text("MAKER_CHECKER")
    expect(alert).to_contain_text("another admin must approve or reject it")
    theirs.get_by_role("button", name="Approve").click()
    _said(page, "status", f"Approved {asked_id}: PAID")
    decided = (
        page.get_by_role("table", name="Decided withdrawals")
        .get_by_role("row")
        .filter(has_text=asked_id)
    )
    expect(decided).to_contain_text("PAID")
    expect(decided).to_contain_text(f"{checker['username']} (#{checker['userId']})")
    expect(decided).to_contain_text(trader.username)
    expect(mine).to_contain_text("REQUESTED")  # the refused decision changed nothing
    trader_page.get_by_role("button", name="Refresh").click()
    row = (
        trader_page.get_by_role("table", name="Your withdrawals")
        .get_by_role("row")
        .filter(has_text=asked_id)
    )
    expect(row).to_contain_text("PAID")
    expect(row).to_contain_text(checker["username"])
    assert errors == trader_errors == []


def _usd(trader: Trader) -> str | None:
    with trader.http() as http:
        rows = http.get("/tradex/v1/balances").json()["balances"]
    return next((b["total"] for b in rows if b["asset"] == "USD"), None)


def test_auditor_sees_as_of_balances_and_the_status_and_changes_nothing(
    browser: Browser, exchange: Exchange
) -> None:
    auditor = _user(exchange, "aud", ["auditor"])
    trader = exchange.register("audited")
    exchange.deposit(trader.account, "USD", "100")
    wait_until(lambda: _usd(trader) == "100.00", what="the first deposit in the read model")
    time.sleep(1.1)
    between = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    time.sleep(1.1)
    exchange.deposit(trader.account, "USD", "23.45")
    wait_until(lambda: _usd(trader) == "123.45", what="the second deposit in the read model")
    page, errors = _page(browser, exchange, auditor["username"], f"/auditor/{trader.account}")
    expect(page.get_by_role("region", name="Audit verify", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="Checkpoints", exact=True)).to_contain_text(
        "Checkpoints on the log"
    )
    balances = page.get_by_role("table", name="Balances", exact=True)
    expect(balances.get_by_role("row").filter(has_text="USD")).to_contain_text("123.45")
    page.get_by_label("As of (UTC)").fill(between)
    page.get_by_role("button", name="Show", exact=True).click()
    expect(balances).to_contain_text(f"as of {between.replace('T', ' ')} UTC")
    usd = balances.get_by_role("row").filter(has_text="USD")
    expect(usd).to_contain_text("100.00")
    expect(usd).not_to_contain_text("123.45")
    # nothing to change: no operator screen, no decision buttons, the API refuses
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Auditor")).to_be_visible()
    expect(nav.get_by_role("link", name="Operator")).to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    page.goto(f"{exchange.url}/console/#/operator")
    expect(page.get_by_role("main")).to_contain_text("Your roles do not give access to Operator")
    with exchange.client(exchange.login(auditor["username"])["accessToken"]) as http:
        refused = http.post("/tradex/v1/admin/deposits",
                            json={"accountId": trader.account, "asset": "USD", "amount": "1"})  # fmt: skip
    assert refused.status_code == 403
    assert errors == []
