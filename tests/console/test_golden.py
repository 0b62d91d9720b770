"""Golden screenshots of the main screens on the seeded exchange (tests/console/seed.py).

Fixed viewport, UTC, en-US, the DejaVu fonts the set-up installs. Each screen is taken once
it shows the seeded data (its `ready` check); what changes from run to run is masked: any
element marked ``data-volatile``, every ``<time>``, date-time inputs, cells and lines that
show a clock time or a withdrawal id, and the charts' canvases (their time axes).
``./dev golden`` rewrites the images; look at them (PNGs under tests/console/golden/)
before committing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import Golden, PageAs

pytestmark = pytest.mark.integration

CLOCK = re.compile(r"\d{2}:\d{2}:\d{2}")
WITHDRAWAL_ID = re.compile(r"^\s*wd-[0-9]+-[0-9a-f]+")


def volatile(page: Page) -> list[Locator]:
    return [
        page.locator("[data-volatile]"),
        page.locator("time"),
        page.locator('input[type="datetime-local"]'),
        page.locator("td, dd, caption, small, p, output").filter(has_text=CLOCK),
        page.locator("td").filter(has_text=WITHDRAWAL_ID),
        page.locator("canvas"),
    ]


def rows(page: Page, table: str) -> Locator:
    return page.get_by_role("table", name=table, exact=True).locator("tbody tr")


def markets_ready(page: Page) -> None:
    expect(rows(page, "Markets")).to_have_count(2)
    expect(rows(page, "Markets").first).to_contain_text("60,000")


def trade_ready(page: Page) -> None:
    expect(page.locator("[data-ws-state]")).to_have_attribute("data-ws-state", "live")
    book = page.get_by_role("table", name="Order book")
    expect(book.locator("tbody.asks tr")).to_have_count(2)
    expect(book.locator("tbody.bids tr")).to_have_count(1)
    expect(rows(page, "Recent trades")).to_have_count(1)
    expect(page.get_by_test_id("last-candle")).to_contain_text("volume 0.1")
    expect(rows(page, "Open orders BTCUSD")).to_have_count(1)
    expect(page.get_by_test_id("ticket-available")).to_contain_text("75,992.08")


def orders_ready(page: Page) -> None:
    expect(rows(page, "Open orders")).to_have_count(2)


def balances_ready(page: Page) -> None:
    expect(rows(page, "Balances")).to_have_count(3)


def operator_ready(page: Page) -> None:
    expect(rows(page, "Withdrawal requests")).to_have_count(1)
    expect(rows(page, "Withdrawal requests")).to_contain_text("bob")


def auditor_ready(page: Page) -> None:
    expect(rows(page, "Accounts")).to_have_count(3)
    expect(page.get_by_role("region", name="Checkpoints", exact=True)).to_be_visible()


# The trade page's charts keep changing its height (and it is wider than the viewport):
# its golden is the viewport alone, the charts' column and the depth chart masked.
TRADE_MOVING = (".instrument-main", "figure.depth-chart")

# screen name: (user, route, what shows the screen has its seeded data)
SCREENS: dict[str, tuple[str, str, Callable[[Page], None]]] = {
    "markets": ("alice", "markets", markets_ready),
    "trade": ("alice", "trade/BTCUSD", trade_ready),
    "orders": ("alice", "orders", orders_ready),
    "balances": ("alice", "balances", balances_ready),
    "operator": ("operator", "operator", operator_ready),
    "auditor": ("auditor", "auditor", auditor_ready),
}


@pytest.mark.parametrize("screen", SCREENS)
def test_screen_matches_its_golden(page_as: PageAs, golden: Golden, screen: str) -> None:
    user, route, ready = SCREENS[screen]
    page = page_as(user, route)
    ready(page)
    if screen == "trade":
        moving = [page.locator(selector) for selector in TRADE_MOVING]
        golden(page, screen, mask=volatile(page) + moving, full_page=False)
    else:
        golden(page, screen, mask=volatile(page))
