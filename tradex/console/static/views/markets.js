// Every market: last price, 24 h change and volume, status; live over the `ticker` channel.
// A row opens the market's trade page (a click anywhere on it, or Enter on its link).
import { html, useEffect, useState } from '../lib/html.js';
import { api } from '../lib/api.js';
import { loadMarkets } from '../lib/catalog.js';
import { fmt, isZero, pctChange, isNegative } from '../lib/decimal.js';
import { navigate } from '../lib/router.js';
import { ErrorBox } from '../lib/ui.js';
import { subscribe } from '../lib/ws.js';

const STATUS_REFRESH_MS = 30000;

/** The figures of a ticker (REST or WebSocket) for display: null before the first trade. */
export function tickerFigures(t) {
  if (!t || !t.count || isZero(t.lastPrice)) return null;
  return { last: t.lastPrice, change: pctChange(t.openPrice, t.lastPrice), volume: t.volume,
    quoteVolume: t.quoteVolume, high: t.highPrice, low: t.lowPrice, trades: t.count };
}

/** A 24 h change in percent, coloured by its sign ('—' when unknown). */
export function ChangeText({ change }) {
  if (change === '' || change === undefined) return html`<span class="muted">—</span>`;
  const down = isNegative(change);
  const up = !down && !isZero(change);
  return html`<span class=${down ? 'sell' : up ? 'buy' : ''}>${up ? '+' : ''}${change} %</span>`;
}

function Row({ m, ticker }) {
  const f = tickerFigures(ticker);
  const open = () => navigate(`/trade/${m.symbol}`);
  // the link is the keyboard's way in (Tab, Enter); the whole row answers a click
  return html`<tr class="market-row" onClick=${open}>
    <th scope="row"><a href=${`#/trade/${m.symbol}`}>${m.base}/${m.quote}</a>
      <small class="muted"> ${m.symbol}</small></th>
    <td class="num">${f ? fmt(f.last) : html`<span class="muted">—</span>`}</td>
    <td class="num"><${ChangeText} change=${f ? f.change : ''} /></td>
    <td class="num">${f ? fmt(f.volume) : '0'} <small class="muted">${m.base}</small></td>
    <td class="num">${f ? fmt(f.quoteVolume) : '0'} <small class="muted">${m.quote}</small></td>
    <td><span class=${`status status-${String(m.status).toLowerCase()}`}>${m.status}</span></td>
  </tr>`;
}

export function Markets() {
  const [markets, setMarkets] = useState(null);
  const [tickers, setTickers] = useState({});
  const [error, setError] = useState(null);
  const [ready, setReady] = useState(false); // the list and the REST tickers are in

  useEffect(() => {
    let alive = true;
    const stops = [];
    (async () => {
      try {
        const found = await loadMarkets(true);
        if (!alive) return;
        setMarkets(found);
        const all = await api('GET', '/api/v3/ticker/24hr', { auth: false });
        if (!alive) return;
        const list = Array.isArray(all) ? all : [all];
        setTickers((old) => {
          const next = { ...old };
          for (const t of list) if (!next[t.symbol]) next[t.symbol] = t;
          return next;
        });
        setReady(true);
        for (const m of found) {
          stops.push(subscribe({ channel: 'ticker', symbol: m.symbol }, (msg) => {
            if (msg.type === 'ticker') setTickers((old) => ({ ...old, [m.symbol]: msg }));
          }));
        }
      } catch (err) { if (alive) setError(err); }
    })();
    // a halt or resume is not on the ticker: the list (status) is read again now and then
    const timer = window.setInterval(() => {
      loadMarkets(true).then((found) => { if (alive) setMarkets(found); }).catch(() => {});
    }, STATUS_REFRESH_MS);
    return () => { alive = false; window.clearInterval(timer); for (const stop of stops) stop(); };
  }, []);

  return html`<section class="markets" data-ready=${ready ? 'true' : undefined}>
    <h1>Markets</h1>
    <${ErrorBox} error=${error} />
    ${markets === null && !error && html`<p class="muted">Loading markets…</p>`}
    ${markets && markets.length === 0 && html`<p class="notice">No markets are listed yet.</p>`}
    ${markets && markets.length > 0 && html`<table class="markets-table" aria-label="Markets">
      <thead><tr>
        <th scope="col">Market</th><th scope="col" class="num">Last price</th>
        <th scope="col" class="num">24h change</th><th scope="col" class="num">24h volume</th>
        <th scope="col" class="num">24h quote volume</th><th scope="col">Status</th>
      </tr></thead>
      <tbody>${markets.map((m) => html`<${Row} key=${m.symbol} m=${m} ticker=${tickers[m.symbol]} />`)}</tbody>
    </table>`}
  </section>`;
}
