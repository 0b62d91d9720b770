"""Orders in the Binance dialect: place, query, cancel, open orders, all orders.

Placing an order sends a ``PlaceOrder`` to the log and answers with the account
processor's outcome: accepted (status NEW, with the order id) or rejected (-2010 with the
reason). Matching happens after: the order's later states come from the read model
(GET /api/v3/order). Until the read model has the order, the command client's record of
the decision answers (read-your-writes). A cancel answers once the order has left the
book (status CANCELED, or FILLED if a fill won the race), or PENDING_CANCEL after
``cancel_wait_s``.
"""

from __future__ import annotations

import re
from typing import Any

from tradex.domain import CancelOrder, OrderKind, PlaceOrder, Side
from tradex.domain.types import Reason
from tradex.queries import binance_format as fmt
from tradex.queries import binance_models as bm
from tradex.queries import idempotency
from tradex.queries.auth import TRADER, TRADER_TRADE, own_account
from tradex.queries.errors import (
    CANCEL_REJECTED,
    MANDATORY_PARAM,
    NEW_ORDER_REJECTED,
    NO_SUCH_ORDER,
    PARAM_NOT_REQUIRED,
    ApiError,
    param_error,
)
from tradex.queries.markets import PRICE_TICKS_MAX, Market
from tradex.queries.routing import Call, Endpoint

TAG = "Trading (Binance v3)"
REJECT_TEXT = {
    Reason.INSUFFICIENT_FUNDS: "Account has insufficient balance for requested action.",
    Reason.INSTRUMENT_HALTED: "Market is closed.",
    Reason.BELOW_MIN_NOTIONAL: "Filter failure: NOTIONAL",
    Reason.UNKNOWN_INSTRUMENT: "Invalid symbol.",
    Reason.OPEN_ORDERS_MAX: "Filter failure: MAX_NUM_ORDERS",
    Reason.UNKNOWN_ORDER: "Unknown order sent.",
    Reason.CANCEL_ALREADY_REQUESTED: "Unknown order sent.",
}
STATUS_FROM_BINANCE = {b: tradex for tradex, b in fmt.STATUS_TO_BINANCE.items()}
END_STATUS = {"CANCELLED": "CANCELED", "FILLED": "FILLED", "EXPIRED": "EXPIRED",
              "REJECTED": "REJECTED"}  # fmt: skip


FUNDS_DETAIL = re.compile(r"^(\d+) ([A-Z0-9]+) available, (\d+)( more)? needed$")


def funds_detail(detail: str, market: Market) -> str:
    """The account processor's ``INSUFFICIENT_FUNDS`` detail (minor units) in the asset's
    decimals, for a person: ``100000 USD available, 901800 needed`` -> ``1000.00 USD
    available, 9018.00 USD needed``; any other detail as it is."""
    found = FUNDS_DETAIL.match(detail)
    if found is None or found[2] not in (market.base, market.quote):
        return detail
    asset = found[2]
    have, need = market.fmt_amount(asset, int(found[1])), market.fmt_amount(asset, int(found[3]))
    return f"{have} {asset} available, {need} {asset}{found[4] or ''} needed"


def rejection(event: Any, market: Market | None = None) -> str:
    reason = Reason(event.reason)
    text = REJECT_TEXT.get(reason, "Order rejected.")
    detail = event.detail
    if detail and market is not None and reason == Reason.INSUFFICIENT_FUNDS:
        detail = funds_detail(detail, market)
    return f"{text} ({reason}: {detail})" if detail else f"{text} ({reason})"


async def protection_price(call: Call, market: Market, side: str) -> int:
    """A MARKET order's price limit (the hold is computed at it): the best opposite price
    moved by the instrument's price band (or 5 %) against the taker."""
    row = await call.services.market.market(market.instrument_id)
    best = int(row.get("best_ask" if side == "BUY" else "best_bid", 0))
    if best <= 0:
        best = int(row.get("last_price", 0))
    if best <= 0:
        raise ApiError(NEW_ORDER_REJECTED, "Market order rejected: no price to protect it "
                       "(empty book, no trade); send a LIMIT order or a price.", "type")  # fmt: skip
    bps = market.protection_bps
    if side == "BUY":
        return min(best + best * bps // 10_000, PRICE_TICKS_MAX)
    return max(best - best * bps // 10_000, 1)


async def new_order(call: Call) -> dict[str, Any]:
    """Place an order. ``newClientOrderId`` (or the Idempotency-Key header) is the command
    id: a retry returns the first outcome. Accepted: the order, status NEW. Rejected by the
    account processor: -2010 with the reason (insufficient funds, halted, …)."""
    p: bm.NewOrderParams = call.params
    for name in ("quoteOrderQty", "stopPrice", "icebergQty"):
        if getattr(p, name) is not None:
            raise param_error(PARAM_NOT_REQUIRED, name, f"Parameter '{name}' is not supported.",
                              False)  # fmt: skip
    market = await call.services.catalog.market(p.symbol)
    if p.quantity is None:
        raise param_error(MANDATORY_PARAM, "quantity", "Mandatory parameter 'quantity' was not "
                          "sent, was empty/null, or malformed.", False)  # fmt: skip
    lots = market.lots(p.quantity)
    if p.type == "MARKET":
        ticks = market.ticks(p.price) if p.price is not None else None
    else:
        if p.price is None:
            raise param_error(MANDATORY_PARAM, "price", "Mandatory parameter 'price' was not "
                              "sent, was empty/null, or malformed.", False)  # fmt: skip
        ticks = market.ticks(p.price)
        market.check_notional(ticks, lots)
    account = await own_account(call.services, call.user, p.accountId)
    if ticks is None:
        ticks = await protection_price(call, market, p.side)
    kind = fmt.kind_of(p.type, p.timeInForce)
    stp = fmt.STP_FROM_BINANCE[p.selfTradePreventionMode or "NONE"]
    fields = {"account": account, "instrument": market.instrument_id, "side": p.side,
              "kind": str(kind), "price": ticks if kind != OrderKind.MARKET or p.price else 0,
              "qty": lots, "stp": str(stp)}  # fmt: skip
    command_id = await idempotency.command_id(
        call, f"account:{account}", "PlaceOrder", fields, client_id=p.newClientOrderId,
        conflict=NEW_ORDER_REJECTED._replace(msg="Duplicate order sent."),
    )  # fmt: skip
    services = call.services
    command = PlaceOrder(command_id, account, services.clock_ns(), market.instrument_id,
                         Side(p.side), kind, ticks, lots, 0, stp, call.user.user_id)  # fmt: skip
    outcome = await services.accounts.execute(command, services.config.command_timeout_s)
    event = outcome.events[0]
    if type(event).__name__ != "OrderAccepted":
        raise ApiError(NEW_ORDER_REJECTED, rejection(event, market))
    body = fmt.order(market, fmt.event_row(event))
    return {**body, "transactTime": fmt.ms(event.event_time_ns), "fills": []}


async def _accounts(call: Call, account_id: int | None) -> set[int]:
    """The accounts the caller may read orders of (one when named or with an API key)."""
    if account_id is not None or call.user.key_account is not None:
        return {await own_account(call.services, call.user, account_id)}
    return set(await call.services.store.accounts_of(call.user.user_id))


async def find_order(call: Call, p: bm.OrderParams, market: Market) -> dict[str, Any]:
    """The caller's order by id or client id; anyone else's, or none: -2013 (404)."""
    if p.orderId is None and p.origClientOrderId is None:
        raise param_error(MANDATORY_PARAM, "orderId",
                          "Either orderId or origClientOrderId must be sent.", False)  # fmt: skip
    services = call.services
    allowed = await _accounts(call, p.accountId)
    row: Any = None
    if p.orderId is not None:
        row = await services.fetch(lambda conn: services.ledger.order(conn, p.orderId))
        if row is None:
            recent = services.accounts.recent_order(p.orderId)
            row = None if recent is None else fmt.event_row(recent[1][0])
    else:
        for account in sorted(allowed):
            row = await services.fetch(
                lambda conn, a=account: services.ledger.order_by_command(
                    conn, a, str(p.origClientOrderId)
                )
            )  # fmt: skip
            if row is None:
                recent = services.accounts.recent_outcome(account, str(p.origClientOrderId))
                if recent and hasattr(recent[0], "order_id") and hasattr(recent[0], "side"):
                    row = fmt.event_row(recent[0])
            if row is not None:
                break
    if (
        row is None
        or row["account_id"] not in allowed
        or row["instrument_id"] != market.instrument_id
    ):
        raise ApiError(NO_SUCH_ORDER)
    if p.origClientOrderId is not None and row["command_id"] != p.origClientOrderId:
        raise ApiError(NO_SUCH_ORDER)
    return dict(row)


async def get_order(call: Call) -> dict[str, Any]:
    """One order of the caller (by orderId or origClientOrderId), as the read model has it."""
    p: bm.OrderParams = call.params
    market = await call.services.catalog.market(p.symbol)
    return fmt.order(market, await find_order(call, p, market))


async def cancel_order(call: Call) -> dict[str, Any]:
    """Cancel an order; answers when it has left the book (CANCELED, or FILLED if a fill came
    first) or PENDING_CANCEL after a short wait. Not open any more: -2011."""
    p: bm.CancelParams = call.params
    services = call.services
    market = await services.catalog.market(p.symbol)
    row = await find_order(call, p, market)
    account, order_id = row["account_id"], row["order_id"]
    command_id = await idempotency.command_id(
        call, f"account:{account}", "CancelOrder", {"order": order_id},
        client_id=p.newClientOrderId,
    )  # fmt: skip
    ended = services.accounts.expect(account, f"end/{order_id}")
    command = CancelOrder(command_id, account, services.clock_ns(), order_id, call.user.user_id)
    outcome = await services.accounts.execute(command, services.config.command_timeout_s)
    event = outcome.events[0]
    if type(event).__name__ != "CancelRequested":
        await services.accounts.outcome_of(ended, 0)
        raise ApiError(CANCEL_REJECTED, rejection(event))
    end = await services.accounts.outcome_of(ended, services.config.cancel_wait_s)
    body = fmt.order(market, row)
    body["status"] = "PENDING_CANCEL"
    if end is not None:
        body["status"] = END_STATUS.get(str(end.events[-1].end_reason), "CANCELED")
        body["isWorking"] = False
        body["updateTime"] = fmt.ms(end.events[-1].event_time_ns)
    body["origClientOrderId"] = body["clientOrderId"]
    body["transactTime"] = services.clock_ns() // 1_000_000
    return body


async def open_orders(call: Call) -> list[dict[str, Any]]:
    """The caller's open orders (one symbol, or all)."""
    p: bm.OpenOrdersParams = call.params
    services = call.services
    instrument = None
    if p.symbol is not None:
        instrument = (await services.catalog.market(p.symbol)).instrument_id
    found = []
    for account in sorted(await _accounts(call, p.accountId)):
        rows = await services.fetch(
            lambda conn, a=account: services.ledger.open_orders(conn, a, instrument)
        )
        for row in rows:
            market = await services.catalog.by_instrument(row["instrument_id"])
            if market is not None:
                found.append(fmt.order(market, row))
    return found


async def all_orders(call: Call) -> list[dict[str, Any]]:
    """The caller's orders of one symbol, oldest first: from ``orderId`` on, else the
    newest ``limit`` (up to ``toOrderId``: the page before); ``startTime``/``endTime``
    bound the creation time; ``side`` and ``status`` filter (TradeX)."""
    p: bm.AllOrdersParams = call.params
    services = call.services
    market = await services.catalog.market(p.symbol)
    account = await own_account(services, call.user, p.accountId)
    rows = await services.fetch(
        lambda conn: services.ledger.orders_page(
            conn, account, instrument_id=market.instrument_id, from_order_id=p.orderId,
            start_ns=None if p.startTime is None else p.startTime * 1_000_000,
            end_ns=None if p.endTime is None else p.endTime * 1_000_000 + 999_999,
            limit=p.limit, to_order_id=p.toOrderId, side=p.side,
            status=None if p.status is None else STATUS_FROM_BINANCE[p.status],
        )
    )  # fmt: skip
    return [fmt.order(market, row) for row in rows]


ENDPOINTS = [
    Endpoint("POST", "/api/v3/order", new_order, "Place an order", TAG, bm.NewOrderParams,
             response=bm.NewOrder, access=TRADER_TRADE, bucket="order", state_changing=True),
    Endpoint("GET", "/api/v3/order", get_order, "Query an order", TAG, bm.OrderParams,
             response=bm.Order, access=TRADER, weight=4),
    Endpoint("DELETE", "/api/v3/order", cancel_order, "Cancel an order", TAG, bm.CancelParams,
             response=bm.Order, access=TRADER_TRADE, bucket="order", state_changing=True),
    Endpoint("GET", "/api/v3/openOrders", open_orders, "Open orders", TAG, bm.OpenOrdersParams,
             response=list[bm.Order], access=TRADER, weight=6),
    Endpoint("GET", "/api/v3/allOrders", all_orders, "All orders of a symbol", TAG,
             bm.AllOrdersParams, response=list[bm.Order], access=TRADER, weight=20),
]  # fmt: skip
