"""Accessible basics of every screen, checked by axe-core (WCAG 2.1 A and AA: labels and
names, colour contrast, roles, keyboard-reachable controls) in the real browser; and the
order ticket used with the keyboard alone, its focus always visible."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.console import axe
from tests.console.conftest import Console, PageAs, login_ui
from tests.console.seed import ConsoleUser
from tests.queries.exchange import PASSWORD

pytestmark = pytest.mark.integration

# (user, route, what must be on screen before the check)
SCREENS = [
    (None, "markets", "table"),
    (None, "login", "form"),
    (None, "register", "form"),
    ("alice", "trade/BTCUSD", "[data-ws-state='live']"),
    ("alice", "orders", "table"),
    ("alice", "balances", "table"),
    ("alice", "withdrawals", "form"),
    ("alice", "keys", "form"),
    ("operator", "operator", "table"),
    ("operator", "operator/users", "table tbody tr"),
    ("auditor", "auditor", "table"),
]


def _settled(page: Page, selector: str) -> None:
    page.locator(selector).first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize(("user", "route", "ready"), SCREENS, ids=[s[1] for s in SCREENS])
def test_every_screen_passes_axe_wcag_a_and_aa(
    page_as: PageAs, user: str | None, route: str, ready: str
) -> None:
    page = page_as(user, route)
    _settled(page, ready)
    found = axe.violations(page)
    assert found == [], f"#/{route} as {user}:\n{axe.report(found)}"


def _focus_visible(page: Page) -> bool:
    """Whether the focused element draws a focus indicator (outline or box-shadow)."""
    shown: bool = page.evaluate(
        "() => { const e = document.activeElement; if (!e || e === document.body) return false;"
        " const s = getComputedStyle(e); return (s.outlineStyle !== 'none' &&"
        " parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'; }"
    )
    return shown


def test_the_order_ticket_works_from_the_keyboard_with_visible_focus(
    console: Console, page_as: PageAs
) -> None:
    """A trader fills and sends an order with the keyboard alone; every control of the
    ticket is reached with Tab and shows its focus."""
    trader = console.exchange.register("kbd")
    console.exchange.deposit(trader.account, "USD", "1000")
    page = page_as(None, "login")
    login_ui(page, ConsoleUser(trader.username, PASSWORD, trader.user_id, ("trader",),
                               trader.account))  # fmt: skip
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    console.goto(page, "trade/BTCUSD")
    ticket = page.get_by_role("group", name="Order ticket")
    expect(ticket).to_be_visible()
    ticket.get_by_label("Price").focus()
    assert _focus_visible(page), "the price field shows no focus"
    seen = []
    for _ in range(30):  # Tab through the ticket: each control named and showing focus
        inside = page.evaluate("(t) => t.contains(document.activeElement)", ticket.element_handle())
        if not inside:
            break
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.name"))
        assert _focus_visible(page), f"no visible focus on {seen[-1]!r}"
        page.keyboard.press("Tab")
    assert len(seen) >= 3, seen
    # a far-from-the-book IOC buy, typed and sent with Enter: accepted, then it expires
    ticket.get_by_label("Price").focus()
    page.keyboard.type("50000")
    ticket.get_by_label("Time in force").focus()
    page.keyboard.type("IOC")
    expect(ticket.get_by_label("Time in force")).to_have_value("IOC")
    ticket.get_by_label("Quantity").focus()
    page.keyboard.type("0.01")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_be_visible()
