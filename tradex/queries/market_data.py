"""Public market data in the Binance dialect: ping, time, exchangeInfo, depth, trades,
aggTrades, klines, ticker/24hr. Books, trades and tickers come from the Redis read model,
candles from the timescale model, instruments from the reference data both keep."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any, get_args

from starlette.responses import Response

from tradex.domain.types import INT64_MAX
from tradex.projections import redis_layout as layout
from tradex.projections.redis_read import AsyncMarketReader, Channel
from tradex.projections.timescale import INTERVALS_BY_NAME
from tradex.queries import binance_format as fmt
from tradex.queries import binance_models as bm
from tradex.queries.markets import PRICE_TICKS_MAX, Market
from tradex.queries.markets import fmt as fmt_decimal
from tradex.queries.routing import Call, Endpoint

TAG = "Market data (Binance v3)"
STP_MODES = list(fmt.STP_FROM_BINANCE)  # Binance's names of the modes served
assert set(STP_MODES) == set(get_args(bm.StpModeName)), "the modes served and accepted differ"


async def ping(call: Call) -> dict[str, Any]:
    """Answers {} when the API is up."""
    return {}


async def server_time(call: Call) -> dict[str, Any]:
    return {"serverTime": call.services.clock_ns() // 1_000_000}


def symbol_info(market: Market) -> dict[str, Any]:
    return {
        "symbol": market.binance,
        "status": "TRADING" if market.status == "TRADING" else "HALT",
        "baseAsset": market.base, "baseAssetPrecision": market.base_scale,
        "quoteAsset": market.quote, "quotePrecision": market.quote_scale,
        "quoteAssetPrecision": market.quote_scale, "baseCommissionPrecision": market.base_scale,
        "quoteCommissionPrecision": market.quote_scale,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": False, "allowTrailingStop": False,
        "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": market.fmt_price(1),
             "maxPrice": market.fmt_price(PRICE_TICKS_MAX), "tickSize": market.fmt_price(1)},
            {"filterType": "LOT_SIZE", "minQty": market.fmt_qty(1),
             "maxQty": market.fmt_qty(market.lots_max), "stepSize": market.fmt_qty(1)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": market.fmt_qty(1),
             "maxQty": market.fmt_qty(market.lots_max), "stepSize": market.fmt_qty(1)},
            {"filterType": "NOTIONAL", "minNotional": market.fmt_quote(market.min_notional),
             "applyMinToMarket": True, "maxNotional": market.fmt_quote(INT64_MAX),
             "applyMaxToMarket": False, "avgPriceMins": 0},
        ],
        "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": STP_MODES,
        "tradexSymbol": market.symbol, "tradexInstrumentId": market.instrument_id,
        "makerFeePpm": market.maker_fee_ppm, "takerFeePpm": market.taker_fee_ppm,
        "tradexPriceBandBps": market.price_band_bps,
        "tradexMarketProtectionBps": market.protection_bps,
    }  # fmt: skip


def rate_limits(call: Call) -> list[dict[str, Any]]:
    found = []
    for limit in call.services.config.rate_limits:
        kind = {"read": "REQUEST_WEIGHT", "order": "ORDERS", "auth": "RAW_REQUESTS"}[limit.name]
        found.append({"rateLimitType": kind, "interval": "SECOND", "intervalNum": limit.window_s,
                      "limit": limit.limit})  # fmt: skip
    return found


async def exchange_info(call: Call) -> dict[str, Any]:
    """Every instrument (or one) with its filters: PRICE_FILTER (tick), LOT_SIZE (lot),
    NOTIONAL (min notional), from the instrument's tick and lot sizes and asset scales."""
    params: bm.ExchangeInfoParams = call.params
    if params.symbol is not None:
        markets = [await call.services.catalog.market(params.symbol)]
    else:
        markets = await call.services.catalog.markets()
    return {
        "timezone": "UTC", "serverTime": call.services.clock_ns() // 1_000_000,
        "rateLimits": rate_limits(call), "exchangeFilters": [],
        "symbols": [symbol_info(m) for m in markets],
    }  # fmt: skip


class AnswerCache:
    """Serialized answers of the hot public reads (depth, ticker), each valid while the
    read model's sequences it was built from are unchanged: a request reads the market
    row (one small script) and, when nothing moved, answers the stored bytes without
    reading and formatting the book again. Bounded (``entries_max``), per worker."""

    def __init__(self, entries_max: int = 4_096) -> None:
        assert entries_max > 0, entries_max
        self.entries_max = entries_max
        self.entries: dict[tuple[Any, ...], tuple[tuple[int, ...], bytes]] = {}

    def get(self, key: tuple[Any, ...], seqs: tuple[int, ...]) -> bytes | None:
        found = self.entries.get(key)
        return found[1] if found is not None and found[0] == seqs else None

    def put(self, key: tuple[Any, ...], seqs: tuple[int, ...], body: bytes) -> None:
        if key not in self.entries and len(self.entries) >= self.entries_max:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = (seqs, body)


CACHE = AnswerCache()


def _json(content: Any) -> bytes:
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


async def _seqs(call: Call, instrument_id: int, trades: bool) -> tuple[int, ...] | None:
    """The book's (and trades') newest sequence as the worker's own followers of the Redis
    streams know it (no read per request), or None without a fan-out."""
    fanout = call.services.fanout
    if fanout is None:
        return None
    reader = call.services.market

    async def book_head() -> int:
        return int((await reader.market(instrument_id)).get("book_seq", 0))

    async def trade_head() -> int:
        return int((await reader.market(instrument_id)).get("trade_seq", 0))

    book = await fanout.watch(Channel.book(instrument_id), book_head)
    if not trades:
        return (book.pos,)
    return book.pos, (await fanout.watch(Channel.trades(instrument_id), trade_head)).pos


async def depth(call: Call) -> Response:
    """The L2 book; ``lastUpdateId`` is its ``book_seq`` (the WebSocket depth updates'
    sequence). Answered from :data:`CACHE` while the book's sequence is unchanged."""
    params: bm.DepthParams = call.params
    market = await call.services.catalog.market(params.symbol)
    key = ("depth", market.instrument_id, params.limit)
    seqs = await _seqs(call, market.instrument_id, trades=False)
    body = None if seqs is None else CACHE.get(key, seqs)
    if body is None:
        book = await call.services.market.book(market.instrument_id, depth=params.limit)
        body = _json(fmt.depth(market, book))
        CACHE.put(key, (book.book_seq,), body)
    return Response(body, media_type="application/json")


async def trades(call: Call) -> list[dict[str, Any]]:
    """The most recent trades (at most 1,000 are kept), oldest first."""
    params: bm.TradesParams = call.params
    market = await call.services.catalog.market(params.symbol)
    rows = await call.services.market.trades(market.instrument_id, params.limit)
    return [fmt.trade(market, row) for row in reversed(rows)]


async def agg_trades(call: Call) -> list[dict[str, Any]]:
    """Recent trades as aggregates (each TradeX trade is one), oldest first; ``fromId`` and
    the time range filter the 1,000 most recent."""
    params: bm.AggTradesParams = call.params
    market = await call.services.catalog.market(params.symbol)
    rows = list(reversed(await call.services.market.trades(market.instrument_id, 1_000)))
    if params.fromId is not None:
        rows = [r for r in rows if r.trade_id >= params.fromId]
    if params.startTime is not None:
        rows = [r for r in rows if fmt.ms(r.time_ns) >= params.startTime]
    if params.endTime is not None:
        rows = [r for r in rows if fmt.ms(r.time_ns) <= params.endTime]
    rows = (
        rows[: params.limit]
        if params.fromId is not None or params.startTime
        else rows[-params.limit :]
    )
    return [fmt.agg_trade(market, row) for row in rows]


async def klines(call: Call) -> list[list[int | str]]:
    """Candles (1m, 5m, 15m, 1h, 4h, 1d; UTC, aligned to the epoch). Taker buy volumes are
    not kept by the candle model and read 0."""
    params: bm.KlinesParams = call.params
    market = await call.services.catalog.market(params.symbol)
    start = None if params.startTime is None else params.startTime * 1_000_000
    end = None if params.endTime is None else params.endTime * 1_000_000
    rows = await call.services.fetch(
        lambda conn: call.services.candles.candles(
            conn, market.instrument_id, params.interval, start_ns=start, end_ns=end,
            limit=params.limit,
        )
    )  # fmt: skip
    seconds = INTERVALS_BY_NAME[params.interval].seconds
    return [fmt.kline(market, row, seconds) for row in rows]


async def ticker_of(call: Call, market: Market) -> dict[str, Any]:
    return await ticker_body(call.services.market, market)


async def ticker_body(
    reader: AsyncMarketReader, market: Market, row: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The 24 h ticker in /api/v3/ticker/24hr's shape (the WebSocket's too); ``row``: the
    market row when the caller has read it already."""
    ticker = await reader.ticker(market.instrument_id)
    if row is None:
        row = await reader.market(market.instrument_id)
    price = market.fmt_price
    if ticker is None or ticker.volume == 0:
        change = percent = average = "0"
        opened = high = low = last = volume = quote = "0"
        open_ms = close_ms = count = 0
    else:
        change, opened, high, low = (price(ticker.change), price(ticker.open),
                                     price(ticker.high), price(ticker.low))  # fmt: skip
        last, volume = price(ticker.last), market.fmt_qty(ticker.volume)
        quote = market.fmt_notional(ticker.quote_volume)
        percent = fmt_decimal(Fraction(ticker.change * 100, ticker.open), 3) if ticker.open else "0"
        avg = Fraction(ticker.quote_volume, ticker.volume) * market.price_step
        average = fmt_decimal(avg, market.price_decimals + 2)
        open_ms, close_ms, count = (
            fmt.ms(ticker.window_start_ns),
            fmt.ms(ticker.window_end_ns) - 1,
            ticker.trades,
        )
    return {
        "symbol": market.binance, "priceChange": change, "priceChangePercent": percent,
        "weightedAvgPrice": average, "prevClosePrice": opened, "lastPrice": last,
        "lastQty": market.fmt_qty(int(row.get("last_qty", 0))),
        "bidPrice": price(int(row.get("best_bid", 0))),
        "bidQty": market.fmt_qty(int(row.get("best_bid_qty", 0))),
        "askPrice": price(int(row.get("best_ask", 0))),
        "askQty": market.fmt_qty(int(row.get("best_ask_qty", 0))),
        "openPrice": opened, "highPrice": high, "lowPrice": low, "volume": volume,
        "quoteVolume": quote, "openTime": open_ms, "closeTime": max(close_ms, 0),
        "firstId": -1, "lastId": int(row.get("last_trade_id", -1)) if count else -1,
        "count": count,
    }  # fmt: skip


async def ticker_24hr(call: Call) -> Any:
    """The 24 h window ending with the instrument's last trade (docs/redis.md); one symbol,
    or every one as a list."""
    params: bm.TickerParams = call.params
    if params.symbol is not None:
        market = await call.services.catalog.market(params.symbol)
        reader = call.services.market
        key = ("ticker", market.instrument_id)
        seqs = await _seqs(call, market.instrument_id, trades=True)
        body = None if seqs is None else CACHE.get(key, seqs)
        if body is None:
            row = await reader.market(market.instrument_id)
            body = _json(await ticker_body(reader, market, row))
            CACHE.put(key, (int(row.get("book_seq", 0)), int(row.get("trade_seq", 0))), body)
        return Response(body, media_type="application/json")
    return [await ticker_of(call, m) for m in await call.services.catalog.markets()]


async def ticker_price(call: Call) -> Any:
    """The last trade's price (Binance's symbol price ticker; "0" before the first trade);
    one symbol, or every one as a list."""
    params: bm.TickerParams = call.params
    reader = call.services.market

    async def price(market: Market) -> dict[str, str]:
        row = await reader.market(market.instrument_id)
        return {"symbol": market.binance, "price": market.fmt_price(int(row.get("last_price", 0)))}

    if params.symbol is not None:
        return await price(await call.services.catalog.market(params.symbol))
    return [await price(m) for m in await call.services.catalog.markets()]


AVG_PRICE_MINUTES = 5


async def avg_price(call: Call) -> dict[str, Any]:
    """The volume-weighted average price of the last 5 minutes up to the instrument's last
    trade (its one-minute candles: quote volume over volume), with the last of those
    minutes' close time; "0" with no trade in them."""
    params: bm.SymbolParams = call.params
    market = await call.services.catalog.market(params.symbol)
    reader = call.services.market
    row = await reader.market(market.instrument_id)
    minute = int(row.get("last_trade_time_ns", 0)) // layout.MINUTE_NS  # candles: by minute
    candles = await reader.candles(market.instrument_id) if row.get("trade_seq") else {}
    inside = [c for m, c in candles.items() if minute - AVG_PRICE_MINUTES < m <= minute]
    volume, quote = sum(c[4] for c in inside), sum(c[5] for c in inside)
    average = (
        fmt_decimal(Fraction(quote, volume) * market.price_step, market.price_decimals + 2)
        if volume else "0"
    )  # fmt: skip
    close_ms = (minute + 1) * 60_000 - 1 if inside else 0
    return {"mins": AVG_PRICE_MINUTES, "price": average, "closeTime": close_ms}


async def book_ticker(call: Call) -> Any:
    """The best bid and ask with their quantities (Binance's symbol order book ticker); one
    symbol, or every one as a list."""
    params: bm.TickerParams = call.params
    reader = call.services.market
    if params.symbol is not None:
        market = await call.services.catalog.market(params.symbol)
        return fmt.book_ticker(market, await reader.bbo(market.instrument_id))
    return [fmt.book_ticker(m, await reader.bbo(m.instrument_id))
            for m in await call.services.catalog.markets()]  # fmt: skip


async def no_derivatives(call: Call) -> dict[str, Any]:
    """TradeX has no futures: an empty list, for clients that load every market type."""
    return {"timezone": "UTC", "serverTime": call.services.clock_ns() // 1_000_000,
            "rateLimits": [], "assets": [], "symbols": []}  # fmt: skip


ENDPOINTS = [
    Endpoint("GET", "/api/v3/ping", ping, "Test connectivity", TAG, response=bm.Empty),
    Endpoint("GET", "/api/v3/time", server_time, "Server time", TAG, response=bm.ServerTime),
    Endpoint("GET", "/api/v3/exchangeInfo", exchange_info, "Instruments and their filters", TAG,
             bm.ExchangeInfoParams, response=bm.ExchangeInfo, weight=20),
    Endpoint("GET", "/api/v3/depth", depth, "Order book", TAG, bm.DepthParams,
             response=bm.Depth, weight=5),
    Endpoint("GET", "/api/v3/trades", trades, "Recent trades", TAG, bm.TradesParams,
             response=list[bm.Trade], weight=10),
    Endpoint("GET", "/api/v3/aggTrades", agg_trades, "Recent trades as aggregates", TAG,
             bm.AggTradesParams, response=list[bm.AggTrade], weight=2),
    Endpoint("GET", "/api/v3/klines", klines, "Candles", TAG, bm.KlinesParams,
             response=list[bm.Kline], weight=2),
    Endpoint("GET", "/api/v3/ticker/24hr", ticker_24hr, "24 h ticker", TAG, bm.TickerParams,
             response=bm.Ticker24hr | list[bm.Ticker24hr], weight=2),
    Endpoint("GET", "/api/v3/ticker/price", ticker_price, "Last price", TAG, bm.TickerParams,
             response=bm.PriceTicker | list[bm.PriceTicker], weight=2),
    Endpoint("GET", "/api/v3/avgPrice", avg_price, "Average price of the last 5 minutes", TAG,
             bm.SymbolParams, response=bm.AvgPrice, weight=2),
    Endpoint("GET", "/api/v3/ticker/bookTicker", book_ticker, "Best bid and ask", TAG,
             bm.TickerParams, response=bm.BookTicker | list[bm.BookTicker], weight=2),
    Endpoint("GET", "/fapi/v1/exchangeInfo", no_derivatives, "No USD-M futures", TAG,
             response=bm.FuturesExchangeInfo),
    Endpoint("GET", "/dapi/v1/exchangeInfo", no_derivatives, "No COIN-M futures", TAG,
             response=bm.FuturesExchangeInfo),
]  # fmt: skip
