"""Read-model rows and events in Binance's shapes (decimal strings, ms, Binance enums)."""

from __future__ import annotations

from typing import Any

from tradex.domain.types import OrderKind, StpMode
from tradex.projections.redis_read import Bbo, Book
from tradex.queries.markets import Market

NS_PER_MS = 1_000_000
# TradeX order kind <-> Binance (type, timeInForce)
KIND_TO_BINANCE = {
    "GTC": ("LIMIT", "GTC"), "IOC": ("LIMIT", "IOC"), "FOK": ("LIMIT", "FOK"),
    "POST_ONLY": ("LIMIT_MAKER", "GTC"), "MARKET": ("MARKET", "GTC"),
}  # fmt: skip
STP_FROM_BINANCE = {
    "NONE": StpMode.NONE, "EXPIRE_TAKER": StpMode.CANCEL_TAKER,
    "EXPIRE_MAKER": StpMode.CANCEL_MAKER, "EXPIRE_BOTH": StpMode.CANCEL_BOTH,
    "DECREMENT": StpMode.DECREMENT,
}  # fmt: skip
STP_TO_BINANCE = {str(mode): name for name, mode in STP_FROM_BINANCE.items()}
STATUS_TO_BINANCE = {
    "NEW": "NEW", "PARTIALLY_FILLED": "PARTIALLY_FILLED", "FILLED": "FILLED",
    "CANCELLED": "CANCELED", "EXPIRED": "EXPIRED", "REJECTED": "REJECTED",
}  # fmt: skip
OPEN = ("NEW", "PARTIALLY_FILLED")


def kind_of(order_type: str, time_in_force: str | None) -> OrderKind:
    if order_type == "MARKET":
        return OrderKind.MARKET
    if order_type == "LIMIT_MAKER":
        return OrderKind.POST_ONLY
    return OrderKind(time_in_force or "GTC")


def ms(time_ns: int | None) -> int:
    return (time_ns or 0) // NS_PER_MS


def order(market: Market, row: Any) -> dict[str, Any]:
    """A row of the ``orders`` read model (or :func:`accepted_row`) as a Binance order."""
    order_type, tif = KIND_TO_BINANCE[row["kind"]]
    price = row["amended_price"] or row["price"] or 0
    qty = row["amended_qty"] or row["qty"] or 0
    status = STATUS_TO_BINANCE[row["status"]]
    created, updated = ms(row["created_time_ns"]), ms(row["updated_time_ns"])
    return {
        "symbol": market.binance,
        "orderId": row["order_id"],
        "orderListId": -1,
        "clientOrderId": row["command_id"] or "",
        "price": market.fmt_price(0 if order_type == "MARKET" else price),
        "origQty": market.fmt_qty(qty),
        "executedQty": market.fmt_qty(row["filled_qty"]),
        "cummulativeQuoteQty": market.fmt_notional(row["filled_notional"]),
        "status": status,
        "timeInForce": tif,
        "type": order_type,
        "side": row["side"],
        "stopPrice": market.fmt_price(0),
        "icebergQty": market.fmt_qty(0),
        "time": created,
        "updateTime": max(updated, created),
        "isWorking": status in OPEN,
        "workingTime": created if status in OPEN else -1,
        "origQuoteOrderQty": market.fmt_quote(0),
        "selfTradePreventionMode": STP_TO_BINANCE.get(row["stp_mode"] or "NONE", "NONE"),
        "accountId": row["account_id"],
        "rejectReason": row["reject_reason"] or row["engine_end_reason"] or None,
    }


def event_row(event: Any) -> dict[str, Any]:
    """An ``orders`` row as far as the account processor's decision tells it (the read
    model may not have the order yet)."""
    rejected = type(event).__name__ == "OrderRejected"
    return {
        "order_id": event.order_id, "account_id": event.account_id,
        "instrument_id": event.instrument_id, "side": str(event.side), "kind": str(event.kind),
        "price": event.price, "qty": event.qty, "amended_price": None, "amended_qty": None,
        "command_id": event.command_id, "status": "REJECTED" if rejected else "NEW",
        "filled_qty": 0, "filled_notional": 0, "created_time_ns": event.event_time_ns,
        "updated_time_ns": event.event_time_ns,
        "reject_reason": str(event.reason) if rejected else None, "engine_end_reason": None,
        "stp_mode": None if rejected else str(event.stp_mode),
    }  # fmt: skip


def trade(market: Market, row: Any) -> dict[str, Any]:
    """A trade of the Redis read model (:class:`TradeRow`) in /api/v3/trades' shape."""
    return {
        "id": row.trade_id,
        "price": market.fmt_price(row.price),
        "qty": market.fmt_qty(row.qty),
        "quoteQty": market.fmt_notional(row.price * row.qty),
        "time": ms(row.time_ns),
        "isBuyerMaker": row.taker_side == "SELL",
        "isBestMatch": True,
    }


def agg_trade(market: Market, row: Any) -> dict[str, Any]:
    """Every TradeX trade is its own aggregate (one taker, one maker, one price)."""
    return {
        "a": row.trade_id, "p": market.fmt_price(row.price), "q": market.fmt_qty(row.qty),
        "f": row.trade_id, "l": row.trade_id, "T": ms(row.time_ns),
        "m": row.taker_side == "SELL", "M": True,
    }  # fmt: skip


def my_trade(market: Market, row: Any) -> dict[str, Any]:
    """A row of the ``fills`` read model in /api/v3/myTrades' shape."""
    return {
        "symbol": market.binance,
        "id": row["trade_id"],
        "orderId": row["order_id"],
        "orderListId": -1,
        "price": market.fmt_price(row["price"]),
        "qty": market.fmt_qty(row["qty"]),
        "quoteQty": market.fmt_quote(row["notional"]),
        "commission": market.fmt_amount(row["fee_asset"], row["fee"]),
        "commissionAsset": row["fee_asset"],
        "time": ms(row["event_time_ns"]),
        "isBuyer": row["side"] == "BUY",
        "isMaker": row["liquidity"] == "MAKER",
        "isBestMatch": True,
    }


def kline(market: Market, row: Any, interval_s: int) -> list[int | str]:
    opened = int(row["bucket"].timestamp() * 1_000)
    return [
        opened,
        market.fmt_price(row["open"]),
        market.fmt_price(row["high"]),
        market.fmt_price(row["low"]),
        market.fmt_price(row["close"]),
        market.fmt_qty(row["volume"]),
        opened + interval_s * 1_000 - 1,
        market.fmt_notional(int(row["quote_volume"])),
        int(row["trades"]),
        market.fmt_qty(0),  # taker buy base volume: not kept by the candle model
        market.fmt_notional(0),  # taker buy quote volume: not kept either
        "0",
    ]


def depth(market: Market, book: Book) -> dict[str, Any]:
    """The book's best levels as /api/v3/depth answers them (and the partial book depth
    streams, ``<symbol>@depth<N>``, send them)."""
    return {
        "lastUpdateId": book.book_seq,
        "bids": [[market.fmt_price(p), market.fmt_qty(q)] for p, q in book.bids],
        "asks": [[market.fmt_price(p), market.fmt_qty(q)] for p, q in book.asks],
    }


def book_ticker(market: Market, bbo: Bbo) -> dict[str, Any]:
    """/api/v3/ticker/bookTicker: the best bid and ask with their quantities."""
    return {
        "symbol": market.binance, "bidPrice": market.fmt_price(bbo.bid),
        "bidQty": market.fmt_qty(bbo.bid_qty), "askPrice": market.fmt_price(bbo.ask),
        "askQty": market.fmt_qty(bbo.ask_qty),
    }  # fmt: skip
