// What the exchange lists (from /api/v3/exchangeInfo), loaded once and on demand again.
//
//   const markets = await loadMarkets();      // [{symbol, base, quote, tickSize, ...}]
//   const m = await marketOf('BTCUSD');       // one of them, or undefined
//   assetScale('USD')                         // decimals of an asset, once loaded

import { api } from './api.js';

let loading = null;
let bySymbol = new Map();
const scales = new Map();

function filter(info, type) { return info.filters.find((f) => f.filterType === type) || {}; }

function toMarket(info) {
  scales.set(info.baseAsset, info.baseAssetPrecision);
  scales.set(info.quoteAsset, info.quoteAssetPrecision);
  return {
    symbol: info.symbol, // Binance style on the wire: BTCUSD
    tradexSymbol: info.tradexSymbol, // TradeX's name: BTC-USD
    instrumentId: info.tradexInstrumentId,
    status: info.status, // TRADING | HALT
    base: info.baseAsset,
    quote: info.quoteAsset,
    baseScale: info.baseAssetPrecision,
    quoteScale: info.quoteAssetPrecision,
    tickSize: filter(info, 'PRICE_FILTER').tickSize,
    stepSize: filter(info, 'LOT_SIZE').stepSize,
    minQty: filter(info, 'LOT_SIZE').minQty,
    maxQty: filter(info, 'LOT_SIZE').maxQty,
    minNotional: filter(info, 'NOTIONAL').minNotional,
    makerFeePpm: info.makerFeePpm,
    takerFeePpm: info.takerFeePpm,
    priceBandBps: info.tradexPriceBandBps, // 0: none
    protectionBps: info.tradexMarketProtectionBps, // a MARKET order's protection (band or 5 %)
    info,
  };
}

/** Every market; `fresh` reloads (after an operator changed one). */
export async function loadMarkets(fresh = false) {
  if (!loading || fresh) {
    loading = api('GET', '/api/v3/exchangeInfo', { auth: false }).then((found) => {
      const markets = found.symbols.map(toMarket);
      bySymbol = new Map(markets.map((m) => [m.symbol, m]));
      return markets;
    });
    loading.catch(() => { loading = null; });
  }
  return loading;
}

export async function marketOf(symbol) { await loadMarkets(); return bySymbol.get(symbol); }

/** Decimals of `asset` (known once loadMarkets() has run), or undefined. */
export function assetScale(asset) { return scales.get(asset); }
