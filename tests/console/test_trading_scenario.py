"""Across the screens: two traders log in, place crossing orders from the order ticket, see
the trade in the book, the recent trades, the candle and their fills, and their balances
change exactly as the fees say; a rejected order shows its reason.

On an instrument of this module's own (an empty book, no trades), with traders of its own:
the seeded state the golden screenshots show stays as it was.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, PageAs, login_ui
from tests.console.seed import ConsoleUser, new_market, new_trader, place

pytestmark = pytest.mark.integration

PRICE, SOLD, BOUGHT = Decimal("200"), Decimal("2.00"), Decimal("1.50")
NOTIONAL = PRICE * BOUGHT  # 300.00 USD
MAKER_FEE = NOTIONAL * Decimal("0.001")  # the seller rests: 0.30 USD
TAKER_FEE = NOTIONAL * Decimal("0.002")  # the buyer takes: 0.60 USD
SCALE = {"USD": 2}  # the module's base asset: 8 decimals


@pytest.fixture(scope="module")
def market(console: Console) -> tuple[str, str]:
    """(base asset, symbol) of an instrument of this module's own."""
    base = f"T{uuid.uuid4().hex[:4].upper()}"
    return base, new_market(console.exchange, base)


def ticket_order(page: Page, side: str, price: Decimal, quantity: Decimal) -> None:
    """Fills in the order ticket (a limit GTC order) and sends it with the keyboard's help."""
    ticket = page.get_by_role("group", name="Order ticket")
    ticket.get_by_role("radio", name=side, exact=True).check()
    expect(ticket.get_by_label("Type")).to_have_value("LIMIT")
    ticket.get_by_label("Price", exact=True).fill(str(price))
    ticket.get_by_label("Quantity", exact=True).fill(str(quantity))
    expect(ticket.get_by_label("Time in force")).to_have_value("GTC")
    ticket.get_by_role("button", name=re.compile(rf"^{side} ")).click()


def balance_cells(page: Page, asset: str) -> list[str]:
    row = (
        page.get_by_role("table", name="Balances")
        .get_by_role("row")
        .filter(has=page.get_by_role("cell", name=asset, exact=True))
    )
    expect(row).to_have_count(1)
    return [c.strip() for c in row.get_by_role("cell").all_inner_texts()]


def money(amount: Decimal, asset: str) -> str:
    """As the console shows an amount: the asset's decimals, thousands grouped."""
    return f"{amount:,.{SCALE.get(asset, 8)}f}"


def expect_balances(page: Page, asset: str, available: Decimal, held: Decimal) -> None:
    want = [asset, money(available, asset), money(held, asset), money(available + held, asset)]
    expect(page.get_by_role("table", name="Balances").get_by_role("row").filter(
        has=page.get_by_role("cell", name=asset, exact=True)
    )).to_have_text(re.compile(r"\s*".join(re.escape(w) for w in want)))  # fmt: skip
    assert balance_cells(page, asset) == want


def test_two_traders_cross_from_the_ticket_and_every_screen_agrees(
    console: Console, page_as: PageAs, market: tuple[str, str]
) -> None:
    base, symbol = market
    seller = new_trader(console.exchange, "seller", {base: "5"})
    buyer = new_trader(console.exchange, "buyer", {"USD": "1000"})

    sell_page = page_as(seller, f"trade/{symbol}")
    ticket_order(sell_page, "Sell", PRICE, SOLD)
    expect(sell_page.get_by_role("status").filter(has_text="Accepted")).to_contain_text(
        re.compile(r"Accepted: order \d+")
    )
    book = sell_page.get_by_role("table", name="Order book")
    expect(book.locator("tbody.asks tr")).to_have_count(1)
    expect(book.locator("tbody.asks tr")).to_contain_text("200")
    expect(book.locator("tbody.asks tr")).to_contain_text("2.00")

    # the buyer logs in through the login form, then trades from the ticket
    buy_page = page_as(None, "login")
    login_ui(buy_page, buyer)
    expect(buy_page.get_by_role("button", name="Log out")).to_be_visible()
    console.goto(buy_page, f"trade/{symbol}")
    ticket_order(buy_page, "Buy", PRICE, BOUGHT)
    expect(buy_page.get_by_role("status").filter(has_text="Accepted")).to_be_visible()

    for page in (sell_page, buy_page):  # both screens, live
        asks = page.get_by_role("table", name="Order book").locator("tbody.asks tr")
        expect(asks).to_have_count(1)
        expect(asks).to_contain_text("0.50")
        trades = page.get_by_role("table", name="Recent trades").locator("tbody tr")
        expect(trades).to_have_count(1)
        expect(trades).to_contain_text("200")
        expect(trades).to_contain_text("1.50")
        expect(page.get_by_test_id("last-candle")).to_contain_text(re.compile(
            r"O 200(\.0+)? H 200(\.0+)? L 200(\.0+)? C 200(\.0+)? · volume 1\.50*\b"))  # fmt: skip

    fills_of(console, buy_page, symbol, "BUY", TAKER_FEE, "taker")
    fills_of(console, sell_page, symbol, "SELL", MAKER_FEE, "maker")

    console.goto(buy_page, "balances")
    expect_balances(buy_page, base, BOUGHT, Decimal(0))
    expect_balances(buy_page, "USD", Decimal(1000) - NOTIONAL - TAKER_FEE, Decimal(0))
    console.goto(sell_page, "balances")
    expect_balances(sell_page, base, Decimal(5) - SOLD, SOLD - BOUGHT)
    expect_balances(sell_page, "USD", NOTIONAL - MAKER_FEE, Decimal(0))


def fills_of(
    console: Console, page: Page, symbol: str, side: str, fee: Decimal, liquidity: str
) -> None:
    console.goto(page, f"orders?tab=fills&symbol={symbol}")
    rows = page.get_by_role("table", name="Fills").locator("tbody tr")
    expect(rows).to_have_count(1)
    cells = rows.first.get_by_role("cell")
    expect(cells.nth(2)).to_have_text(side)
    expect(cells.nth(3)).to_have_text("200")
    expect(cells.nth(4)).to_have_text("1.50")
    expect(cells.nth(5)).to_have_text(money(NOTIONAL, "USD"))
    expect(cells.nth(6)).to_have_text(f"{money(fee, 'USD')} USD")
    expect(cells.nth(7)).to_have_text(liquidity)


def test_a_rejected_order_shows_its_reason(
    console: Console, page_as: PageAs, market: tuple[str, str]
) -> None:
    """The screen believes the market trades; the operator halted it meanwhile: the account
    processor's refusal reaches the ticket in words, with its code."""
    base, symbol = market
    trader: ConsoleUser = new_trader(console.exchange, "halted", {"USD": "1000"})
    page = page_as(trader, f"trade/{symbol}")
    ticket = page.get_by_role("group", name="Order ticket")
    expect(ticket.get_by_role("button", name=re.compile(r"^Buy "))).to_be_enabled()
    console.exchange.admin("/tradex/v1/admin/instruments/halt", {"symbol": f"{base}-USD"})
    try:
        ticket_order(page, "Buy", Decimal("100"), Decimal("1.00"))
        rejected = page.get_by_role("alert").filter(has_text="Rejected")
        expect(rejected).to_contain_text("INSTRUMENT_HALTED")
    finally:
        console.exchange.admin("/tradex/v1/admin/instruments/resume", {"symbol": f"{base}-USD"})
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_have_count(0)


def test_the_ticket_checks_the_band_and_follows_the_order_to_the_engine(
    console: Console, page_as: PageAs
) -> None:
    """On a market with a 10 % band around the mid of 190/210: a price beyond the band is
    refused before anything is sent; an order in it is accepted and then shown resting;
    a post-only order that would trade is accepted by the account processor, then the
    engine's rejection reaches the ticket with its reason."""
    base = f"B{uuid.uuid4().hex[:4].upper()}"
    symbol = new_market(console.exchange, base, priceBandBps=1_000)
    maker: ConsoleUser = new_trader(console.exchange, "bandmaker", {base: "5", "USD": "1000"})
    token = maker.tokens(console.exchange)["accessToken"]
    place(console.exchange, token, symbol, "BUY", "1.00", "190")
    place(console.exchange, token, symbol, "SELL", "1.00", "210")
    trader: ConsoleUser = new_trader(console.exchange, "band", {"USD": "1000"})
    page = page_as(trader, f"trade/{symbol}")
    asks = page.get_by_role("table", name="Order book").locator("tbody.asks tr")
    expect(asks).to_have_count(1)

    ticket_order(page, "Buy", Decimal("221"), Decimal("0.10"))  # the band: 180..220
    ticket = page.get_by_role("group", name="Order ticket")
    expect(ticket).to_contain_text("Outside the price band: more than 10 % from 200")
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_have_count(0)

    ticket_order(page, "Buy", Decimal("195"), Decimal("0.10"))
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_be_visible()
    expect(page.get_by_test_id("engine-answer")).to_contain_text(
        re.compile(r"Order \d+: resting in the book\.")
    )

    ticket.get_by_role("checkbox", name="Post-only").check()
    ticket_order(page, "Buy", Decimal("210"), Decimal("0.10"))  # would take the ask
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_be_visible()
    expect(page.get_by_test_id("engine-answer")).to_contain_text(
        re.compile(r"The engine rejected order \d+: POST_ONLY_WOULD_TAKE\.")
    )
    expect(asks).to_have_count(1)  # the ask is untouched
