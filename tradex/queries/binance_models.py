"""Parameters and responses of the Binance spot API v3 dialect (names as Binance spells them).

Prices and quantities are decimal strings, times milliseconds since the epoch, symbols
Binance style (``BTCUSD``). ``accountId`` is TradeX's: with an access token it chooses one
of the caller's accounts (default: their first); an API key acts for its own account.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

INT64_MAX = (1 << 63) - 1
Symbol = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$", description="Binance style, e.g. BTCUSD")
]
Decimal = Annotated[
    str, Field(pattern=r"^[0-9]{1,20}(\.[0-9]{1,18})?$", description="A decimal string, e.g. 0.01")
]
Id = Annotated[int, Field(ge=0, le=INT64_MAX)]
TimeMs = Annotated[int, Field(ge=0, le=9_000_000_000_000, description="ms since the epoch")]
ClientId = Annotated[
    str, Field(pattern=r"^[\.A-Z\:/a-z0-9_-]{1,36}$", description="The client's id of the order")
]
AccountId = Annotated[
    int | None, Field(default=None, ge=1, le=INT64_MAX, description="TradeX: which account")
]
Limit = Annotated[int, Field(ge=1, le=1000)]
OrderStatus = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "REJECTED"]
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
# Binance's self-trade prevention modes served (binance_format.STP_FROM_BINANCE maps them)
StpModeName = Literal["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"]


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- parameters ------------------------------------------------------------------------------


class ExchangeInfoParams(Params):
    symbol: Symbol | None = None


class SymbolParams(Params):
    symbol: Symbol


class DepthParams(Params):
    symbol: Symbol
    limit: Limit = 100


class TradesParams(Params):
    symbol: Symbol
    limit: Limit = 500


class AggTradesParams(Params):
    symbol: Symbol
    fromId: Id | None = None
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None
    limit: Limit = 500


class KlinesParams(Params):
    symbol: Symbol
    interval: Interval
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None
    limit: Limit = 500


class TickerParams(Params):
    symbol: Symbol | None = None


class NewOrderParams(Params):
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    type: Literal["LIMIT", "MARKET", "LIMIT_MAKER"]
    timeInForce: Literal["GTC", "IOC", "FOK"] | None = None
    quantity: Decimal | None = None
    quoteOrderQty: Decimal | None = Field(None, description="Not supported: refused")
    price: Decimal | None = Field(
        None, description="LIMIT: the limit price; MARKET (TradeX): the protection price"
    )
    newClientOrderId: ClientId | None = None
    newOrderRespType: Literal["ACK", "RESULT", "FULL"] | None = None
    selfTradePreventionMode: StpModeName | None = None
    stopPrice: Decimal | None = Field(None, description="Not supported: refused")
    icebergQty: Decimal | None = Field(None, description="Not supported: refused")
    accountId: AccountId = None


class CancelReplaceParams(NewOrderParams):
    cancelReplaceMode: Literal["STOP_ON_FAILURE", "ALLOW_FAILURE"]
    cancelOrderId: Id | None = None
    cancelOrigClientOrderId: ClientId | None = None
    cancelNewClientOrderId: ClientId | None = None
    cancelRestrictions: Literal["ONLY_NEW", "ONLY_PARTIALLY_FILLED"] | None = Field(
        None, description="Not supported: refused"
    )
    orderRateLimitExceededMode: Literal["DO_NOTHING"] | None = Field(
        None, description="DO_NOTHING only (CANCEL_ONLY is not supported)"
    )


class OrderParams(Params):
    symbol: Symbol
    orderId: Id | None = None
    origClientOrderId: ClientId | None = None
    accountId: AccountId = None


class CancelParams(OrderParams):
    newClientOrderId: ClientId | None = None


class OpenOrdersParams(Params):
    symbol: Symbol | None = None
    accountId: AccountId = None


class AllOrdersParams(Params):
    symbol: Symbol
    orderId: Id | None = None
    toOrderId: Id | None = Field(
        None, description="TradeX: the newest `limit` orders with ids up to this one (paging back)"
    )
    side: Literal["BUY", "SELL"] | None = Field(None, description="TradeX: one side only")
    status: OrderStatus | None = Field(None, description="TradeX: one status only")
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None
    limit: Limit = 500
    accountId: AccountId = None


class MyTradesParams(Params):
    symbol: Symbol
    orderId: Id | None = None
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None
    fromId: Id | None = None
    toId: Id | None = Field(
        None, description="TradeX: the newest `limit` fills with trade ids up to this one"
    )
    side: Literal["BUY", "SELL"] | None = Field(None, description="TradeX: one side only")
    limit: Limit = 500
    accountId: AccountId = None


class AccountParams(Params):
    omitZeroBalances: bool = False
    accountId: AccountId = None


# -- responses -------------------------------------------------------------------------------


ListenKeyText = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9]{1,64}$", description="A listenKey from POST userDataStream")
]


class UserStreamParams(Params):
    accountId: AccountId = None


class ListenKeyParams(Params):
    listenKey: ListenKeyText


class ListenKey(BaseModel):
    listenKey: str


class Empty(BaseModel):
    pass


class ServerTime(BaseModel):
    serverTime: int


class PriceFilter(BaseModel):
    filterType: Literal["PRICE_FILTER"]
    minPrice: str
    maxPrice: str
    tickSize: str


class LotSizeFilter(BaseModel):
    filterType: Literal["LOT_SIZE", "MARKET_LOT_SIZE"]
    minQty: str
    maxQty: str
    stepSize: str


class NotionalFilter(BaseModel):
    filterType: Literal["NOTIONAL"]
    minNotional: str
    applyMinToMarket: bool
    maxNotional: str
    applyMaxToMarket: bool
    avgPriceMins: int


class SymbolInfo(BaseModel):
    symbol: str
    status: Literal["TRADING", "HALT"]
    baseAsset: str
    baseAssetPrecision: int
    quoteAsset: str
    quotePrecision: int
    quoteAssetPrecision: int
    baseCommissionPrecision: int
    quoteCommissionPrecision: int
    orderTypes: list[str]
    icebergAllowed: bool
    ocoAllowed: bool
    otoAllowed: bool
    quoteOrderQtyMarketAllowed: bool
    allowTrailingStop: bool
    cancelReplaceAllowed: bool
    isSpotTradingAllowed: bool
    isMarginTradingAllowed: bool
    filters: list[PriceFilter | LotSizeFilter | NotionalFilter]
    permissions: list[str]
    permissionSets: list[list[str]]
    defaultSelfTradePreventionMode: str
    allowedSelfTradePreventionModes: list[str]
    tradexSymbol: str = Field(description="TradeX's name of the instrument, e.g. BTC-USD")
    tradexInstrumentId: int
    makerFeePpm: int
    takerFeePpm: int
    tradexPriceBandBps: int = Field(description="The instrument's price band (0: none)")
    tradexMarketProtectionBps: int = Field(
        description="A MARKET order without price is protected at the best opposite price "
        "moved by this many bps against the taker: the band, or 500 without one"
    )


class RateLimitInfo(BaseModel):
    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int


class ExchangeInfo(BaseModel):
    timezone: str
    serverTime: int
    rateLimits: list[RateLimitInfo]
    exchangeFilters: list[str]
    symbols: list[SymbolInfo]


class Depth(BaseModel):
    lastUpdateId: int = Field(description="The book's sequence (book_seq) it reflects")
    bids: list[list[str]]
    asks: list[list[str]]


class Trade(BaseModel):
    id: int
    price: str
    qty: str
    quoteQty: str
    time: int
    isBuyerMaker: bool
    isBestMatch: bool


class AggTrade(BaseModel):
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 (Binance's name)
    T: int
    m: bool
    M: bool


Kline = list[int | str]


class Ticker24hr(BaseModel):
    symbol: str
    priceChange: str
    priceChangePercent: str
    weightedAvgPrice: str
    prevClosePrice: str
    lastPrice: str
    lastQty: str
    bidPrice: str
    bidQty: str
    askPrice: str
    askQty: str
    openPrice: str
    highPrice: str
    lowPrice: str
    volume: str
    quoteVolume: str
    openTime: int
    closeTime: int
    firstId: int
    lastId: int
    count: int


class Fill(BaseModel):
    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int


class Order(BaseModel):
    symbol: str
    orderId: int
    orderListId: int
    clientOrderId: str
    price: str
    origQty: str
    executedQty: str
    cummulativeQuoteQty: str
    status: str
    timeInForce: str
    type: str
    side: str
    stopPrice: str
    icebergQty: str
    time: int
    updateTime: int
    isWorking: bool
    workingTime: int
    origQuoteOrderQty: str
    selfTradePreventionMode: str
    accountId: int
    rejectReason: str | None = Field(None, description="TradeX: why it was rejected")


class PriceTicker(BaseModel):
    symbol: str
    price: str


class AvgPrice(BaseModel):
    mins: int
    price: str
    closeTime: int


class BookTicker(BaseModel):
    symbol: str
    bidPrice: str
    bidQty: str
    askPrice: str
    askQty: str


class NewOrder(Order):
    transactTime: int
    fills: list[Fill]


class CancelReplace(BaseModel):
    cancelResult: Literal["SUCCESS"]
    newOrderResult: Literal["SUCCESS"]
    cancelResponse: Order
    newOrderResponse: NewOrder


class Balance(BaseModel):
    asset: str
    free: str
    locked: str


class CommissionRates(BaseModel):
    maker: str
    taker: str
    buyer: str
    seller: str


class Account(BaseModel):
    makerCommission: int
    takerCommission: int
    buyerCommission: int
    sellerCommission: int
    commissionRates: CommissionRates
    canTrade: bool
    canWithdraw: bool
    canDeposit: bool
    brokered: bool
    requireSelfTradePrevention: bool
    preventSor: bool
    updateTime: int
    accountType: str
    balances: list[Balance]
    permissions: list[str]
    uid: int
    accountId: int


class MyTrade(BaseModel):
    symbol: str
    id: int
    orderId: int
    orderListId: int
    price: str
    qty: str
    quoteQty: str
    commission: str
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool
    isBestMatch: bool


class CoinInfo(BaseModel):
    """``/sapi/v1/capital/config/getall``: an asset (no networks: TradeX has none)."""

    coin: str
    name: str
    free: str
    locked: str
    depositAllEnable: bool
    withdrawAllEnable: bool
    trading: bool
    networkList: list[dict[str, str]]


class FuturesExchangeInfo(BaseModel):
    timezone: str
    serverTime: int
    rateLimits: list[RateLimitInfo]
    assets: list[str]
    symbols: list[str]
