"""The trader's account in the Binance dialect: ``/api/v3/account`` and ``/api/v3/myTrades``,
and the asset list Binance serves at ``/sapi/v1/capital/config/getall``."""

from __future__ import annotations

from typing import Any

from tradex.queries import binance_format as fmt
from tradex.queries import binance_models as bm
from tradex.queries.auth import TRADER, own_account
from tradex.queries.markets import fmt_amount
from tradex.queries.routing import Call, Endpoint

TAG = "Account (Binance v3)"


async def balances(call: Call, account: int) -> list[dict[str, Any]]:
    """The account's balances (the Redis balance cache) with every known asset listed."""
    services = call.services
    await services.catalog.refresh()
    held = (await services.market.balances(account)).assets
    found = []
    for asset, scale in sorted(services.catalog.scales.items()):
        available, locked = held.get(asset, (0, 0))
        found.append({"asset": asset, "free": fmt_amount(available, scale),
                      "locked": fmt_amount(locked, scale)})  # fmt: skip
    return found


async def account(call: Call) -> dict[str, Any]:
    """Balances (free = available, locked = held by open orders and pending withdrawals)
    and what this caller may do. Fees are per instrument in TradeX (exchangeInfo's
    makerFeePpm/takerFeePpm): the account-wide commissions read 0."""
    p: bm.AccountParams = call.params
    account_id = await own_account(call.services, call.user, p.accountId)
    rows = await balances(call, account_id)
    if p.omitZeroBalances:
        rows = [r for r in rows if r["free"].strip("0.") or r["locked"].strip("0.")]
    permissions = call.user.permissions
    return {
        "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
        "canTrade": "trade" in permissions, "canWithdraw": "withdraw" in permissions,
        "canDeposit": False, "brokered": False, "requireSelfTradePrevention": False,
        "preventSor": False, "updateTime": call.services.clock_ns() // 1_000_000,
        "accountType": "SPOT", "balances": rows, "permissions": ["SPOT"],
        "uid": call.user.user_id, "accountId": account_id,
    }  # fmt: skip


async def my_trades(call: Call) -> list[dict[str, Any]]:
    """The caller's fills of one symbol, oldest first: from ``fromId`` (a trade id) on,
    else the newest ``limit`` (up to ``toId``: the page before); optionally one order, a
    time range."""
    p: bm.MyTradesParams = call.params
    services = call.services
    market = await services.catalog.market(p.symbol)
    account_id = await own_account(services, call.user, p.accountId)
    rows = await services.fetch(
        lambda conn: services.ledger.fills_page(
            conn, account_id, instrument_id=market.instrument_id, order_id=p.orderId,
            from_trade_id=p.fromId,
            start_ns=None if p.startTime is None else p.startTime * 1_000_000,
            end_ns=None if p.endTime is None else p.endTime * 1_000_000 + 999_999,
            limit=p.limit, to_trade_id=p.toId, side=p.side,
        )
    )  # fmt: skip
    return [fmt.my_trade(market, row) for row in rows]


async def coins(call: Call) -> list[dict[str, Any]]:
    """Every asset with the caller's balance (TradeX has no deposit networks)."""
    account_id = await own_account(call.services, call.user, None)
    return [
        {"coin": row["asset"], "name": row["asset"], "free": row["free"], "locked": row["locked"],
         "depositAllEnable": False, "withdrawAllEnable": True, "trading": True, "networkList": []}
        for row in await balances(call, account_id)
    ]  # fmt: skip


async def no_margin(call: Call) -> list[dict[str, Any]]:
    """TradeX has no margin trading: no pairs (for clients that ask while loading markets)."""
    return []


ENDPOINTS = [
    Endpoint("GET", "/api/v3/account", account, "Balances and permissions", TAG,
             bm.AccountParams, response=bm.Account, access=TRADER, weight=20),
    Endpoint("GET", "/api/v3/myTrades", my_trades, "The caller's fills", TAG, bm.MyTradesParams,
             response=list[bm.MyTrade], access=TRADER, weight=20),
    Endpoint("GET", "/sapi/v1/capital/config/getall", coins, "Assets and balances", TAG,
             response=list[bm.CoinInfo], access=TRADER, weight=10),
    Endpoint("GET", "/sapi/v1/margin/allPairs", no_margin, "No cross-margin pairs", TAG,
             response=list[dict[str, str]], access=TRADER),
    Endpoint("GET", "/sapi/v1/margin/isolated/allPairs", no_margin, "No isolated-margin pairs",
             TAG, response=list[dict[str, str]], access=TRADER),
]  # fmt: skip
