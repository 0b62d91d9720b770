"""The console's shell in the browser, and the test infrastructure's own promises: the
seeded session logs a user in, the navigation follows the roles, JavaScript errors fail a
test."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.conftest import Console, PageAs, PageErrors

pytestmark = pytest.mark.integration


def test_logged_out_the_header_offers_log_in_and_register(page_as: PageAs) -> None:
    page = page_as(None)
    header = page.locator("header.top")
    expect(header.get_by_role("link", name="Log in")).to_be_visible()
    expect(header.get_by_role("link", name="Register")).to_be_visible()
    expect(header.get_by_role("button", name="Log out")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Markets")


@pytest.mark.parametrize(
    ("user", "shown", "hidden"),
    [
        ("alice", ["Markets", "Orders", "Balances", "Withdrawals", "API keys"], ["Operator", "Auditor"]),
        ("operator", ["Orders", "Balances", "Operator", "Auditor"], []),
        ("auditor", ["Markets", "Auditor"], ["Orders", "Balances", "Operator"]),
    ],
)  # fmt: skip
def test_a_seeded_session_logs_in_and_the_menu_follows_the_roles(
    page_as: PageAs, user: str, shown: list[str], hidden: list[str]
) -> None:
    page = page_as(user)
    expect(page.locator("header.top .user")).to_contain_text(user)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for title in shown:
        expect(nav.get_by_role("link", name=title, exact=True)).to_be_visible()
    for title in hidden:
        expect(nav.get_by_role("link", name=title, exact=True)).to_have_count(0)


def test_log_out_ends_the_session_and_a_reload_stays_logged_out(
    console: Console, page_as: PageAs
) -> None:
    page = page_as("bob", "balances")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("header.top").get_by_role("link", name="Log in")).to_be_visible()
    page.reload()
    expect(page.locator("header.top").get_by_role("link", name="Log in")).to_be_visible()
    stored = page.evaluate("sessionStorage.getItem('tradex.console.session')")
    assert stored is None


def test_an_uncaught_error_or_console_error_is_caught(
    page_as: PageAs, page_errors: PageErrors
) -> None:
    page = page_as(None)
    page.evaluate("setTimeout(() => { throw new Error('boom-uncaught'); }, 0)")
    page.evaluate("console.error('boom-logged')")
    page.wait_for_timeout(200)
    assert any("boom-uncaught" in e for e in page_errors.unexpected()), page_errors.found
    assert any("boom-logged" in e for e in page_errors.unexpected()), page_errors.found
    page_errors.allow("boom-logged")
    assert [e for e in page_errors.unexpected() if "boom" in e] == [
        next(e for e in page_errors.found if "boom-uncaught" in e)
    ]
    page_errors.found.clear()  # expected here: the fixture would fail this test otherwise
