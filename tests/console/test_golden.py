"""Golden screenshots of the main screens on the seeded exchange (tests/console/seed.py).

Fixed viewport, UTC, en-US, the DejaVu fonts the set-up installs; what changes from run to
run (times, ids, the charts' time axes) is masked: any element marked ``data-volatile``,
every ``<time>`` and each screen's own list below. ``./dev golden`` rewrites the images;
review them (they are PNGs under tests/console/golden/) before committing.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import Golden, PageAs

pytestmark = pytest.mark.integration


def volatile(page: Page, *selectors: str) -> list[Locator]:
    return [page.locator(s) for s in ("[data-volatile]", "time", *selectors)]


# screen name: (user, route, what shows the screen has its data, its own volatile parts)
SCREENS = {
    "markets": ("alice", "markets", "main", ()),
    "trade": ("alice", "trade/BTCUSD", "main", ("canvas",)),
    "orders": ("alice", "orders", "main", ()),
    "balances": ("alice", "balances", "main", ()),
    "operator": ("operator", "operator", "main", ()),
    "auditor": ("auditor", "auditor", "main", ()),
}


@pytest.mark.parametrize("screen", SCREENS)
def test_screen_matches_its_golden(page_as: PageAs, golden: Golden, screen: str) -> None:
    user, route, ready, masked = SCREENS[screen]
    page = page_as(user, route)
    expect(page.locator(ready)).to_be_visible()
    expect(page.locator(".boot")).to_have_count(0)
    golden(page, screen, mask=volatile(page, *masked))
