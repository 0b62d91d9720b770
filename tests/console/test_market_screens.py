"""The market screens in Chromium against the real API on the real stack: login and
register, API keys (the secret once, revoke), log out everywhere, the markets list, the
trade page (book, trades, candles live) and the WebSocket client's gap -> resync.

The markets and trade-page tests trade an instrument of this module's own (the seeded
BTCUSD is the golden screenshots' and other tests'), so their figures are exact."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.console.conftest import Console, PageAs
from tests.queries.exchange import PASSWORD, ApiKey, Exchange, Trader, wait_until

pytestmark = pytest.mark.integration

# a page going live again goes through Playwright's WebSocket route (each frame a round trip
# to this process) and a reconnect's backoff: more than the infra's default wait on a loaded
# machine
LIVE_MS = 60_000
# every state the trade page's [data-ws-state] shows, with its text, from the page's start
WATCH_STATES = """window.__states = [];
new MutationObserver(() => {
  const el = document.querySelector('[data-ws-state]');
  if (el) window.__states.push([el.getAttribute('data-ws-state'), el.textContent]);
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});"""


@dataclasses.dataclass
class Market:
    symbol: str  # on the wire: W1A2B3USD
    base: str
    maker: ApiKey
    taker: ApiKey


def fund(exchange: Exchange, prefix: str, base: str) -> tuple[Trader, ApiKey]:
    """A new trader with USD and `base`, and a key that trades."""
    trader = exchange.register(prefix)
    exchange.deposit(trader.account, "USD", "1000000")
    exchange.deposit(trader.account, base, "1000")
    key = trader.key(["read", "trade"])

    def funded() -> bool:
        balances = key.signed("GET", "/api/v3/account", {"recvWindow": 60_000}).json()["balances"]
        return {b["asset"] for b in balances if b["free"] not in ("0", "0.00")} >= {"USD", base}

    wait_until(funded, what=f"the deposits of {trader.username}")
    return trader, key


@pytest.fixture(scope="module")
def market(console: Console) -> Market:
    exchange = console.exchange
    base = f"W{uuid.uuid4().hex[:5].upper()}"
    exchange.admin("/tradex/v1/admin/assets", {"code": base, "scale": 8})
    exchange.admin("/tradex/v1/admin/instruments", {
        "symbol": f"{base}-USD", "tickSize": "1", "stepSize": "0.01", "minNotional": "1"})  # fmt: skip
    symbol = f"{base}USD"
    with exchange.client() as http:
        wait_until(lambda: http.get("/api/v3/exchangeInfo", params={"symbol": symbol}).json()
                   .get("symbols"), what=f"{symbol} listed")  # fmt: skip
    _maker, maker = fund(exchange, "web-maker", base)
    _taker, taker = fund(exchange, "web-taker", base)
    return Market(symbol, base, maker, taker)


def order(key: ApiKey, symbol: str, side: str, price: str, qty: str,
          tif: str = "GTC") -> dict[str, Any]:  # fmt: skip
    answer = key.signed("POST", "/api/v3/order", {
        "symbol": symbol, "side": side, "type": "LIMIT", "timeInForce": tif, "price": price,
        "quantity": qty, "recvWindow": 60_000}, body=True)  # fmt: skip
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def log_in(page: Page, username: str) -> None:
    """Through the login form, on the page shown now."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_register_logs_in_and_bad_credentials_and_lockout_say_so(
    console: Console, page_as: PageAs
) -> None:
    username = f"web-{uuid.uuid4().hex[:8]}"
    page = page_as(None, "register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 10 characters")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.locator("header.top .user")).to_contain_text(username)
    page.get_by_role("button", name="Log out").click()
    console.goto(page, "login")
    failures_max = int(console.exchange.env["TRADEX_API_LOGIN_FAILURES_MAX"])
    for attempt in range(failures_max):
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("wrong-password-1")
        page.get_by_role("button", name="Log in").click()
        if attempt < failures_max - 1:
            expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
            page.get_by_label("Password").fill("")
    lockout_s = console.exchange.env["TRADEX_API_LOCKOUT_S"]
    locked = f"this user is locked for now. Try again in {lockout_s} s"
    expect(page.get_by_role("alert")).to_contain_text(locked)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)  # the right one: still locked
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("this user is locked for now. Try again in")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def test_a_protected_page_asks_for_a_login_then_opens(console: Console, page_as: PageAs) -> None:
    trader = console.exchange.register("web-next")
    page = page_as(None, "keys")
    log_in(page, trader.username)
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/keys$"))


def test_api_key_secret_is_shown_once_then_revoked(console: Console, page_as: PageAs) -> None:
    exchange = console.exchange
    trader = exchange.register("web-keys")
    page = page_as(None, "keys")
    log_in(page, trader.username)
    page.get_by_label("Trade (place and cancel orders)").check()
    page.get_by_label("Label").fill("bot one")
    page.get_by_label("IP allow-list").fill("127.0.0.1\n10.0.0.0/8")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret")
    expect(secret).to_have_value(re.compile(r"^\S{20,}$"))
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    key = ApiKey(exchange.url, page.get_by_label("API key", exact=True).input_value(),
                 secret.input_value(), "")  # fmt: skip
    assert key.signed("GET", "/api/v3/account").status_code == 200  # the secret shown works
    page.get_by_role("button", name="I have stored it: hide the secret").click()
    expect(page.get_by_label("Secret")).to_have_count(0)
    row = page.get_by_role("table", name="API keys").get_by_role("row").filter(has_text="bot one")
    expect(row).to_contain_text("read, trade")
    expect(row).to_contain_text("127.0.0.1/32, 10.0.0.0/8")
    expect(row).to_contain_text("live")
    page.reload()
    expect(row).to_be_visible()
    expect(page.get_by_label("Secret")).to_have_count(0)  # never shown again
    row.get_by_role("button", name=re.compile("^Revoke key")).click()
    page.get_by_role("button", name="Yes, revoke").click()
    expect(row).to_contain_text("revoked")
    assert key.signed("GET", "/api/v3/account").status_code == 401


def test_log_out_everywhere_ends_the_other_browsers_session(
    console: Console, page_as: PageAs
) -> None:
    trader = console.exchange.register("web-everywhere")
    page = page_as(None, "keys")
    log_in(page, trader.username)
    elsewhere = page_as(None, "keys")  # another browser context: another session
    log_in(elsewhere, trader.username)
    page.get_by_role("button", name="End every session").click()
    page.get_by_role("button", name="Yes, end every session").click()
    expect(page.locator("header.top").get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()  # the login form
    elsewhere.reload()  # its next request: 401, the refresh refused, logged out
    expect(elsewhere.locator("header.top").get_by_role("link", name="Log in")).to_be_visible()
    expect(elsewhere.get_by_role("button", name="Log out")).to_have_count(0)
    with console.exchange.client(trader.token) as http:  # the registration's session too
        assert http.get("/tradex/v1/me").status_code == 401


def test_markets_list_is_live_and_opens_the_trade_page(
    page_as: PageAs, market: Market
) -> None:  # fmt: skip
    page = page_as(None, "markets")
    markets = page.get_by_role("table", name="Markets")
    row = markets.get_by_role("row").filter(has_text=market.symbol)
    expect(row).to_contain_text("TRADING")
    expect(row).to_contain_text("—")  # no trade yet
    order(market.maker, market.symbol, "SELL", "1200", "0.50")
    order(market.taker, market.symbol, "BUY", "1200", "0.50", "IOC")
    order(market.maker, market.symbol, "SELL", "1236", "0.25")
    order(market.taker, market.symbol, "BUY", "1236", "0.25", "IOC")
    # live over the ticker channel: last 1,236, +3.00 % from 1,200 (exact), 0.75 base, 909 USD
    expect(row).to_contain_text("1,236")
    expect(row).to_contain_text("+3.00 %")
    expect(row).to_contain_text(f"0.75 {market.base}")
    expect(row).to_contain_text("909.00 USD")
    row.get_by_role("link").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"#/trade/{market.symbol}$"))
    page.go_back()
    row.get_by_role("cell").first.click()  # anywhere on the row
    expect(page).to_have_url(re.compile(f"#/trade/{market.symbol}$"))


def test_trade_page_shows_book_trades_and_candles_live(page_as: PageAs, market: Market) -> None:
    order(market.maker, market.symbol, "SELL", "2010", "0.04")
    page = page_as(None, f"trade/{market.symbol}")
    state = page.locator("[data-ws-state]")
    expect(state).to_have_attribute("data-ws-state", "live")
    book = page.get_by_role("table", name="Order book")
    expect(book.get_by_role("row").filter(has_text="2,010")).to_contain_text("0.04")
    order(market.maker, market.symbol, "SELL", "2020", "0.03")  # live: a new level
    order(market.maker, market.symbol, "BUY", "1990", "0.10")
    # price, size, cumulative size (0.04 + 0.03), exact
    expect(book.get_by_role("row").filter(has_text="2,020")).to_have_text(
        re.compile(r"2,020\s*0\.03\s*0\.07"))  # fmt: skip
    expect(book.get_by_role("row").filter(has_text="1,990")).to_contain_text("0.10")
    order(market.taker, market.symbol, "BUY", "2010", "0.04", "IOC")  # the best ask traded away
    expect(book).not_to_contain_text("2,010")
    expect(book.get_by_role("row").filter(has_text="2,020")).to_have_text(
        re.compile(r"2,020\s*0\.03\s*0\.03"))  # fmt: skip
    trades = page.get_by_role("table", name="Recent trades")
    expect(trades.get_by_role("row").filter(has_text="2,010").first).to_contain_text("0.04")
    expect(page.get_by_test_id("last-price")).to_have_text("2,010")
    expect(page.get_by_test_id("last-candle")).to_contain_text("C 2010")
    for interval in ("5m", "15m", "1h", "4h", "1d", "1m"):
        choice = page.get_by_role("radio", name=interval, exact=True)
        choice.click()
        expect(choice).to_have_attribute("aria-checked", "true")
        expect(page.locator("[data-candles]")).not_to_have_attribute("data-candles", "0")
    expect(page.get_by_test_id("last-candle")).to_contain_text("1m candle")
    expect(state).to_have_attribute("data-ws-state", "live")


def test_the_pure_functions_from_the_page(page_as: PageAs) -> None:
    page = page_as(None, "markets")
    found = page.evaluate("""async () => {
      const ws = await import('./lib/ws.js'); const book = await import('./lib/book.js');
      let b = book.applyLevels(null, [['100.0', '1.5'], ['99.5', '0.25']], [['101', '0.1']], true);
      b = book.applyLevels(b, [['100', '0'], ['99.9', '0.3']], [['101.00', '0.2'], ['102', '0.7']]);
      return {
        steps: [ws.sequenceStep(10, {firstSeq: 11, seq: 12}), ws.sequenceStep(10, {firstSeq: 12, seq: 12}),
                ws.sequenceStep(10, {firstSeq: 9, seq: 10}), ws.sequenceStep(10, {firstSeq: 9, seq: 11}),
                ws.sequenceStep(10, {seq: 9}), ws.sequenceStep(10, {seq: 10}), ws.sequenceStep(null, {seq: 1})],
        bids: book.cumulative(book.topLevels(b.bids, 'bids', 10)),
        asks: book.cumulative(book.topLevels(b.asks, 'asks', 10)),
        crossed: book.crossed(book.applyLevels(b, [['101', '1']], [], false)),
        sum: book.cumulative([['1', '0.1'], ['2', '0.2']]).map((l) => l.total),
      };
    }""")
    assert found["steps"] == ["apply", "gap", "stale", "apply", "stale", "apply", "stale"]
    assert found["bids"] == [{"price": "99.9", "qty": "0.3", "total": "0.3"},
                             {"price": "99.5", "qty": "0.25", "total": "0.55"}]  # fmt: skip
    assert found["asks"] == [{"price": "101.00", "qty": "0.2", "total": "0.2"},
                             {"price": "102", "qty": "0.7", "total": "0.9"}]  # fmt: skip
    assert found["crossed"] is True
    assert found["sum"] == ["0.1", "0.3"]  # exact: 0.1 + 0.2 in floats is 0.30000000000000004


def relayed_trade_page(console: Console, page_as: PageAs, symbol: str,
                       frame: Callable[[WebSocketRoute, str], bool]) -> Page:  # fmt: skip
    """The trade page of `symbol` logged out, its WebSocket relayed through this process:
    `frame(page_side, text)` sees each server frame and answers whether to pass it on; the
    page records every state of [data-ws-state] from its start (window.__states)."""

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if frame(ws, message if isinstance(message, str) else message.decode()):
                ws.send(message)

        server.on_message(from_server)
        ws.on_message(lambda message: server.send(message))

    page = page_as(None, None)
    page.route_web_socket(re.compile(r".*/tradex/v1/ws$"), route)
    page.add_init_script(WATCH_STATES)
    console.goto(page, f"trade/{symbol}")
    expect(page.locator("[data-ws-state]")).to_have_attribute("data-ws-state", "live",
                                                              timeout=LIVE_MS)  # fmt: skip
    return page


def test_a_dropped_book_update_shows_resync_then_heals(
    console: Console, page_as: PageAs, market: Market
) -> None:
    dropped: list[str] = []

    def frame(_ws: WebSocketRoute, text: str) -> bool:
        if not dropped and '"type":"update"' in text.replace(" ", ""):
            dropped.append(text)  # lost on purpose
            return False
        return True

    page = relayed_trade_page(console, page_as, market.symbol, frame)
    order(market.maker, market.symbol, "SELL", "3010", "0.01")  # its update is dropped
    order(market.maker, market.symbol, "SELL", "3020", "0.02")  # the next one shows the gap
    levels = page.get_by_role("table", name="Order book").get_by_role("row")
    expect(levels.filter(has_text="3,020")).to_contain_text("0.02", timeout=LIVE_MS)
    # healed: the fresh snapshot has the level whose update was lost
    expect(levels.filter(has_text="3,010")).to_contain_text("0.01", timeout=LIVE_MS)
    state = page.locator("[data-ws-state]")
    expect(state).to_have_attribute("data-ws-state", "live", timeout=LIVE_MS)
    assert dropped and '"seq"' in dropped[0], "no book update went through the route"
    seen = page.evaluate("window.__states")
    assert any(s == "resync" and "resync in progress" in text for s, text in seen), seen


def test_a_lost_connection_reconnects_and_resubscribes(
    console: Console, page_as: PageAs, market: Market
) -> None:
    closed: list[bool] = []

    def frame(ws: WebSocketRoute, text: str) -> bool:
        if not closed and '"type":"snapshot"' in text.replace(" ", ""):
            closed.append(True)
            ws.send(text)
            ws.close(code=1011, reason="test: the connection drops")
            return False
        return True

    page = relayed_trade_page(console, page_as, market.symbol, frame)
    order(market.maker, market.symbol, "SELL", "4010", "0.01")  # after the reconnect
    expect(page.get_by_role("table", name="Order book").get_by_role("row")
           .filter(has_text="4,010")).to_contain_text("0.01", timeout=LIVE_MS)  # fmt: skip
    expect(page.locator("[data-ws-state]")).to_have_attribute("data-ws-state", "live")
    assert closed
    assert any(s == "resync" for s, _text in page.evaluate("window.__states"))
