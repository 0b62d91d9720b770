"""The trading screens in a real browser: the order ticket, orders, balances.

Each test registers its own traders, and they trade TRD-USD, an instrument of this module
(the seeded users and book are the golden screenshots' and the other tests'), so balances,
orders and the book are known exactly. The ticket is mounted on its own (views/ticket.js
with OpenOrders, as the trade page renders them) so these tests do not depend on the rest
of the trade page.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import Console, PageAs
from tests.console.seed import ConsoleUser
from tests.queries.exchange import PASSWORD, Trader, wait_until

pytestmark = pytest.mark.integration

SYMBOL = "TRDUSD"  # TRD-USD: BTC-USD's tick, lot, min notional and fees on a book of its own
MOUNT_TICKET = """async () => {
  const { html, render } = await import('/console/lib/html.js');
  const { marketOf } = await import('/console/lib/catalog.js');
  const { OrderTicket } = await import('/console/views/ticket.js');
  const { OpenOrders } = await import('/console/views/orders.js');
  const m = await marketOf('TRDUSD');
  const box = document.createElement('div');
  document.body.prepend(box);
  render(html`<${OrderTicket} market=${m} /><${OpenOrders} symbol="TRDUSD" />`, box);
}"""


@pytest.fixture(scope="module", autouse=True)
def trd_usd(console: Console) -> None:
    console.exchange.admin("/tradex/v1/admin/assets", {"code": "TRD", "scale": 8})
    console.exchange.admin("/tradex/v1/admin/instruments", {
        "symbol": "TRD-USD", "tickSize": "10", "stepSize": "0.001", "minNotional": "10",
        "priceBandBps": 0, "makerFeePpm": 1_000, "takerFeePpm": 2_000,
    })  # fmt: skip
    with console.exchange.client() as http:
        wait_until(lambda: http.get("/api/v3/exchangeInfo", params={"symbol": SYMBOL})
                   .status_code == 200, what="TRDUSD in exchangeInfo")  # fmt: skip


def trader(console: Console, prefix: str, deposits: dict[str, str]) -> Trader:
    """A new trader with `deposits` settled, known to page_as by its username."""
    found = console.exchange.register(prefix)
    for asset, amount in deposits.items():
        console.exchange.deposit(found.account, asset, amount)
    console.users[found.username] = ConsoleUser(
        found.username, PASSWORD, found.user_id, ("trader",), found.account
    )
    with found.http() as http:
        wait_until(lambda: len(http.get("/tradex/v1/balances").json()["balances"])
                   == len(deposits), what=f"{prefix}'s deposits")  # fmt: skip
    return found


def get(who: Trader, path: str, **params: Any) -> Any:
    with who.http() as http:
        answer = http.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def place(who: Trader, side: str, qty: str, price: str, **extra: str) -> dict[str, Any]:
    with who.http() as http:
        answer = http.post("/api/v3/order", params={
            "symbol": SYMBOL, "side": side, "type": "LIMIT", "timeInForce": "GTC",
            "quantity": qty, "price": price, **extra})  # fmt: skip
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def ticket_of(page: Page) -> Locator:
    page.evaluate(MOUNT_TICKET)
    ticket = page.get_by_role("group", name="Order ticket")
    expect(ticket).to_be_visible()
    return ticket


def command_ids(who: Trader) -> list[str]:
    """Every order the account has on the log's read model (none: nothing was sent)."""
    return [o["clientOrderId"] for o in get(who, "/api/v3/allOrders", symbol=SYMBOL)]


def test_exact_rules_of_the_ticket(console: Console, page_as: PageAs) -> None:
    """The ticket's arithmetic, on BigInt: protection price, snapping, holds, checks."""
    page = page_as("alice", "balances")
    found = page.evaluate("""async () => {
      const t = await import('/console/views/ticket.js');
      const m = { base: 'BTC', quote: 'USD', baseScale: 8, quoteScale: 2, tickSize: '10',
        stepSize: '0.001', minQty: '0.001', maxQty: '9223372036854.775', minNotional: '10.00',
        makerFeePpm: 1000, takerFeePpm: 2000 };
      const fields = (ps) => ps.map((p) => p.field);
      return {
        protection: [t.protectionPrice('60000', '10', 500, 'BUY'),
          t.protectionPrice('60010', '10', 500, 'SELL'), t.protectionPrice('10', '10', 500, 'SELL')],
        snapped: [t.snapTo('60005', '10', 'nearest'), t.snapTo('60004', '10', 'nearest'),
          t.snapTo('0.0019', '0.001', 'floor'), t.snapTo('0.002', '0.001', 'floor')],
        holds: [t.holdOf('BUY', '60000', '0.001', m), t.holdOf('BUY', '10', '0.001', m),
          t.holdOf('SELL', '60000', '0.001', m)],
        problems: [
          fields(t.problemsOf({ market: m, side: 'BUY', type: 'LIMIT', price: '10', qty: '0.5', available: {} })),
          fields(t.problemsOf({ market: m, side: 'BUY', type: 'LIMIT', price: '60000', qty: '0.1', available: { USD: '6011.99' } })),
          fields(t.problemsOf({ market: m, side: 'BUY', type: 'LIMIT', price: '60000', qty: '0.1', available: { USD: '6012.00' } })),
          fields(t.problemsOf({ market: m, side: 'SELL', type: 'LIMIT', price: '60005', qty: '0.1', available: {} })),
          fields(t.problemsOf({ market: m, side: 'SELL', type: 'LIMIT', price: '60000', qty: '0.1', available: { BTC: '0.09999999' } })),
          fields(t.problemsOf({ market: m, side: 'SELL', type: 'LIMIT', price: null, qty: null })),
        ],
        parsed: [t.parseInput('1.5'), t.parseInput('1e3'), t.parseInput('-1'), t.parseInput('')],
        band: [t.outsideBand('220', '200', 1000), t.outsideBand('220.01', '200', 1000),
          t.outsideBand('179.99', '200', 1000), t.outsideBand('180', '200', 1000),
          t.outsideBand('999', '200', 0), t.outsideBand('999', null, 1000)],
      };
    }""")
    # 6000 ticks + 300 (5 %); 6001 - 300 = 5701 ticks; never below one tick
    assert found["protection"] == ["63000", "57010", "10"]
    assert found["snapped"] == [{"value": "60010", "snapped": True}, {"value": "60000", "snapped": True},
                                {"value": "0.001", "snapped": True}, {"value": "0.002", "snapped": False}]  # fmt: skip
    assert found["holds"] == [
        {"asset": "USD", "amount": "60.12", "fee": "0.12"},  # the higher (taker) rate, 0.2 %
        {"asset": "USD", "amount": "0.02", "fee": "0.01"},  # ceil(0.00002 USD) = 1 cent
        {"asset": "BTC", "amount": "0.00100000"},
    ]
    assert found["problems"] == [["quantity"], ["balance"], [], ["price"], ["balance"],
                                 ["price", "quantity"]]  # fmt: skip
    assert found["parsed"] == ["1.5", None, None, None]
    # the engine's rule: |price - reference| x 10,000 > reference x band; no band or no
    # reference (no trade, one side empty): no check
    assert found["band"] == [False, True, True, False, False, False]


def test_limit_order_accepted_shows_its_id(console: Console, page_as: PageAs) -> None:
    dora = trader(console, "dora", {"USD": "1000"})
    page = page_as(dora.username, "balances")
    ticket = ticket_of(page)
    ticket.get_by_role("radio", name="Buy").check()
    ticket.get_by_label("Price").fill("50000")
    ticket.get_by_label("Quantity").fill("0.01")
    ticket.get_by_label("Time in force").select_option("GTC")
    expect(page.get_by_test_id("ticket-available")).to_have_text("1,000.00 USD")
    ticket.get_by_role("button", name="Buy TRD").click()
    status = page.get_by_role("status").filter(has_text="Accepted")
    expect(status).to_be_visible()
    # (the answer is the account processor's; the read model follows within its interval)
    (order,) = wait_until(lambda: get(dora, "/api/v3/openOrders", symbol=SYMBOL),
                          what="the order in the read model")  # fmt: skip
    expect(status).to_contain_text(f"order {order['orderId']} (NEW")
    assert (order["price"], order["origQty"]) == ("50000", "0.010")
    # the hold, fee included: 500.00 + 1.00 (0.2 %)
    expect(page.get_by_test_id("ticket-available")).to_have_text("499.00 USD")


def test_snapping_and_checks_stop_a_bad_order(console: Console, page_as: PageAs) -> None:
    """Off the grid, below min notional, more than the balance: nothing is sent."""
    erin = trader(console, "erin", {"USD": "1000"})
    page = page_as(erin.username, "balances")
    ticket = ticket_of(page)
    expect(page.get_by_test_id("ticket-available")).to_have_text("1,000.00 USD")
    ticket.get_by_label("Price").fill("60005")
    ticket.get_by_label("Quantity").fill("0.0105")
    ticket.get_by_role("button", name="Buy TRD").click()
    expect(page.get_by_text("Values were snapped to the grid")).to_be_visible()
    expect(page.get_by_text("Price snapped from 60005 to 60010 (tick 10).")).to_be_visible()
    expect(page.get_by_text("Quantity snapped from 0.0105 to 0.010 (lot 0.001).")).to_be_visible()
    expect(ticket.get_by_label("Price")).to_have_value("60010")
    expect(ticket.get_by_label("Quantity")).to_have_value("0.010")
    ticket.get_by_label("Quantity").fill("0.1")  # 6,001.00 + 12.01 fee > 1,000
    ticket.get_by_role("button", name="Buy TRD").click()
    expect(page.get_by_text("Insufficient funds: this order holds 6013.01 USD (incl. 12.01 fee), "
                            "1000.00 USD is available.")).to_be_visible()  # fmt: skip
    ticket.get_by_label("Price").fill("10")
    ticket.get_by_label("Quantity").fill("0.5")  # 5.00 USD < 10
    ticket.get_by_role("button", name="Buy TRD").click()
    expect(page.get_by_text("Below the minimum notional")).to_be_visible()
    expect(page.get_by_role("status")).to_have_count(0)
    assert command_ids(erin) == []  # nothing reached the log


def test_processor_reject_shows_the_reason_in_words(console: Console, page_as: PageAs) -> None:
    """The browser is told of more USD than the account has (a stale balance: the ticket's
    own check passes), so the real account processor refuses the order."""
    fay = trader(console, "fay", {"USD": "1000"})
    page = page_as(fay.username, "balances")
    stale = {"accountId": fay.account, "asOf": None, "balances": [
        {"asset": "USD", "free": "1000000.00", "locked": "0.00", "total": "1000000.00"}]}  # fmt: skip
    page.route("**/tradex/v1/balances", lambda route: route.fulfill(json=stale))
    ticket = ticket_of(page)
    expect(page.get_by_test_id("ticket-available")).to_have_text("1,000,000.00 USD")
    ticket.get_by_label("Price").fill("50000")
    ticket.get_by_label("Quantity").fill("0.1")
    ticket.get_by_role("button", name="Buy TRD").click()
    alert = page.get_by_role("alert").filter(has_text="Rejected")
    expect(alert).to_contain_text("Account has insufficient balance for requested action.")
    expect(alert).to_contain_text("INSUFFICIENT_FUNDS: 1000.00 USD available, 5010.00 USD needed")
    expect(alert).to_contain_text("code -2010 NEW_ORDER_REJECTED")
    wait_until(lambda: [o["status"] for o in get(fay, "/api/v3/allOrders", symbol=SYMBOL)]
               == ["REJECTED"], what="the rejection on the log")  # fmt: skip


def test_market_order_shows_its_protection_price(console: Console, page_as: PageAs) -> None:
    gus, seller = (
        trader(console, "gus", {"USD": "1000"}),
        trader(console, "gusseller", {"TRD": "1"}),
    )
    page = page_as(gus.username, "balances")
    ticket = ticket_of(page)
    ticket.get_by_label("Type").select_option("Market")
    expect(ticket.get_by_label("Time in force")).to_be_disabled()
    expect(ticket.get_by_label("Post-only")).to_be_disabled()
    protection = page.get_by_test_id("protection-price")
    expect(protection).to_have_text("no price (empty book, no trade)")  # TRD-USD has no ask yet
    ticket.get_by_role("button", name="Buy TRD").click()
    expect(page.get_by_text("No price to protect a market order")).to_be_visible()
    ask = place(seller, "SELL", "0.01", "70000")["orderId"]
    expect(protection).to_have_text("73,500 USD")  # 7000 ticks + 5 % (no band)
    ticket.get_by_role("radio", name="Sell").check()  # the best bid: dora's 50000 (test above)
    expect(protection).to_have_text("47,500 USD")
    assert [o["type"] for o in get(gus, "/api/v3/allOrders", symbol=SYMBOL)] == []
    with seller.http() as http:  # leave the book as it was
        assert http.delete("/api/v3/order", params={"symbol": SYMBOL, "orderId": ask}).is_success


def test_amend_and_cancel(console: Console, page_as: PageAs) -> None:
    hal = trader(console, "hal", {"USD": "1000"})
    order_id = place(hal, "BUY", "0.01", "40000")["orderId"]
    page = page_as(hal.username, "balances")
    ticket_of(page)
    rows = page.get_by_role("table", name=f"Open orders {SYMBOL}")
    expect(rows).to_contain_text(str(order_id))
    page.get_by_role("button", name=f"Amend order {order_id}").click()
    page.get_by_label("New price").fill("39990")
    page.get_by_label("New quantity").fill("0.02")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"Order {order_id} amended.")).to_be_visible()
    wait_until(lambda: (o := get(hal, "/api/v3/order", symbol=SYMBOL, orderId=order_id))
               and (o["price"], o["origQty"]) == ("39990", "0.020"), what="the amend applied")  # fmt: skip
    expect(rows).to_contain_text("39,990")
    page.get_by_role("button", name=f"Cancel order {order_id}").click()
    expect(page.get_by_text(f"Order {order_id}: CANCELED.")).to_be_visible()
    expect(page.get_by_text("No open orders.")).to_be_visible()
    assert get(hal, "/api/v3/openOrders", symbol=SYMBOL) == []


def test_orders_page_cancel_all_history_filters_fills(console: Console, page_as: PageAs) -> None:
    ivy, seller = (
        trader(console, "ivy", {"USD": "2000"}),
        trader(console, "ivyseller", {"TRD": "1"}),
    )
    place(ivy, "BUY", "0.01", "95000", newClientOrderId="ivy-buy-1")  # the highest bid
    place(seller, "SELL", "0.01", "95000")
    wait_until(lambda: get(ivy, "/api/v3/myTrades", symbol=SYMBOL), what="ivy's fill")
    resting = [place(ivy, "BUY", "0.001", p)["orderId"] for p in ("10000", "10010")]
    wait_until(lambda: len(get(ivy, "/api/v3/openOrders")) == 2, what="two open orders")
    page = page_as(ivy.username, "orders?tab=open")
    table = page.get_by_role("table", name="Open orders")
    expect(table.get_by_role("row")).to_have_count(3)
    page.get_by_role("button", name="Cancel all orders").click()
    expect(page.get_by_role("status")).to_contain_text("Cancelling 2 orders")
    expect(page.get_by_text("No open orders.")).to_be_visible()
    wait_until(lambda: all(o["status"] == "CANCELED" for o in get(ivy, "/api/v3/allOrders",
               symbol=SYMBOL) if o["orderId"] in resting), what="cancelled")  # fmt: skip

    console.goto(page, f"orders?tab=history&symbol={SYMBOL}")
    history = page.get_by_role("table", name="Order history")
    expect(history.get_by_role("row")).to_have_count(4)
    page.get_by_label("Status").select_option("FILLED")
    expect(history.get_by_role("row")).to_have_count(2)
    expect(history).to_contain_text("ivy-buy-1")
    page.get_by_label("Status").select_option("CANCELED")
    expect(history.get_by_role("row")).to_have_count(3)
    page.get_by_label("Status").select_option("")
    page.get_by_label("Client order id").fill("ivy-buy-1")
    page.get_by_label("Client order id").press("Enter")
    expect(history.get_by_role("row")).to_have_count(2)
    assert "clientId=ivy-buy-1" in page.url

    page.get_by_role("tab", name="Fills").click()
    fills = page.get_by_role("table", name="Fills")
    expect(fills).to_contain_text("95,000")
    expect(fills).to_contain_text("0.95 USD")  # maker fee 0.1 % of 950.00
    expect(fills).to_contain_text("maker")
    page.get_by_label("Side").select_option("SELL")
    expect(page.get_by_text("No fills.")).to_be_visible()
    page.get_by_label("Side").select_option("BUY")
    expect(fills.get_by_role("row")).to_have_count(2)
    page.get_by_role("tab", name="Fills").focus()
    page.keyboard.press("ArrowLeft")  # the tabs follow the arrow keys
    expect(page.get_by_role("tab", name="Order history")).to_have_attribute("aria-selected", "true")


def utc_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def test_statement_csv_equals_the_api_and_balances_as_of(console: Console, page_as: PageAs) -> None:
    jon, seller = (
        trader(console, "jon", {"USD": "1000"}),
        trader(console, "jonseller", {"TRD": "1"}),
    )
    place(jon, "BUY", "0.01", "96000")  # the highest bid
    place(seller, "SELL", "0.01", "96000")
    (fill,) = wait_until(lambda: get(jon, "/api/v3/myTrades", symbol=SYMBOL), what="jon's fill")
    page = page_as(jon.username, "balances")
    balances = page.get_by_role("table", name="Balances").first
    expect(balances.get_by_role("row")).to_have_count(3)  # header, TRD, USD
    usd = balances.get_by_role("row", name="USD")
    expect(usd).to_contain_text("39.04")  # 1000 - 960 - 0.96 (jon is the maker: 0.1 %)
    page.get_by_role("button", name="Show statement").click()
    expect(page.get_by_role("table", name="Statement")).to_contain_text("-960.96")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    text = download.value.path().read_text()
    start = utc_ms(page.get_by_label("From (UTC)").input_value())
    end = utc_ms(page.get_by_label("To (UTC)").input_value())
    statement = get(jon, "/tradex/v1/statement", startTime=start, endTime=end, limit=1000)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["asset"] for r in rows] == ["USD", "USD", "TRD"]
    assert [{k: r[k] for k in p} for r, p in zip(rows, statement["postings"], strict=True)] == [
        {k: str(v) for k, v in p.items()} for p in statement["postings"]
    ]
    assert [r["amount"] for r in rows] == ["1000.00", "-960.96", "0.01000000"]

    before = dt.datetime.fromtimestamp((fill["time"] - 1) / 1000, dt.UTC)  # the ms before it
    page.get_by_label("As of (UTC)").fill(before.isoformat(timespec="milliseconds")[:23])
    page.get_by_role("button", name="Show", exact=True).click()
    as_of = page.get_by_role("table", name="Balances").nth(1)
    expect(as_of.get_by_role("row")).to_have_count(2)  # header, USD
    expect(as_of.get_by_role("row", name="USD")).to_contain_text("1,000.00")


def test_the_ticket_works_from_the_keyboard(console: Console, page_as: PageAs) -> None:
    """Arrow keys choose the side, Tab walks the fields, Space ticks post-only, Enter sends;
    the focused control shows its focus."""
    kim = trader(console, "kim", {"TRD": "1"})
    page = page_as(kim.username, "balances")
    ticket = ticket_of(page)
    ticket.get_by_role("radio", name="Buy").focus()
    page.keyboard.press("ArrowRight")
    expect(ticket.get_by_role("radio", name="Sell")).to_be_checked()
    for label, keys in (("Type", None), ("Price", "99000"), ("Quantity", "0.01"),
                        ("Time in force", None), ("Post-only", " ")):  # fmt: skip
        page.keyboard.press("Tab")
        expect(ticket.get_by_label(label)).to_be_focused()
        if keys:
            page.keyboard.type(keys)
    expect(ticket.get_by_label("Post-only")).to_be_checked()
    page.keyboard.press("Tab")
    send = ticket.get_by_role("button", name="Sell TRD")
    expect(send).to_be_focused()
    outline = send.evaluate(
        "e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth"
    )
    assert outline == "solid 2px", outline
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_be_visible()
    (order,) = wait_until(lambda: get(kim, "/api/v3/openOrders", symbol=SYMBOL),
                          what="the order in the read model")  # fmt: skip
    assert (order["side"], order["type"], order["price"]) == ("SELL", "LIMIT_MAKER", "99000")


def test_the_ticket_follows_a_resting_order_to_its_end(console: Console, page_as: PageAs) -> None:
    """Past its first reads (~4 s) the ticket follows the order on the private channels: its
    end (here a cancel from another client: no trade, the book is left as it was) shows."""
    ida = trader(console, "ida", {"USD": "1000"})
    page = page_as(ida.username, "balances")
    ticket = ticket_of(page)
    ticket.get_by_role("radio", name="Buy").check()
    ticket.get_by_label("Price").fill("30000")
    ticket.get_by_label("Quantity").fill("0.01")
    ticket.get_by_role("button", name="Buy TRD").click()
    answer = page.get_by_test_id("engine-answer")
    (order,) = wait_until(lambda: get(ida, "/api/v3/openOrders", symbol=SYMBOL), what="resting")
    expect(answer).to_have_text(f"Order {order['orderId']}: resting in the book.")
    page.wait_for_timeout(5_000)
    with ida.http() as http:
        cancel = http.delete(
            "/api/v3/order", params={"symbol": SYMBOL, "orderId": order["orderId"]}
        )
    assert cancel.is_success, cancel.text
    expect(answer).to_have_text(f"Order {order['orderId']}: canceled.", timeout=15_000)
