"""The ops screens in a real browser (tests/console: the seeded exchange, Chromium, a
fresh context per test): the operator creates an asset and an instrument, halts and resumes
it, deposits; approves a withdrawal another user requested and is refused on their own with
the reason shown; an admin changes another user's roles (their own row cannot be sent, and
the server refuses it anyway); the auditor sees another account's balances as of a past time
and the verify/checkpoint status, and has nothing to change. Each test makes its own users."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from playwright.sync_api import Page, expect

from tests.console import axe
from tests.console.conftest import Console, PageAs
from tests.console.seed import ConsoleUser
from tests.queries.exchange import PASSWORD, Exchange, Trader, wait_until

pytestmark = pytest.mark.integration

WAIT_MS = 30_000  # what the read models show follows the log (a loaded machine: seconds)


def _user(console: Console, prefix: str, roles: list[str]) -> dict[str, Any]:
    """A user of the test's own, known to ``page_as`` by its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    made = console.exchange.admin("/tradex/v1/admin/users",
                                  {"username": name, "password": PASSWORD, "roles": roles})  # fmt: skip
    accounts = made["accountIds"]
    console.users[name] = ConsoleUser(name, PASSWORD, made["userId"], tuple(sorted(roles)),
                                      accounts[0] if accounts else None)  # fmt: skip
    return made


def _trader(console: Console, prefix: str) -> Trader:
    trader = console.exchange.register(prefix)
    console.users[trader.username] = ConsoleUser(trader.username, PASSWORD, trader.user_id,
                                                 ("trader",), trader.account)  # fmt: skip
    return trader


def _said(page: Page, role: Literal["status", "alert"], text: str) -> None:
    expect(page.get_by_role(role).filter(has_text=text)).to_be_visible(timeout=WAIT_MS)


def test_operator_creates_halts_resumes_and_deposits(console: Console, page_as: PageAs) -> None:
    operator = _user(console, "op", ["admin"])
    trader = _trader(console, "dep")
    page = page_as(operator["username"], "operator/assets")
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
    expect(row).to_contain_text("TRADING", timeout=WAIT_MS)
    row.get_by_role("button", name=f"Halt {symbol}").click()
    _said(page, "status", f"{symbol} halted")
    expect(row).to_contain_text("HALTED", timeout=WAIT_MS)
    row.get_by_role("button", name=f"Resume {symbol}").click()
    _said(page, "status", f"{symbol} resumed")
    expect(row).to_contain_text("TRADING", timeout=WAIT_MS)
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


def _request(exchange: Exchange, token: str, amount: str) -> str:
    with exchange.client(token) as http:
        answer = http.post("/tradex/v1/withdrawals", json={"asset": "USD", "amount": amount})
    assert answer.status_code == 200, answer.text
    withdrawal_id: str = answer.json()["withdrawalId"]
    return withdrawal_id


def test_operator_approves_anothers_withdrawal_and_is_refused_their_own(
    console: Console, page_as: PageAs
) -> None:
    exchange = console.exchange
    checker = _user(console, "checker", ["admin", "trader"])
    exchange.deposit(checker["accountIds"][0], "USD", "30")
    own_id = _request(exchange, exchange.login(checker["username"])["accessToken"], "3")
    trader = _trader(console, "asker")
    exchange.deposit(trader.account, "USD", "40")
    trader_page = page_as(trader.username, "withdrawals")
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
    page = page_as(checker["username"], "operator/withdrawals")
    queue = page.get_by_role("table", name="Withdrawal requests")
    theirs = queue.get_by_role("row").filter(has_text=asked_id)
    mine = queue.get_by_role("row").filter(has_text=own_id)
    for _ in range(20):  # the read model follows the log a moment later
        if theirs.count() and mine.count():
            break
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(500)
    expect(theirs).to_contain_text(trader.username, timeout=WAIT_MS)
    expect(mine).to_contain_text(checker["username"], timeout=WAIT_MS)
    headers = queue.get_by_role("columnheader")
    expect(headers.filter(has_text="Requested by")).to_have_count(1)
    expect(headers.filter(has_text="Decided by")).to_have_count(1)
    mine.get_by_role("button", name="Approve").click()
    alert = page.get_by_role("alert").filter(has_text="Refused")
    expect(alert).to_contain_text("MAKER_CHECKER", timeout=WAIT_MS)
    expect(alert).to_contain_text("another admin must approve or reject it", timeout=WAIT_MS)
    theirs.get_by_role("button", name="Approve").click()
    _said(page, "status", f"Approved {asked_id}: PAID")
    decided = (
        page.get_by_role("table", name="Decided withdrawals")
        .get_by_role("row")
        .filter(has_text=asked_id)
    )
    expect(decided).to_contain_text("PAID", timeout=WAIT_MS)
    expect(decided).to_contain_text(
        f"{checker['username']} (#{checker['userId']})", timeout=WAIT_MS
    )
    expect(decided).to_contain_text(trader.username, timeout=WAIT_MS)
    expect(mine).to_contain_text(
        "REQUESTED", timeout=WAIT_MS
    )  # the refused decision changed nothing
    trader_page.get_by_role("button", name="Refresh").click()
    row = (
        trader_page.get_by_role("table", name="Your withdrawals")
        .get_by_role("row")
        .filter(has_text=asked_id)
    )
    expect(row).to_contain_text("PAID", timeout=WAIT_MS)
    expect(row).to_contain_text(checker["username"], timeout=WAIT_MS)


def _roles_of(console: Console, user_id: int) -> list[str]:
    """The user's roles as the server has them (GET /tradex/v1/admin/users)."""
    exchange = console.exchange
    with exchange.client(exchange.admin_token) as http:
        answer = http.get("/tradex/v1/admin/users")
    assert answer.status_code == 200, answer.text
    found = [u["roles"] for u in answer.json() if u["userId"] == user_id]
    assert len(found) == 1, (user_id, found)
    roles: list[str] = found[0]
    return roles


def test_admin_changes_anothers_roles_and_cannot_submit_their_own(
    console: Console, page_as: PageAs
) -> None:
    exchange = console.exchange
    admin = _user(console, "roler", ["admin"])
    other = _user(console, "roled", ["trader"])
    name = other["username"]
    before = exchange.login(name)["accessToken"]
    page = page_as(admin["username"], "operator/users")
    users = page.get_by_role("table", name="Users")
    mine = users.get_by_role("row").filter(has_text=admin["username"])
    expect(mine.get_by_role("button", name=f"Edit roles of {admin['username']}")).to_be_disabled()
    expect(mine).to_contain_text("yours: another admin changes them")
    theirs = users.get_by_role("row").filter(has_text=name)
    edit = theirs.get_by_role("button", name=f"Edit roles of {name}")
    edit.click()
    form = page.get_by_role("form", name=f"Roles of {name}")
    expect(form.get_by_label("trader")).to_be_focused()  # the keyboard lands in the editor
    found = axe.violations(page)
    assert found == [], f"the roles editor:\n{axe.report(found)}"
    form.get_by_role("button", name="Save roles").click()  # nothing ticked differently
    _said(page, "alert", "nothing to change")
    form.get_by_label("trader").uncheck()
    form.get_by_label("auditor").check()
    form.get_by_role("button", name="Save roles").click()
    _said(page, "status", f"{name} (#{other['userId']}) now has auditor; their sessions ended, "
                          "so they must log in again")  # fmt: skip
    expect(theirs.get_by_role("cell").nth(2)).to_have_text("auditor", timeout=WAIT_MS)
    assert _roles_of(console, other["userId"]) == ["auditor"]
    with exchange.client(before) as http:  # the session they had ended
        assert http.get("/tradex/v1/me").status_code == 401
    form.get_by_label("auditor").uncheck()  # no roles at all is a change too
    form.get_by_role("button", name="Save roles").click()
    _said(page, "status", f"{name} (#{other['userId']}) now has no roles")
    expect(theirs.get_by_role("cell").nth(2)).to_have_text("none", timeout=WAIT_MS)
    assert _roles_of(console, other["userId"]) == []
    page.keyboard.press("Escape")  # closes the editor; the focus returns to the row's button
    expect(form).to_have_count(0)
    expect(edit).to_be_focused()
    # the server is the authority: the admin's own change is refused (maker/checker)
    with exchange.client(exchange.login(admin["username"])["accessToken"]) as http:
        refused = http.post("/tradex/v1/admin/users/roles",
                            json={"userId": admin["userId"], "roles": ["admin", "auditor"]},
                            headers={"Idempotency-Key": f"own-{uuid.uuid4().hex}"})  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "MAKER_CHECKER"
    assert _roles_of(console, admin["userId"]) == ["admin"]


def _usd(trader: Trader) -> str | None:
    with trader.http() as http:
        rows = http.get("/tradex/v1/balances").json()["balances"]
    return next((b["total"] for b in rows if b["asset"] == "USD"), None)


def test_auditor_sees_as_of_balances_and_the_status_and_changes_nothing(
    console: Console, page_as: PageAs
) -> None:
    exchange = console.exchange
    auditor = _user(console, "aud", ["auditor"])
    trader = _trader(console, "audited")
    exchange.deposit(trader.account, "USD", "100")
    wait_until(lambda: _usd(trader) == "100.00", what="the first deposit in the read model")
    time.sleep(1.1)
    between = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    time.sleep(1.1)
    exchange.deposit(trader.account, "USD", "23.45")
    wait_until(lambda: _usd(trader) == "123.45", what="the second deposit in the read model")
    page = page_as(auditor["username"], f"auditor/{trader.account}")
    expect(page.get_by_role("region", name="Audit verify", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="Checkpoints", exact=True)).to_contain_text(
        "Checkpoints on the log", timeout=WAIT_MS
    )
    balances = page.get_by_role("table", name="Balances", exact=True)
    expect(balances.get_by_role("row").filter(has_text="USD")).to_contain_text(
        "123.45", timeout=WAIT_MS
    )
    page.get_by_label("As of (UTC)").fill(between)
    page.get_by_role("button", name="Show", exact=True).click()
    expect(balances).to_contain_text(f"as of {between.replace('T', ' ')} UTC", timeout=WAIT_MS)
    usd = balances.get_by_role("row").filter(has_text="USD")
    expect(usd).to_contain_text("100.00", timeout=WAIT_MS)
    expect(usd).not_to_contain_text("123.45")
    # nothing to change: no operator screen, no decision buttons, the API refuses
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Auditor")).to_be_visible()
    expect(nav.get_by_role("link", name="Operator")).to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    console.goto(page, "operator")
    expect(page.get_by_role("main")).to_contain_text(
        "Your roles do not give access to Operator", timeout=WAIT_MS
    )
    with exchange.client(exchange.login(auditor["username"])["accessToken"]) as http:
        refused = http.post("/tradex/v1/admin/deposits",
                            json={"accountId": trader.account, "asset": "USD", "amount": "1"})  # fmt: skip
    assert refused.status_code == 403
