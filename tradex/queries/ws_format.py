"""WebSocket messages built from the read model's entries (pure: no I/O).

Numbers on the wire are decimal strings (as in REST), times ms since the epoch. TradeX
messages carry the channel's sequence (``seq``, and ``firstSeq`` for a batch); Binance
messages carry Binance's fields (depth updates ``U``/``u``/``pu`` = the ``book_seq`` of
the first and last change and the one before the first).
"""

from __future__ import annotations

import json
from typing import Any

from tradex.projections import redis_layout as layout
from tradex.projections.redis_read import Bbo
from tradex.queries.binance_format import book_ticker, ms
from tradex.queries.markets import Market, fmt_amount

Entry = tuple[int, dict[str, Any]]
MINUTE_S = 60


def dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def wrap(stream: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    """Binance's combined-stream frame (``/stream?streams=``), or the payload alone."""
    return payload if stream is None else {"stream": stream, "data": payload}


def _levels(market: Market, entries: list[Entry]) -> tuple[list[list[str]], list[list[str]]]:
    bids: list[list[str]] = []
    asks: list[list[str]] = []
    for _seq, change in entries:
        side = bids if change["side"] == "BUY" else asks
        side.append([market.fmt_price(change["price"]), market.fmt_qty(change["qty"])])
    return bids, asks


def book_snapshot(market: Market, seq: int, bids: Any, asks: Any) -> dict[str, Any]:
    return {
        "type": "snapshot", "channel": "book", "symbol": market.binance, "seq": seq,
        "bids": [[market.fmt_price(p), market.fmt_qty(q)] for p, q in bids],
        "asks": [[market.fmt_price(p), market.fmt_qty(q)] for p, q in asks],
    }  # fmt: skip


def book_update(market: Market, entries: list[Entry]) -> dict[str, Any]:
    """Consecutive level changes (each a level's new total; "0": the level is gone)."""
    bids, asks = _levels(market, entries)
    return {"type": "update", "channel": "book", "symbol": market.binance,
            "firstSeq": entries[0][0], "seq": entries[-1][0], "bids": bids, "asks": asks}  # fmt: skip


def depth_update(market: Market, entries: list[Entry], now_ms: int) -> dict[str, Any]:
    """Binance's ``depthUpdate``: apply it when ``U <= lastUpdateId + 1 <= u`` (first one
    after the /api/v3/depth snapshot), then each next one has ``U == previous u + 1``."""
    bids, asks = _levels(market, entries)
    first, last = entries[0][0], entries[-1][0]
    return {"e": "depthUpdate", "E": now_ms, "s": market.binance, "U": first, "u": last,
            "pu": first - 1, "b": bids, "a": asks}  # fmt: skip


def _trade(market: Market, seq: int, t: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "id": t["trade_id"], "price": market.fmt_price(t["price"]),
            "qty": market.fmt_qty(t["qty"]), "takerSide": t["taker_side"],
            "time": ms(t["time_ns"])}  # fmt: skip


def trades(market: Market, entries: list[Entry]) -> dict[str, Any]:
    return {"type": "trades", "channel": "trades", "symbol": market.binance,
            "firstSeq": entries[0][0], "seq": entries[-1][0],
            "trades": [_trade(market, seq, t) for seq, t in entries]}  # fmt: skip


def binance_trade(market: Market, t: dict[str, Any]) -> dict[str, Any]:
    time_ms = ms(t["time_ns"])
    return {"e": "trade", "E": time_ms, "s": market.binance, "t": t["trade_id"],
            "p": market.fmt_price(t["price"]), "q": market.fmt_qty(t["qty"]), "T": time_ms,
            "m": t["taker_side"] == "SELL", "M": True}  # fmt: skip


def binance_agg_trade(market: Market, t: dict[str, Any]) -> dict[str, Any]:
    time_ms = ms(t["time_ns"])
    return {"e": "aggTrade", "E": time_ms, "s": market.binance, "a": t["trade_id"],
            "p": market.fmt_price(t["price"]), "q": market.fmt_qty(t["qty"]),
            "f": t["trade_id"], "l": t["trade_id"], "T": time_ms,
            "m": t["taker_side"] == "SELL", "M": True}  # fmt: skip


def binance_ticker(body: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A /api/v3/ticker/24hr body as Binance's ``24hrTicker`` event."""
    return {
        "e": "24hrTicker", "E": now_ms, "s": body["symbol"], "p": body["priceChange"],
        "P": body["priceChangePercent"], "w": body["weightedAvgPrice"],
        "x": body["prevClosePrice"], "c": body["lastPrice"], "Q": body["lastQty"],
        "b": body["bidPrice"], "B": body["bidQty"], "a": body["askPrice"], "A": body["askQty"],
        "o": body["openPrice"], "h": body["highPrice"], "l": body["lowPrice"],
        "v": body["volume"], "q": body["quoteVolume"], "O": body["openTime"],
        "C": body["closeTime"], "F": body["firstId"], "L": body["lastId"], "n": body["count"],
    }  # fmt: skip


def binance_mini_ticker(body: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A /api/v3/ticker/24hr body as Binance's ``24hrMiniTicker`` event."""
    return {
        "e": "24hrMiniTicker", "E": now_ms, "s": body["symbol"], "c": body["lastPrice"],
        "o": body["openPrice"], "h": body["highPrice"], "l": body["lowPrice"],
        "v": body["volume"], "q": body["quoteVolume"],
    }  # fmt: skip


def binance_book_ticker(market: Market, bbo: Bbo) -> dict[str, Any]:
    """Binance's ``bookTicker`` stream: the REST book ticker's values, ``u`` the book's
    sequence (the depth streams' update id)."""
    top = book_ticker(market, bbo)
    return {"u": bbo.book_seq, "s": top["symbol"], "b": top["bidPrice"], "B": top["bidQty"],
            "a": top["askPrice"], "A": top["askQty"]}  # fmt: skip


def kline_of(
    candles: dict[int, list[int]], last_trade_time_ns: int, interval_s: int
) -> tuple[int, list[int]] | None:
    """The candle of ``interval_s`` holding the last trade, merged from the one-minute
    candles of the ticker's window (every interval up to a day fits in it): (open time
    ns, :data:`.redis_layout.CANDLE_FIELDS`), or None before the first trade."""
    assert interval_s % MINUTE_S == 0, interval_s
    assert interval_s <= layout.TICKER_MINUTES * MINUTE_S, interval_s
    minutes = interval_s // MINUTE_S
    start = last_trade_time_ns // layout.MINUTE_NS // minutes * minutes
    inside = [candles[m] for m in sorted(candles) if start <= m < start + minutes]
    if not inside:
        return None
    merged = [
        inside[0][0], max(c[1] for c in inside), min(c[2] for c in inside), inside[-1][3],
        sum(c[4] for c in inside), sum(c[5] for c in inside), sum(c[6] for c in inside),
    ]  # fmt: skip
    return start * layout.MINUTE_NS, merged


def candle(market: Market, interval: str, interval_s: int, seq: int, opened_ns: int,
           c: list[int], closed: bool) -> dict[str, Any]:  # fmt: skip
    """TradeX's ``candle``; ``closed``: its interval has ended, this is its final state
    (:mod:`.ws_kline`)."""
    open_ms = ms(opened_ns)
    return {"type": "candle", "channel": f"candles:{interval}", "symbol": market.binance,
            "seq": seq, "openTime": open_ms, "closeTime": open_ms + interval_s * 1_000 - 1,
            "open": market.fmt_price(c[0]), "high": market.fmt_price(c[1]),
            "low": market.fmt_price(c[2]), "close": market.fmt_price(c[3]),
            "volume": market.fmt_qty(c[4]), "quoteVolume": market.fmt_notional(c[5]),
            "trades": c[6], "closed": closed}  # fmt: skip


def binance_kline(
    market: Market, interval: str, interval_s: int, opened_ns: int, c: list[int],
    last_trade_id: int, now_ms: int, closed: bool,
) -> dict[str, Any]:  # fmt: skip
    """Binance's ``kline`` event; ``closed`` (``x``): its interval has ended, this is its
    final state (:mod:`.ws_kline`)."""
    open_ms = ms(opened_ns)
    return {"e": "kline", "E": now_ms, "s": market.binance, "k": {
        "t": open_ms, "T": open_ms + interval_s * 1_000 - 1, "s": market.binance,
        "i": interval, "f": -1, "L": last_trade_id, "o": market.fmt_price(c[0]),
        "c": market.fmt_price(c[3]), "h": market.fmt_price(c[1]), "l": market.fmt_price(c[2]),
        "v": market.fmt_qty(c[4]), "n": c[6], "x": closed, "q": market.fmt_notional(c[5]),
        "V": "0", "Q": "0", "B": "0"}}  # fmt: skip


# the orders channel's events; every entry that changed balances (an amend's OrderAmended
# and AmendSettled too) reaches the balances channel
ORDER_EVENTS = ("OrderAccepted", "OrderRejected", "CancelRequested", "HoldReleased")
FILL_EVENTS = ("FillSettled",)


def _balances(scales: dict[str, int], balances: dict[str, tuple[int, int]]) -> dict[str, Any]:
    return {
        asset: {"free": fmt_amount(available, scales[asset]),
                "locked": fmt_amount(held, scales[asset])}
        for asset, (available, held) in sorted(balances.items())
    }  # fmt: skip


def balances(account_id: int, seq: int, scales: dict[str, int],
             values: dict[str, tuple[int, int]], snapshot: bool) -> dict[str, Any]:  # fmt: skip
    return {"type": "snapshot" if snapshot else "balances", "channel": "balances",
            "accountId": account_id, "seq": seq, "balances": _balances(scales, values)}  # fmt: skip


def account_event(
    channel: str, account_id: int, seq: int, fields: dict[str, Any], market: Market | None,
    scales: dict[str, int],
) -> dict[str, Any]:  # fmt: skip
    """An account entry for the ``orders`` or ``fills`` channel: the event's fields with
    prices, quantities and amounts as decimals (ticks/lots need the instrument)."""
    out: dict[str, Any] = {"type": "order" if channel == "orders" else "fill",
                           "channel": channel, "accountId": account_id, "seq": seq,
                           "event": fields["type"]}  # fmt: skip
    for name, value in fields.items():
        if name in ("type", "balances", "event_time_ns"):
            continue
        key = _camel(name)
        if name == "price" and market is not None:
            value = market.fmt_price(value)
        elif name == "qty" and market is not None:
            value = market.fmt_qty(value)
        elif name == "fee" and market is not None:
            value, out["feeAsset"] = market.fmt_quote(value), market.quote
        elif name == "amount" and fields.get("asset") in scales:
            value = fmt_amount(value, scales[fields["asset"]])
        elif name == "instrument_id" and market is not None:
            out["symbol"] = market.binance
        out[key] = value
    out["time"] = ms(fields.get("event_time_ns"))
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
