"""End to end through the API: two traders, admin deposits, crossing orders; balances, order
history, fills and the ledger statement reflect it exactly."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.queries.exchange import PASSWORD, Exchange, Trader, wait_until

pytestmark = pytest.mark.integration


def balances(http, account: int | None = None) -> dict[str, tuple[Decimal, Decimal]]:
    body = http.get("/api/v3/account").json()
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in body["balances"]}


def funded(exchange: Exchange, prefix: str, asset: str, amount: str) -> Trader:
    """A new trader whose deposit of ``amount`` ``asset`` is settled."""
    found = exchange.register(prefix)
    exchange.deposit(found.account, asset, amount)
    with found.http() as http:
        wait_until(lambda: balances(http).get(asset, (0,))[0] == Decimal(amount),
                   what=f"{prefix}'s deposit")  # fmt: skip
    return found


def test_two_traders_trade_and_every_view_agrees(exchange: Exchange) -> None:
    alice, bob = funded(exchange, "alice", "USD", "10000"), funded(exchange, "bob", "BTC", "1")
    with alice.http() as a, bob.http() as b:
        sell = b.post("/api/v3/order", params={
            "symbol": "BTCUSD", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.05", "price": "60000", "newClientOrderId": "bob-sell-1"})  # fmt: skip
        assert sell.status_code == 200, sell.text
        assert sell.json()["status"] == "NEW"
        assert sell.json()["clientOrderId"] == "bob-sell-1"
        buy = a.post("/api/v3/order", params={
            "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.03", "price": "60010"})  # fmt: skip
        assert buy.status_code == 200, buy.text
        buy_id, sell_id = buy.json()["orderId"], sell.json()["orderId"]

        def filled() -> dict | None:
            order = a.get("/api/v3/order", params={"symbol": "BTCUSD", "orderId": buy_id})
            return order.json() if order.json().get("status") == "FILLED" else None

        order = wait_until(filled, what="alice's buy filled")
        # 0.03 BTC at the maker's price 60,000: notional 1,800.00; alice is the taker (0.2 %)
        assert order["executedQty"] == "0.030"
        assert order["cummulativeQuoteQty"] == "1800.00"
        taker_fee, maker_fee = Decimal("3.60"), Decimal("1.80")
        wait_until(lambda: balances(a)["BTC"][0] == Decimal("0.03"), what="alice settled")
        wait_until(lambda: balances(b)["USD"][0] == Decimal("1800") - maker_fee, what="bob settled")
        assert balances(a)["USD"] == (Decimal("10000") - Decimal("1800") - taker_fee, Decimal(0))
        # bob still offers 0.02 BTC: held
        assert balances(b)["BTC"] == (Decimal("0.95"), Decimal("0.02"))

        history = b.get("/api/v3/allOrders", params={"symbol": "BTCUSD"}).json()
        (mine,) = [o for o in history if o["orderId"] == sell_id]
        assert (mine["status"], mine["executedQty"]) == ("PARTIALLY_FILLED", "0.030")
        opened = b.get("/api/v3/openOrders", params={"symbol": "BTCUSD"}).json()
        assert [o["orderId"] for o in opened] == [sell_id]
        # the balances above are Redis's; fills and postings are PostgreSQL's, which may
        # have the engine's Filled a batch before the account side's FillSettled
        (fill,) = wait_until(
            lambda: a.get("/api/v3/myTrades", params={"symbol": "BTCUSD"}).json(),
            what="alice's fill in the PostgreSQL read model",
        )
        assert (fill["price"], fill["qty"], fill["quoteQty"]) == ("60000", "0.030", "1800.00")
        assert (fill["commission"], fill["commissionAsset"], fill["isBuyer"], fill["isMaker"]) == (
            "3.60",
            "USD",
            True,
            False,
        )

        # The statement: every posting in log order, the running balance after each.
        statement = a.get("/tradex/v1/statement").json()
        usd = [p for p in statement["postings"] if p["asset"] == "USD"]
        assert [p["amount"] for p in usd] == ["10000.00", "-1803.60"]
        assert usd[-1]["balanceAfter"] == "8196.40"
        btc = [p for p in statement["postings"] if p["asset"] == "BTC"]
        assert [p["amount"] for p in btc] == ["0.03000000"]
        assert statement["next"] is None
        # One posting a page: the pages, followed by their cursors, are the statement.
        pages, after = [], None
        while True:
            query = {"limit": 1} | ({"after": after} if after else {})
            page = a.get("/tradex/v1/statement", params=query).json()
            pages.extend(page["postings"])
            after = page["next"]
            assert (after is None) == (len(pages) == len(statement["postings"]))
            if after is None:
                break
        assert pages == statement["postings"]
        refused = a.get("/tradex/v1/statement", params={"after": "1-x-0"})
        assert refused.status_code == 422 and "after" in refused.json()["msg"], refused.text
        ledger = a.get("/tradex/v1/balances").json()["balances"]
        assert {r["asset"]: r["total"] for r in ledger} == {"BTC": "0.03000000", "USD": "8196.40"}
        # As of before the trade: only the deposit.
        before = min(p["time"] for p in statement["postings"] if p["amount"] == "-1803.60") - 1
        past = a.get("/tradex/v1/balances", params={"asOf": before}).json()["balances"]
        assert {r["asset"]: r["total"] for r in past} == {"USD": "10000.00"}

        # bob cancels the rest: answered once it has left the book
        cancel = b.delete("/api/v3/order", params={"symbol": "BTCUSD", "orderId": sell_id})
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["status"] == "CANCELED"
        wait_until(lambda: balances(b)["BTC"] == (Decimal("0.97"), Decimal(0)), what="released")
        again = b.delete("/api/v3/order", params={"symbol": "BTCUSD", "orderId": sell_id})
        assert again.status_code == 400
        assert again.json()["code"] == -2011

    # The market data agree: the trade, the candle, the ticker.
    with exchange.client() as http:
        trades = http.get("/api/v3/trades", params={"symbol": "BTCUSD"}).json()
        assert any(t["qty"] == "0.030" and t["price"] == "60000" for t in trades)
        candles = wait_until(
            lambda: http.get("/api/v3/klines", params={"symbol": "BTCUSD", "interval": "1m"}).json()
        )
        assert Decimal(candles[-1][5]) >= Decimal("0.03")
        ticker = http.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSD"}).json()
        assert int(ticker["count"]) >= 1


def test_rejections_carry_the_reason_and_retries_the_first_outcome(exchange: Exchange) -> None:
    carol = exchange.register("carol")
    with carol.http() as http:
        order = {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "1", "price": "50000"}  # fmt: skip
        poor = http.post("/api/v3/order", params=order)
        assert poor.status_code == 400
        assert poor.json()["code"] == -2010
        assert "insufficient balance" in poor.json()["msg"]
        assert "INSUFFICIENT_FUNDS" in poor.json()["msg"]
        assert "0.00 USD available, 50100.00 USD needed" in poor.json()["msg"]  # decimals
        exchange.deposit(carol.account, "USD", "100000")
        wait_until(lambda: balances(http)["USD"][0] > 0, what="carol's deposit")
        first = http.post("/api/v3/order", params=order, headers={"Idempotency-Key": "c-1"})
        retry = http.post("/api/v3/order", params=order, headers={"Idempotency-Key": "c-1"})
        assert first.status_code == retry.status_code == 200
        assert first.json()["orderId"] == retry.json()["orderId"]
        assert balances(http)["USD"][1] == Decimal("50100.00")  # one hold, not two
        other = http.post("/api/v3/order", params={**order, "price": "40000"},
                          headers={"Idempotency-Key": "c-1"})  # fmt: skip
        assert other.status_code == 409
        assert other.json()["msg"].startswith("Duplicate order sent.")


def test_withdrawals_maker_checker_and_the_audit_view(exchange: Exchange) -> None:
    """A requester cannot decide their own withdrawal; another admin can."""
    name = f"maker-{uuid.uuid4().hex[:6]}"
    maker = exchange.admin("/tradex/v1/admin/users",
                           {"username": name, "password": PASSWORD, "roles": ["admin", "trader"]})  # fmt: skip
    (account,) = maker["accountIds"]
    exchange.deposit(account, "USD", "500")
    token = exchange.login(name)["accessToken"]
    with exchange.client(token) as http:

        def requested():
            answer = http.post("/tradex/v1/withdrawals", json={"asset": "USD", "amount": "120.50"},
                               headers={"Idempotency-Key": "wd-1"})  # fmt: skip
            return answer if answer.status_code == 200 else None

        answer = wait_until(requested, what="the withdrawal requested (after the deposit)")
        withdrawal = answer.json()["withdrawalId"]
        assert withdrawal == f"wd-{account}-wd-1"
        decide = {"accountId": account, "withdrawalId": withdrawal}
        own = http.post("/tradex/v1/admin/withdrawals/approve", json=decide)
        assert own.status_code == 403
        assert own.json()["error"] == "MAKER_CHECKER"
    paid = exchange.admin("/tradex/v1/admin/withdrawals/approve", decide)
    assert (paid["status"], paid["amount"]) == ("PAID", "120.50")
    with exchange.client(exchange.admin_token) as http:

        def audited() -> dict | None:
            found = http.get("/tradex/v1/audit/balances", params={"accountId": account}).json()
            rows = found["balances"]
            return found if rows and rows[0]["total"] == "379.50" else None

        balances = wait_until(audited, what="the payment in the ledger")
        assert balances["balances"] == [{"asset": "USD", "free": "379.50", "locked": "0.00",
                                         "total": "379.50"}]  # fmt: skip
        statement = http.get("/tradex/v1/audit/statement", params={"accountId": account}).json()
        assert [p["amount"] for p in statement["postings"]] == ["500.00", "-120.50"]


def test_order_history_and_fills_page_back(exchange: Exchange) -> None:
    """The console pages back through history: allOrders ``toOrderId`` and myTrades ``toId``
    give the newest ``limit`` up to an id (the page before the oldest one shown)."""
    maker, taker = funded(exchange, "pager", "USD", "40000"), funded(exchange, "taker", "BTC", "1")
    with maker.http() as m, taker.http() as t:
        ids = []
        for price in ("990000", "990010", "990020"):  # above every other test's bids
            placed = m.post("/api/v3/order", params={
                "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.01", "price": price})  # fmt: skip
            assert placed.status_code == 200, placed.text
            ids.append(placed.json()["orderId"])
        wait_until(lambda: len(m.get("/api/v3/allOrders", params={"symbol": "BTCUSD"}).json())
                   == 3, what="the three orders in the read model")  # fmt: skip
        newest = m.get("/api/v3/allOrders", params={"symbol": "BTCUSD", "limit": 2}).json()
        assert [o["orderId"] for o in newest] == ids[1:]
        before = m.get("/api/v3/allOrders", params={
            "symbol": "BTCUSD", "limit": 2, "toOrderId": ids[1] - 1}).json()  # fmt: skip
        assert [o["orderId"] for o in before] == ids[:1]
        for _ in range(2):  # two fills for the maker: its two highest bids
            sold = t.post("/api/v3/order", params={
                "symbol": "BTCUSD", "side": "SELL", "type": "LIMIT", "timeInForce": "IOC",
                "quantity": "0.01", "price": "990000"})  # fmt: skip
            assert sold.status_code == 200, sold.text

        def two_fills() -> list[dict] | None:
            found = m.get("/api/v3/myTrades", params={"symbol": "BTCUSD"}).json()
            return found if len(found) == 2 else None

        fills = wait_until(two_fills, what="the maker's two fills")
        assert [f["orderId"] for f in fills] == [ids[2], ids[1]]
        (last,) = m.get("/api/v3/myTrades", params={"symbol": "BTCUSD", "limit": 1}).json()
        assert last == fills[1]
        (first,) = m.get("/api/v3/myTrades", params={
            "symbol": "BTCUSD", "limit": 1, "toId": last["id"] - 1}).json()  # fmt: skip
        assert first == fills[0]
        assert m.get("/api/v3/myTrades", params={"symbol": "BTCUSD", "side": "SELL"}).json() == []
        assert m.get("/api/v3/myTrades", params={"symbol": "BTCUSD", "side": "BUY"}).json() == fills
        wait_until(lambda: [o["orderId"] for o in m.get("/api/v3/allOrders", params={
            "symbol": "BTCUSD", "status": "FILLED", "side": "BUY"}).json()] == ids[1:],
            what="the two filled orders, by status")  # fmt: skip
        for params in ({"status": "NEW"}, {"side": "BUY", "status": "NEW"}):
            (new,) = m.get("/api/v3/allOrders", params={"symbol": "BTCUSD", **params}).json()
            assert new["orderId"] == ids[0]
        assert m.get("/api/v3/allOrders", params={"symbol": "BTCUSD", "side": "SELL"}).json() == []
        refused = m.get("/api/v3/allOrders", params={"symbol": "BTCUSD", "status": "OPEN"})
        assert (refused.status_code, refused.json()["field"]) == (400, "status")
        gone = m.delete("/api/v3/order", params={"symbol": "BTCUSD", "orderId": ids[0]})
        assert gone.status_code == 200, gone.text  # leave the shared book as it was
    with exchange.client() as http:
        (info,) = http.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSD"}).json()["symbols"]
        assert (info["tradexPriceBandBps"], info["tradexMarketProtectionBps"]) == (0, 500)
