"""A WebSocket gap in the browser: one book update dropped on purpose between the server and
the page (Playwright's WebSocket routing) is detected — the trade page says it is
resyncing — and healed: after the fresh snapshot the ladder equals /api/v3/depth again.

The resubscription the page sends after the gap is held back until the test has seen the
"resync" note (else the heal can be quicker than a look), then let through.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.console.conftest import Console, PageAs
from tests.console.seed import new_market, new_trader, place

pytestmark = pytest.mark.integration


class DropOneBookUpdate:
    """Between the page and the server: forwards everything, but drops the first book
    `update` after `arm()`, then holds the page's frames until `release()`."""

    def __init__(self) -> None:
        self.armed = False
        self.dropped: dict[str, object] | None = None
        self.held: list[str | bytes] = []
        self.released = False
        self.server: WebSocketRoute | None = None

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        self.server = server
        ws.on_message(self._from_page)
        server.on_message(lambda message: self._from_server(ws, message))

    def _from_page(self, message: str | bytes) -> None:
        assert self.server is not None
        if self.dropped is not None and not self.released:
            self.held.append(message)
        else:
            self.server.send(message)

    def _from_server(self, ws: WebSocketRoute, message: str | bytes) -> None:
        found = json.loads(message)
        if self.armed and self.dropped is None and found.get("type") == "update" and \
                found.get("channel") == "book":  # fmt: skip
            self.dropped = found
            return
        ws.send(message)

    def arm(self) -> None:
        self.armed = True

    def release(self) -> None:
        assert self.server is not None
        self.released = True
        for message in self.held:
            self.server.send(message)
        self.held.clear()


def ladder(page: Page) -> dict[str, list[list[str]]]:
    """The order book table's levels as [price, size], best first."""
    book = page.get_by_role("table", name="Order book")
    levels: dict[str, list[list[str]]] = {}
    for side in ("asks", "bids"):
        rows = book.locator(f"tbody.{side} tr").all()
        # a cell's last word: the price cell starts with "ask"/"bid" for screen readers
        found = [[c.split()[-1] for c in row.get_by_role("cell").all_inner_texts()[:2]]
                 for row in rows]  # fmt: skip
        levels[side] = found[::-1] if side == "asks" else found  # asks are shown best last
    return levels


def depth(console: Console, symbol: str) -> dict[str, list[list[str]]]:
    with console.exchange.client() as http:
        answer = http.get("/api/v3/depth", params={"symbol": symbol}).json()
    return {
        side: [[_grouped(p), _grouped(q)] for p, q in answer[side]] for side in ("asks", "bids")
    }


def _grouped(text: str) -> str:
    whole, _, fraction = text.partition(".")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "")


def test_a_dropped_book_update_shows_and_heals(console: Console, page_as: PageAs) -> None:
    base = f"G{uuid.uuid4().hex[:4].upper()}"
    symbol = new_market(console.exchange, base)
    maker = new_trader(console.exchange, "gap", {base: "10"})
    token = console.exchange.login(maker.username, maker.password)["accessToken"]
    place(console.exchange, token, symbol, "SELL", "1.00", "100")

    proxy = DropOneBookUpdate()
    page = page_as("auditor", None)  # a viewer without a ticket: the book alone
    page.route_web_socket("**/tradex/v1/ws", proxy.route)
    console.goto(page, f"trade/{symbol}")
    state = page.locator("[data-ws-state]")
    expect(state).to_have_attribute("data-ws-state", "live")
    expect(page.get_by_role("table", name="Order book").locator("tbody.asks tr")).to_have_count(1)

    proxy.arm()
    place(console.exchange, token, symbol, "SELL", "2.00", "101")  # its update is dropped
    _wait(page, lambda: proxy.dropped is not None, "the dropped update")
    place(console.exchange, token, symbol, "SELL", "3.00", "102")  # the next shows the gap

    expect(state).to_have_attribute("data-ws-state", "resync")
    expect(page.get_by_role("status").filter(has_text="resync")).to_be_visible()
    assert ladder(page) != depth(console, symbol)  # stale, and marked so
    proxy.release()
    expect(state).to_have_attribute("data-ws-state", "live")
    expect(page.get_by_role("status").filter(has_text="resync")).to_have_count(0)
    asks = page.get_by_role("table", name="Order book").locator("tbody.asks tr")
    expect(asks).to_have_count(3)
    assert ladder(page) == depth(console, symbol)
    assert sum(Decimal(q) for _, q in depth(console, symbol)["asks"]) == Decimal("6.00")


def _wait(page: Page, check: Callable[[], bool], what: str, timeout_ms: int = 15_000) -> None:
    """Until `check()`, letting Playwright's event loop run (the routes' callbacks)."""
    waited = 0
    while not check():
        assert waited < timeout_ms, f"timed out waiting for {what}"
        page.wait_for_timeout(100)
        waited += 100
