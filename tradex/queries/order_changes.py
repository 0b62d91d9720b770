"""Amend and cancel-all: the Binance paths that fit, and TradeX's own.

- ``PUT /api/v3/order/amend/keepPriority`` (Binance): the quantity down only, the order
  keeps its place in the book.
- ``POST /tradex/v1/orders/amend``: price and/or quantity (a price change, or a quantity
  rise, re-queues the order at the back of its price, as the engine's amend does).
- ``DELETE /api/v3/openOrders?symbol=`` (Binance) and ``DELETE /tradex/v1/orders``
  (optionally ``symbol``): cancel every open order of the account.

Each sends one command to the log (``ModifyOrder``, ``CancelAllOrders``, with the caller
as its ``actor``) and answers with the account processor's outcome: an amend is accepted
once the hold is adjusted (a rise the balance cannot cover is refused, -2010), and
forwarded to the engine; the engine's result (applied, or refused when the order filled
or ended meanwhile) shows in the order's later state (``GET /api/v3/order``). Once the
engine confirms an applied amend, the account releases the hold above the new terms
(``AmendSettled``: the balances move, on the user-data stream and the ``balances``
channel too). A
cancel-all answers with the orders it is cancelling (PENDING_CANCEL): the processor
cancels them in chunks of 100 (docs/ledger.md, "Cancel-all"), the order ends follow.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tradex.domain import CancelAllOrders, ModifyOrder
from tradex.queries import binance_format as fmt
from tradex.queries import binance_models as bm
from tradex.queries import idempotency
from tradex.queries.auth import TRADER_TRADE, own_account
from tradex.queries.errors import (
    CANCEL_REJECTED,
    MANDATORY_PARAM,
    NEW_ORDER_REJECTED,
    ApiError,
    param_error,
)
from tradex.queries.markets import Market
from tradex.queries.orders import find_order, rejection
from tradex.queries.routing import Call, Endpoint

TAG = "Trading (Binance v3)"
TRADEX_TAG = "Trading (TradeX)"


class AmendKeepPriorityParams(bm.CancelParams):
    newQty: bm.Decimal


class AmendParams(bm.CancelParams):
    price: bm.Decimal | None = None
    quantity: bm.Decimal | None = None


class CancelAllParams(bm.Params):
    symbol: bm.Symbol
    accountId: bm.AccountId = None


class TradexCancelAllParams(bm.Params):
    symbol: bm.Symbol | None = None
    accountId: bm.AccountId = None


class AmendedOrder(BaseModel):
    transactTime: int
    amendedOrder: bm.Order


class CancelAll(BaseModel):
    accountId: int
    cancelling: list[int]  # order ids, ascending (the first chunk of at most 100)
    more: bool  # the rest follow in further chunks


async def _amend(call: Call, p: bm.CancelParams, ticks: int, lots: int) -> dict[str, Any]:
    services = call.services
    market = await services.catalog.market(p.symbol)
    row = await find_order(call, p, market)
    account, order_id = row["account_id"], row["order_id"]
    command_id = await idempotency.command_id(
        call, f"account:{account}", "ModifyOrder",
        {"order": order_id, "price": ticks, "qty": lots}, client_id=p.newClientOrderId,
    )  # fmt: skip
    command = ModifyOrder(command_id, account, services.clock_ns(), order_id, ticks, lots,
                          call.user.user_id)  # fmt: skip
    outcome = await services.accounts.execute(command, services.config.command_timeout_s)
    event = outcome.events[0]
    if type(event).__name__ != "OrderAmended":
        raise ApiError(NEW_ORDER_REJECTED, rejection(event, market))
    body = fmt.order(market, row)
    if ticks:
        body["price"] = market.fmt_price(ticks)
    if lots:
        body["origQty"] = market.fmt_qty(lots)
    body["updateTime"] = fmt.ms(event.event_time_ns)
    return {"transactTime": fmt.ms(event.event_time_ns), "amendedOrder": body}


async def amend_keep_priority(call: Call) -> dict[str, Any]:
    """Reduce an open order's quantity, keeping its priority (Binance: ``newQty`` below the
    order's quantity). The hold falls once the engine confirms the amend (a fill decided
    before the engine sees the amend may still come until then)."""
    p: AmendKeepPriorityParams = call.params
    market = await call.services.catalog.market(p.symbol)
    lots = market.lots(p.newQty, "newQty")
    row = await find_order(call, p, market)
    current = row["amended_qty"] or row["qty"] or 0
    if lots >= current:
        raise param_error(NEW_ORDER_REJECTED, "newQty",
                          "newQty must be less than the order's quantity.", False)  # fmt: skip
    return await _amend(call, p, 0, lots)


async def amend(call: Call) -> dict[str, Any]:
    """Amend an open order's price and/or quantity (the new total; unset: kept). The
    account holds for the wider of the old and new terms until the engine confirms the
    amend, then for its terms (and those of amends not confirmed yet); a rise the balance
    cannot cover is refused."""
    p: AmendParams = call.params
    if p.price is None and p.quantity is None:
        raise param_error(MANDATORY_PARAM, "price", "Send price and/or quantity.", True)
    market: Market = await call.services.catalog.market(p.symbol, tradex=True)
    ticks = 0 if p.price is None else market.ticks(p.price, tradex=True)
    lots = 0 if p.quantity is None else market.lots(p.quantity, tradex=True)
    return await _amend(call, p, ticks, lots)


async def _cancel_all(call: Call, account: int, instrument_id: int) -> tuple[list[int], bool]:
    services = call.services
    command_id = await idempotency.command_id(
        call, f"account:{account}", "CancelAllOrders", {"instrument": instrument_id},
    )  # fmt: skip
    command = CancelAllOrders(command_id, account, services.clock_ns(), instrument_id,
                              call.user.user_id)  # fmt: skip
    outcome = await services.accounts.execute(command, services.config.command_timeout_s)
    event = outcome.events[0]
    if type(event).__name__ != "CancelRequested":
        raise ApiError(CANCEL_REJECTED, rejection(event))
    ids = [e.order_id for e in outcome.events]
    open_rows = await services.fetch(
        lambda conn: services.ledger.open_orders(conn, account, instrument_id or None)
    )
    more = any(r["order_id"] > ids[-1] for r in open_rows) or len(ids) >= 100
    return ids, more


async def cancel_open_orders(call: Call) -> list[dict[str, Any]]:
    """Cancel every open order of a symbol (Binance). Answers the orders being cancelled
    (PENDING_CANCEL): every open order of the read model, and those of the processor's
    first chunk; no open order: -2011."""
    p: CancelAllParams = call.params
    services = call.services
    market = await services.catalog.market(p.symbol)
    account = await own_account(services, call.user, p.accountId)
    before = await services.fetch(
        lambda conn: services.ledger.open_orders(conn, account, market.instrument_id)
    )
    ids, _more = await _cancel_all(call, account, market.instrument_id)
    rows = {r["order_id"]: dict(r) for r in before}
    for order_id in ids:
        if order_id not in rows:
            recent = services.accounts.recent_order(order_id)
            if recent is not None:
                rows[order_id] = fmt.event_row(recent[1][0])
    found = []
    for order_id in sorted(rows):
        body = fmt.order(market, rows[order_id])
        body["status"] = "PENDING_CANCEL"
        body["origClientOrderId"] = body["clientOrderId"]
        found.append(body)
    return found


async def cancel_all(call: Call) -> dict[str, Any]:
    """Cancel every open order of the account (all instruments, or ``symbol``'s)."""
    p: TradexCancelAllParams = call.params
    services = call.services
    instrument_id = 0
    if p.symbol is not None:
        instrument_id = (await services.catalog.market(p.symbol, tradex=True)).instrument_id
    account = await own_account(services, call.user, p.accountId)
    ids, more = await _cancel_all(call, account, instrument_id)
    return {"accountId": account, "cancelling": ids, "more": more}


ENDPOINTS = [
    Endpoint("PUT", "/api/v3/order/amend/keepPriority", amend_keep_priority,
             "Reduce an order's quantity, keeping priority", TAG, AmendKeepPriorityParams,
             response=AmendedOrder, access=TRADER_TRADE, bucket="order", state_changing=True),
    Endpoint("DELETE", "/api/v3/openOrders", cancel_open_orders,
             "Cancel all open orders of a symbol", TAG, CancelAllParams,
             response=list[bm.Order], access=TRADER_TRADE, bucket="order",
             state_changing=True),
    Endpoint("POST", "/tradex/v1/orders/amend", amend, "Amend an order's price and/or quantity",
             TRADEX_TAG, AmendParams, response=AmendedOrder, access=TRADER_TRADE,
             bucket="order", state_changing=True),
    Endpoint("DELETE", "/tradex/v1/orders", cancel_all, "Cancel all open orders",
             TRADEX_TAG, TradexCancelAllParams, response=CancelAll, access=TRADER_TRADE,
             bucket="order", state_changing=True),
]  # fmt: skip
