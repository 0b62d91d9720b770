"""The ledger for traders and auditors: balances now and as of a past time, the statement
of an account for a period (every posting with the balance after it), accounts.

Traders read their own accounts (an API key: its account); auditors (and admins) any
account, read-only. Amounts are decimals of each asset's scale.
"""

from __future__ import annotations

from typing import Any

from tradex.queries import binance_format
from tradex.queries import binance_models as bm
from tradex.queries import tradex_models as tm
from tradex.queries.auth import AUDITOR, TRADER, own_account
from tradex.queries.markets import fmt_amount
from tradex.queries.routing import Call, Endpoint

TAG = "Ledger (TradeX)"
AUDIT_TAG = "Audit (TradeX)"
NS_PER_MS = 1_000_000
END_OF_TIME_MS = 9_000_000_000_000


async def balances_of(call: Call, account: int, as_of_ms: int | None) -> dict[str, Any]:
    services = call.services
    if as_of_ms is None:
        rows = await services.fetch(lambda conn: services.ledger.balances(conn, account))
    else:
        end_ns = as_of_ms * NS_PER_MS + NS_PER_MS - 1  # every event in that millisecond
        rows = await services.fetch(
            lambda conn: services.ledger.balances_as_of(conn, account, time_ns=end_ns)
        )
    found = []
    for row in rows:
        scale = await services.catalog.scale(row.asset)
        found.append({"asset": row.asset, "free": fmt_amount(row.available, scale),
                      "locked": fmt_amount(row.held, scale),
                      "total": fmt_amount(row.available + row.held, scale)})  # fmt: skip
    return {"accountId": account, "asOf": as_of_ms, "balances": found}


async def statement_of(
    call: Call, account: int, start_ms: int, end_ms: int | None, limit: int, after: str | None
) -> dict[str, Any]:
    """A page of at most ``limit`` postings, after ``after`` (the previous page's ``next``);
    ``next`` is set when the period holds more."""
    services = call.services
    end = END_OF_TIME_MS if end_ms is None else end_ms
    cursor = None if after is None else _cursor(after)
    rows, more = await services.fetch(
        lambda conn: services.ledger.statement(
            conn, account, start_ms * NS_PER_MS, end * NS_PER_MS, limit, cursor
        )
    )
    postings = []
    for row in rows:
        scale = await services.catalog.scale(row["asset"])
        postings.append({"eventId": str(row["event_id"]), "index": row["posting_index"],
                         "asset": row["asset"], "amount": fmt_amount(row["delta"], scale),
                         "balanceAfter": fmt_amount(int(row["balance_after"]), scale),
                         "time": row["event_time_ns"] // NS_PER_MS})  # fmt: skip
    last = rows[-1] if rows else None
    following = (
        f"{last['event_partition']}-{last['event_offset']}-{last['posting_index']}"
        if more and last is not None
        else None
    )
    return {"accountId": account, "startTime": start_ms, "endTime": end, "postings": postings,
            "next": following}  # fmt: skip


def _cursor(text: str) -> tuple[int, int, int]:
    """A statement cursor (``partition-offset-index``, as ``next`` gives it)."""
    partition, offset, index = (int(part) for part in text.split("-"))
    return partition, offset, index


async def balances(call: Call) -> dict[str, Any]:
    """Balances of your account now (the ledger read model), or as of ``asOf``: the sum of
    every posting and hold change up to that time."""
    p: tm.BalancesParams = call.params
    return await balances_of(call, await own_account(call.services, call.user, p.accountId), p.asOf)


async def statement(call: Call) -> dict[str, Any]:
    """Every posting of your account with event time in [startTime, endTime), in log
    order, each with the asset's balance after it."""
    p: tm.StatementParams = call.params
    account = await own_account(call.services, call.user, p.accountId)
    return await statement_of(call, account, p.startTime, p.endTime, p.limit, p.after)


async def accounts(call: Call) -> dict[str, Any]:
    if call.user.key_account is not None:
        return {"accountIds": [call.user.key_account]}
    return {"accountIds": await call.services.store.accounts_of(call.user.user_id)}


async def audit_accounts(call: Call) -> list[dict[str, Any]]:
    """Every account with its owner, a page at a time (``after`` an account id)."""
    p: tm.AuditAccountsParams = call.params
    rows = await call.services.store.all_accounts(p.after, p.limit)
    return [{"accountId": r["account_id"], "userId": r["user_id"], "username": r["username"]}
            for r in rows]  # fmt: skip


async def audit_balances(call: Call) -> dict[str, Any]:
    """Any account's balances, now or as of a past time."""
    p: tm.AuditParams = call.params
    return await balances_of(call, p.accountId, p.asOf)


async def audit_statement(call: Call) -> dict[str, Any]:
    p: tm.AuditStatementParams = call.params
    return await statement_of(call, p.accountId, p.startTime, p.endTime, p.limit, p.after)


async def audit_orders(call: Call) -> list[dict[str, Any]]:
    """Any account's orders of one symbol, the newest ``limit``, oldest first."""
    p: tm.AuditOrdersParams = call.params
    services = call.services
    market = await services.catalog.market(p.symbol, tradex=True)
    rows = await services.fetch(
        lambda conn: services.ledger.orders_page(
            conn, p.accountId, instrument_id=market.instrument_id, limit=p.limit
        )
    )
    return [binance_format.order(market, row) for row in rows]


ENDPOINTS = [
    Endpoint("GET", "/tradex/v1/accounts", accounts, "Your accounts", TAG,
             response=tm.Accounts, access=TRADER),
    Endpoint("GET", "/tradex/v1/balances", balances, "Balances, now or as of a time", TAG,
             tm.BalancesParams, response=tm.Balances, access=TRADER, weight=5),
    Endpoint("GET", "/tradex/v1/statement", statement, "Ledger statement for a period", TAG,
             tm.StatementParams, response=tm.Statement, access=TRADER, weight=10),
    Endpoint("GET", "/tradex/v1/audit/accounts", audit_accounts, "Every account", AUDIT_TAG,
             tm.AuditAccountsParams, response=list[tm.AuditAccount], access=AUDITOR),
    Endpoint("GET", "/tradex/v1/audit/balances", audit_balances, "Any account's balances",
             AUDIT_TAG, tm.AuditParams, response=tm.Balances, access=AUDITOR),
    Endpoint("GET", "/tradex/v1/audit/statement", audit_statement,
             "Any account's statement", AUDIT_TAG, tm.AuditStatementParams,
             response=tm.Statement, access=AUDITOR),
    Endpoint("GET", "/tradex/v1/audit/orders", audit_orders, "Any account's orders", AUDIT_TAG,
             tm.AuditOrdersParams, response=list[bm.Order], access=AUDITOR),
]  # fmt: skip
