"""Orders in the Binance dialect: place, query, cancel, cancel-replace, open orders, all orders.

Placing an order sends a ``PlaceOrder`` to the log and answers with the account
processor's outcome: accepted (status NEW, with the order id) or rejected (-2010 with the
reason). Matching happens after: the order's later states come from the read model
(GET /api/v3/order). Until the read model has the order, the command client's record of
the decision answers (read-your-writes). A cancel answers once the order has left the
book (status CANCELED, or FILLED if a fill won the race), or PENDING_CANCEL after
``cancel_wait_s``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, NamedTuple

from tradex.domain import CancelOrder, OrderKind, PlaceOrder, Side
from tradex.domain.types import Reason
from tradex.queries import binance_format as fmt
from tradex.queries import binance_models as bm
from tradex.queries import idempotency
from tradex.queries.auth import TRADER, TRADER_TRADE, own_account
from tradex.queries.errors import (
    CANCEL_REJECTED,
    CANCEL_REPLACE_FAILED,
    CANCEL_REPLACE_PARTIAL,
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
    return await _place(call, await _checked_order(call, call.params))


class _Checked(NamedTuple):
    """A new order's parameters checked against its market (nothing sent yet)."""

    params: bm.NewOrderParams
    market: Market
    account: int
    kind: OrderKind
    ticks: int
    lots: int


async def _checked_order(call: Call, p: bm.NewOrderParams) -> _Checked:
    """The parameter and filter checks of a new order (a clear error, nothing written)."""
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
    return _Checked(p, market, account, fmt.kind_of(p.type, p.timeInForce), ticks, lots)


async def _place(call: Call, checked: _Checked) -> dict[str, Any]:
    """Send a checked new order; its outcome (an ApiError when rejected)."""
    p, market, account, kind, ticks, lots = checked
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


async def cancel_replace(call: Call) -> dict[str, Any]:
    """Binance's cancel-replace: cancel an order (``cancelOrderId`` or
    ``cancelOrigClientOrderId``), then place a new one on the same symbol. The new order's
    parameters and filters are checked first (an error there changes nothing). The two are
    two commands, in that order (not atomic, as on Binance): STOP_ON_FAILURE places nothing
    when the cancel fails; ALLOW_FAILURE places the new order anyway. One failed: -2021
    (409) with both outcomes in ``data``; both: -2022 (400)."""
    p: bm.CancelReplaceParams = call.params
    if call.idempotency_key() is not None:
        raise param_error(MANDATORY_PARAM, "Idempotency-Key", "cancelReplace is two commands: "
                          "send cancelNewClientOrderId and newClientOrderId instead.", False)  # fmt: skip
    if p.cancelRestrictions is not None:
        raise param_error(PARAM_NOT_REQUIRED, "cancelRestrictions",
                          "Parameter 'cancelRestrictions' is not supported.", False)  # fmt: skip
    if p.cancelOrderId is None and p.cancelOrigClientOrderId is None:
        raise param_error(MANDATORY_PARAM, "cancelOrderId", "Either cancelOrderId or "
                          "cancelOrigClientOrderId must be sent.", False)  # fmt: skip
    new_params = bm.NewOrderParams.model_validate(
        p.model_dump(include=set(bm.NewOrderParams.model_fields))
    )
    checked = await _checked_order(call, new_params)
    cancel_params = bm.CancelParams(
        symbol=p.symbol, orderId=p.cancelOrderId, origClientOrderId=p.cancelOrigClientOrderId,
        newClientOrderId=p.cancelNewClientOrderId, accountId=p.accountId,
    )  # fmt: skip
    cancelled: dict[str, Any] | None = None
    cancel_error: ApiError | None = None
    try:
        cancelled = await cancel_order(dataclasses.replace(call, params=cancel_params))
    except ApiError as error:
        cancel_error = error
    if cancel_error is not None and p.cancelReplaceMode == "STOP_ON_FAILURE":
        raise _cancel_replace_error(cancel_error, None, "NOT_ATTEMPTED", None)
    placed: dict[str, Any] | None = None
    new_error: ApiError | None = None
    try:
        placed = await _place(dataclasses.replace(call, params=new_params), checked)
    except ApiError as error:
        new_error = error
    if cancel_error is None and new_error is None:
        return {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
                "cancelResponse": cancelled, "newOrderResponse": placed}  # fmt: skip
    raise _cancel_replace_error(cancel_error, cancelled, "FAILURE" if new_error else "SUCCESS",
                                new_error or placed)  # fmt: skip


def _cancel_replace_error(
    cancel_error: ApiError | None, cancelled: dict[str, Any] | None, new_result: str,
    new_outcome: ApiError | dict[str, Any] | None,
) -> ApiError:  # fmt: skip
    """The error of a cancel-replace that did not fully succeed, both outcomes in ``data``."""

    def outcome(found: ApiError | dict[str, Any] | None) -> dict[str, Any] | None:
        return {"code": found.code.code, "msg": found.msg} if isinstance(found, ApiError) else found

    cancel_ok = cancel_error is None
    partial = cancel_ok or new_result == "SUCCESS"
    code = CANCEL_REPLACE_PARTIAL if partial else CANCEL_REPLACE_FAILED
    return ApiError(code, data={
        "cancelResult": "SUCCESS" if cancel_ok else "FAILURE", "newOrderResult": new_result,
        "cancelResponse": cancelled if cancel_ok else outcome(cancel_error),
        "newOrderResponse": outcome(new_outcome),
    })  # fmt: skip


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
    ended = services.accounts.expect(account, f"end/{order_id}", one_event=True)
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
    Endpoint("POST", "/api/v3/order/cancelReplace", cancel_replace,
             "Cancel an order and place a new one", TAG, bm.CancelReplaceParams,
             response=bm.CancelReplace, access=TRADER_TRADE, bucket="order"),
    Endpoint("GET", "/api/v3/order", get_order, "Query an order", TAG, bm.OrderParams,
             response=bm.Order, access=TRADER, weight=4),
    Endpoint("DELETE", "/api/v3/order", cancel_order, "Cancel an order", TAG, bm.CancelParams,
             response=bm.Order, access=TRADER_TRADE, bucket="order", state_changing=True),
    Endpoint("GET", "/api/v3/openOrders", open_orders, "Open orders", TAG, bm.OpenOrdersParams,
             response=list[bm.Order], access=TRADER, weight=6),
    Endpoint("GET", "/api/v3/allOrders", all_orders, "All orders of a symbol", TAG,
             bm.AllOrdersParams, response=list[bm.Order], access=TRADER, weight=20),
]  # fmt: skip
