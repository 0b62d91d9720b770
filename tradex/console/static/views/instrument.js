// The trade page (#/trade/<SYMBOL>): the market's 24 h figures, the order book ladder with
// cumulative depth and its depth chart, candles at six intervals, recent trades — all live
// over the page's WebSocket (lib/ws.js), each channel sequence-checked: a gap shows
// ("resync", data-ws-state) until a fresh snapshot heals it. A trader also gets the order
// ticket and their open orders (views/ticket.js, views/orders.js).
import { html, useEffect, useMemo, useRef, useState } from '../lib/html.js';
import { api, hasRole, onSession } from '../lib/api.js';
import { marketOf } from '../lib/catalog.js';
import { fmt } from '../lib/decimal.js';
import { applyLevels, cumulative, emptyBook, topLevels } from '../lib/book.js';
import { ErrorBox, Utc } from '../lib/ui.js';
import { onWsStatus, subscribe, wsStatus } from '../lib/ws.js';
import { ChangeText, tickerFigures } from './markets.js';
import {
  AreaSeries, CandlestickSeries, ColorType, HistogramSeries, LineType, createChart, createOptionsChart,
} from 'lightweight-charts';

export const INTERVALS = ['1m', '5m', '15m', '1h', '4h', '1d'];
const BOOK_DEPTH = 100; // levels asked of the server per side
const LADDER_ROWS = 15; // levels shown per side
const TRADES_MAX = 50;
const CANDLES_MAX = 500;
const CHART_LAYOUT = {
  layout: { background: { type: ColorType.Solid, color: '#171d24' }, textColor: '#a3aebb', attributionLogo: true },
  grid: { vertLines: { color: '#222b35' }, horzLines: { color: '#222b35' } },
  autoSize: true,
};

/**
 * Follows one channel: `onMsg(msg)` for its data, and its state: 'connecting' until
 * subscribed, 'live', 'resync' from a gap or reconnect until the next snapshot/subscribed,
 * 'error' (with the server's frame) when refused.
 */
function useChannel(spec, onMsg, deps) {
  const [state, setState] = useState({ state: 'connecting', error: null });
  const handler = useRef(onMsg);
  handler.current = onMsg;
  useEffect(() => {
    if (!spec) return undefined;
    setState({ state: 'connecting', error: null });
    const stop = subscribe(spec, (msg) => {
      if (msg.type === 'resync') setState({ state: 'resync', error: null, reason: msg.reason });
      else if (msg.type === 'error') setState({ state: 'error', error: msg });
      else if (msg.type === 'subscribed' && spec.channel !== 'book') setState({ state: 'live', error: null });
      else if (msg.type === 'snapshot') setState({ state: 'live', error: null });
      handler.current(msg);
    });
    return stop;
  }, deps); // eslint-disable-line react-hooks/exhaustive-deps
  return state;
}

/** A channel whose view also reads REST after `subscribed` is live once that read is in. */
function withRest(channel, loaded) {
  return channel.state === 'live' && !loaded ? { ...channel, state: 'connecting' } : channel;
}

function useWsStatus() {
  const [status, setStatus] = useState(wsStatus());
  useEffect(() => onWsStatus(setStatus), []);
  return status;
}

/** One state for the page from the connection's and each channel's. */
export function pageWsState(connection, channels) {
  if (connection !== 'open') return connection === 'closed' && channels.length ? 'resync' : connection;
  if (channels.some((c) => c.state === 'resync')) return 'resync';
  if (channels.some((c) => c.state === 'connecting')) return 'connecting';
  if (channels.some((c) => c.state === 'error')) return 'error';
  return 'live';
}

/** An optional module's export (the ticket, open orders): null until (or unless) it loads. */
function useOptional(path, name) {
  const [found, setFound] = useState(null);
  useEffect(() => {
    let alive = true;
    import(path).then((mod) => { if (alive && mod[name]) setFound(() => mod[name]); })
      .catch(() => { if (alive) setFound(null); });
    return () => { alive = false; };
  }, [path, name]);
  return found;
}

function WsNote({ state, channels }) {
  const resyncing = channels.filter((c) => c.state === 'resync').map((c) => c.name);
  const failed = channels.filter((c) => c.state === 'error');
  return html`<div class="ws-state" data-ws-state=${state}>
    <span class=${`dot dot-${state}`} aria-hidden="true"></span>
    <span>${state === 'live' ? 'Live' : state === 'resync' ? 'Resyncing' : state === 'connecting' ? 'Connecting…' : state}</span>
    ${state === 'resync' && html`<p class="notice warn ws-note" role="status">
      ${resyncing.length ? `Sequence gap or reconnect on ${resyncing.join(', ')}: resync in progress` : 'Connection lost: reconnecting, then resync'}
      — the figures shown may be stale until the fresh snapshot arrives.</p>`}
    ${failed.map((c) => html`<p class="notice error" role="alert">${c.name}: ${c.error.msg} (${c.error.error})</p>`)}
  </div>`;
}

function Header({ m, ticker, state }) {
  const f = tickerFigures(ticker);
  return html`<div class=${`instrument-head panel ${state === 'resync' ? 'stale' : ''}`}>
    <h1>${m.base}/${m.quote} <small class="muted">${m.symbol}</small>
      <span class=${`status status-${String(m.status).toLowerCase()}`}>${m.status}</span></h1>
    <dl class="figures">
      <div><dt>Last price</dt><dd class="num" data-testid="last-price">${f ? fmt(f.last) : '—'}</dd></div>
      <div><dt>24h change</dt><dd class="num"><${ChangeText} change=${f ? f.change : ''} /></dd></div>
      <div><dt>24h high</dt><dd class="num">${f ? fmt(f.high) : '—'}</dd></div>
      <div><dt>24h low</dt><dd class="num">${f ? fmt(f.low) : '—'}</dd></div>
      <div><dt>24h volume</dt><dd class="num">${f ? fmt(f.volume) : '0'} ${m.base}</dd></div>
      <div><dt>24h quote volume</dt><dd class="num">${f ? fmt(f.quoteVolume) : '0'} ${m.quote}</dd></div>
    </dl>
  </div>`;
}

function Ladder({ m, book, stale }) {
  const asks = cumulative(topLevels(book.asks, 'asks', LADDER_ROWS));
  const bids = cumulative(topLevels(book.bids, 'bids', LADDER_ROWS));
  const row = (side) => (l) => html`<tr class=${side} key=${`${side}${l.price}`}>
    <td class=${`num ${side}`}><span class="sr-only">${side === 'sell' ? 'ask ' : 'bid '}</span>${fmt(l.price)}</td>
    <td class="num">${fmt(l.qty)}</td><td class="num">${fmt(l.total)}</td></tr>`;
  return html`<table class=${`ladder ${stale ? 'stale' : ''}`} aria-label="Order book">
    <thead><tr><th scope="col" class="num">Price (${m.quote})</th><th scope="col" class="num">Size (${m.base})</th>
      <th scope="col" class="num">Total (${m.base})</th></tr></thead>
    <tbody class="asks">${[...asks].reverse().map(row('sell'))}</tbody>
    <tbody class="spread"><tr><td colspan="3" class="muted">${asks.length && bids.length ? '' : 'No orders on one side'}</td></tr></tbody>
    <tbody class="bids">${bids.map(row('buy'))}</tbody>
  </table>`;
}

/** Depth chart points (numbers for the chart only: the ladder keeps the exact decimals). */
export function depthPoints(book, levels) {
  const bids = cumulative(topLevels(book.bids, 'bids', levels)).map((l) => ({ time: Number(l.price), value: Number(l.total) }));
  const asks = cumulative(topLevels(book.asks, 'asks', levels)).map((l) => ({ time: Number(l.price), value: Number(l.total) }));
  return { bids: bids.reverse(), asks };
}

function DepthChart({ book }) {
  const box = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    const c = createOptionsChart(box.current, CHART_LAYOUT); // its size: .chart in css/market.css
    const common = { lineType: LineType.WithSteps, lineWidth: 2, priceLineVisible: false };
    const bids = c.addSeries(AreaSeries, { ...common, lineColor: '#3ddc97', topColor: 'rgba(61,220,151,.35)', bottomColor: 'rgba(61,220,151,.05)' });
    const asks = c.addSeries(AreaSeries, { ...common, lineColor: '#ff7b7b', topColor: 'rgba(255,123,123,.35)', bottomColor: 'rgba(255,123,123,.05)' });
    chart.current = { c, bids, asks };
    return () => { c.remove(); chart.current = null; };
  }, []);
  useEffect(() => {
    if (!chart.current) return;
    const points = depthPoints(book, BOOK_DEPTH);
    chart.current.bids.setData(points.bids);
    chart.current.asks.setData(points.asks);
    chart.current.c.timeScale().fitContent();
  }, [book]);
  return html`<figure class="depth-chart"><figcaption>Depth: cumulative size by price</figcaption>
    <div ref=${box} class="chart"></div></figure>`;
}

function candleOf(k) { // a /api/v3/klines row or a `candle` message, as the chart's numbers
  if (Array.isArray(k)) {
    return { time: k[0] / 1000, open: Number(k[1]), high: Number(k[2]), low: Number(k[3]), close: Number(k[4]), volume: Number(k[5]) };
  }
  return { time: k.openTime / 1000, open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close), volume: Number(k.volume) };
}

function Candles({ m, onState }) {
  const [interval, setIv] = useState('1m');
  const [error, setError] = useState(null);
  const [count, setCount] = useState(0);
  const [last, setLast] = useState(null);
  const box = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    const c = createChart(box.current, { ...CHART_LAYOUT, timeScale: { timeVisible: true, secondsVisible: false } });
    const candles = c.addSeries(CandlestickSeries, { upColor: '#3ddc97', downColor: '#ff7b7b', wickUpColor: '#3ddc97', wickDownColor: '#ff7b7b', borderVisible: false });
    const volume = c.addSeries(HistogramSeries, { priceScaleId: 'volume', priceFormat: { type: 'volume' }, color: 'rgba(92,179,255,.45)' });
    c.priceScale('volume').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    chart.current = { c, candles, volume };
    return () => { c.remove(); chart.current = null; };
  }, []);

  function put(list, reset) {
    const ch = chart.current;
    if (!ch) return;
    const bars = list.map(candleOf);
    if (reset) {
      ch.candles.setData(bars);
      ch.volume.setData(bars.map((b) => ({ time: b.time, value: b.volume })));
      setCount(bars.length);
    } else {
      for (const b of bars) {
        try {
          ch.candles.update(b);
          ch.volume.update({ time: b.time, value: b.volume });
        } catch (_e) { return; } // older than the last bar: history covers it
      }
      setCount(ch.candles.data().length);
    }
  }

  const [loaded, setLoaded] = useState(false); // the history after the latest subscribed
  const channel = useChannel({ channel: `candles:${interval}`, symbol: m.symbol }, (msg) => {
    if (msg.type === 'subscribed') {
      setLoaded(false);
      // the history after subscribing: nothing falls between it and the live candles
      api('GET', '/api/v3/klines', { query: { symbol: m.symbol, interval, limit: CANDLES_MAX }, auth: false })
        .then((rows) => { put(rows, true); setError(null); setLoaded(true); }).catch(setError);
    } else if (msg.type === 'candle') {
      put([msg], false);
      setLast(msg);
    }
  }, [m.symbol, interval]);
  const state = withRest(channel, loaded);
  useEffect(() => onState({ name: `candles ${interval}`, ...state }), [state.state, interval]); // eslint-disable-line

  return html`<section class="panel candles" aria-labelledby="candles-title">
    <div class="panel-head"><h2 id="candles-title">Candles</h2>
      <div role="radiogroup" aria-label="Interval" class="intervals">
        ${INTERVALS.map((iv) => html`<button type="button" role="radio" aria-checked=${iv === interval ? 'true' : 'false'}
          class=${iv === interval ? 'on' : ''} onClick=${() => setIv(iv)}>${iv}</button>`)}
      </div></div>
    <${ErrorBox} error=${error} />
    <figure class="chart-figure"><figcaption class="sr-only">${`${interval} candles of ${m.symbol}`}</figcaption>
      <div ref=${box} class=${`chart ${state.state === 'resync' ? 'stale' : ''}`} data-candles=${count}></div></figure>
    <p class="muted small" data-testid="last-candle">${last
      ? html`${interval} candle <${Utc} ms=${last.openTime} /> UTC: O ${last.open} H ${last.high} L ${last.low} C ${last.close} · volume ${last.volume} ${m.base}`
      : count ? `${count} candles` : 'No candles yet.'}</p>
  </section>`;
}

/** Trades merged by id, newest first, at most `max`. */
export function mergeTrades(old, fresh, max = TRADES_MAX) {
  const byId = new Map(old.map((t) => [t.id, t]));
  for (const t of fresh) byId.set(t.id, t);
  return [...byId.values()].sort((a, b) => b.id - a.id).slice(0, max);
}

function fromRest(t) { return { id: t.id, price: t.price, qty: t.qty, time: t.time, takerSide: t.isBuyerMaker ? 'SELL' : 'BUY' }; }

function Trades({ m, onState }) {
  const [trades, setTrades] = useState([]);
  const [error, setError] = useState(null);
  const [loaded, setLoaded] = useState(false); // the REST part after the latest subscribed
  const channel = useChannel({ channel: 'trades', symbol: m.symbol }, (msg) => {
    if (msg.type === 'subscribed') {
      setLoaded(false);
      api('GET', '/api/v3/trades', { query: { symbol: m.symbol, limit: TRADES_MAX }, auth: false })
        .then((rows) => { setTrades((old) => mergeTrades(old, rows.map(fromRest))); setError(null); setLoaded(true); })
        .catch(setError);
    } else if (msg.type === 'trades') setTrades((old) => mergeTrades(old, msg.trades));
  }, [m.symbol]);
  const state = withRest(channel, loaded);
  useEffect(() => onState({ name: 'trades', ...state }), [state.state]); // eslint-disable-line
  return html`<section class="panel trades" aria-labelledby="trades-title">
    <h2 id="trades-title">Recent trades</h2>
    <${ErrorBox} error=${error} />
    <table aria-label="Recent trades" class=${state.state === 'resync' ? 'stale' : ''}>
      <thead><tr><th scope="col" class="num">Price (${m.quote})</th><th scope="col" class="num">Size (${m.base})</th>
        <th scope="col">Time (UTC)</th></tr></thead>
      <tbody>${trades.length === 0 ? html`<tr><td colspan="3" class="muted">No trades yet.</td></tr>`
        : trades.map((t) => html`<tr key=${t.id}>
          <td class=${`num ${t.takerSide === 'SELL' ? 'sell' : 'buy'}`}><span class="sr-only">${t.takerSide === 'SELL' ? 'sold ' : 'bought '}</span>${fmt(t.price)}</td>
          <td class="num">${fmt(t.qty)}</td><td><${Utc} ms=${t.time} clock /></td></tr>`)}</tbody>
    </table>
  </section>`;
}

function Book({ m, onState }) {
  const [book, setBook] = useState(emptyBook());
  const state = useChannel({ channel: 'book', symbol: m.symbol, depth: BOOK_DEPTH }, (msg) => {
    if (msg.type === 'snapshot') setBook(applyLevels(null, msg.bids, msg.asks, true));
    else if (msg.type === 'update') setBook((old) => applyLevels(old, msg.bids, msg.asks));
  }, [m.symbol]);
  useEffect(() => onState({ name: 'book', ...state }), [state.state]); // eslint-disable-line
  return html`<section class="panel book" aria-labelledby="book-title">
    <h2 id="book-title">Order book</h2>
    <${Ladder} m=${m} book=${book} stale=${state.state === 'resync'} />
    <${DepthChart} book=${book} />
  </section>`;
}

function TraderPanel({ m }) {
  const OrderTicket = useOptional('./ticket.js', 'OrderTicket');
  return html`<div class="trader-panel">
    ${OrderTicket ? html`<${OrderTicket} market=${m} />` : html`<p class="notice muted">The order ticket is not available.</p>`}
  </div>`;
}

/** The trader's open orders of the market, the page's width below the grid (a table of
 * nine columns does not fit the ticket's column). */
function TraderOrders({ m }) {
  const OpenOrders = useOptional('./orders.js', 'OpenOrders');
  return OpenOrders ? html`<div class="instrument-orders"><${OpenOrders} symbol=${m.symbol} /></div>` : null;
}

export function Instrument({ route }) {
  const symbol = String((route && route.parts[1]) || '').toUpperCase();
  const [m, setM] = useState(undefined);
  const [error, setError] = useState(null);
  const [ticker, setTicker] = useState(null);
  const [channels, setChannels] = useState({});
  const [, setSessionVersion] = useState(0);
  const connection = useWsStatus();
  useEffect(() => onSession(() => setSessionVersion((v) => v + 1)), []);

  useEffect(() => {
    let alive = true;
    setM(undefined); setTicker(null); setChannels({});
    marketOf(symbol).then((found) => { if (alive) setM(found || null); }).catch((e) => { if (alive) setError(e); });
    return () => { alive = false; };
  }, [symbol]);

  const onState = useMemo(() => (c) => setChannels((old) => ({ ...old, [c.name.split(' ')[0]]: c })), []);
  const tickerState = useChannel(m ? { channel: 'ticker', symbol: m.symbol } : null, (msg) => {
    if (msg.type === 'ticker') setTicker(msg);
  }, [m && m.symbol]);
  useEffect(() => {
    if (!m) return;
    api('GET', '/api/v3/ticker/24hr', { query: { symbol: m.symbol }, auth: false })
      .then((t) => setTicker((old) => old || t)).catch(() => {});
  }, [m && m.symbol]);

  if (error) return html`<${ErrorBox} error=${error} />`;
  if (m === undefined) return html`<p class="muted">Loading ${symbol}…</p>`;
  if (m === null) return html`<p class="notice">No market "${symbol}". <a href="#/markets">Markets</a></p>`;
  const all = [{ name: 'ticker', ...tickerState }, ...Object.values(channels)];
  const state = pageWsState(connection, all);
  return html`<section class="instrument" data-symbol=${m.symbol}>
    <${Header} m=${m} ticker=${ticker} state=${tickerState.state} />
    <${WsNote} state=${state} channels=${all} />
    <div class=${`instrument-grid ${hasRole('trader') ? 'with-trader' : ''}`}>
      <${Book} m=${m} onState=${onState} />
      <div class="instrument-main">
        <${Candles} m=${m} onState=${onState} />
        <${Trades} m=${m} onState=${onState} />
      </div>
      ${hasRole('trader') && html`<${TraderPanel} m=${m} />`}
    </div>
    ${hasRole('trader') && html`<${TraderOrders} m=${m} />`}
  </section>`;
}
