// Orders: the page (#/orders: open orders, order history, fills — paginated, filtered by
// symbol, side, status, client order id) and the compact `OpenOrders({ symbol })` of the
// trade page. Amend (price and/or quantity), cancel, cancel-all (one symbol, or every one).
//
//   html`<${OpenOrders} symbol="BTCUSD" />`
//
// Live: `useAccountFeed` re-reads what a view shows when the account's private channels
// (orders, fills, balances over the WebSocket) say it changed.
import { html, useEffect, useRef, useState } from '../lib/html.js';
import { api, newId } from '../lib/api.js';
import { loadMarkets } from '../lib/catalog.js';
import * as D from '../lib/decimal.js';
import { ErrorBox, errorText, Utc } from '../lib/ui.js';
import { navigate } from '../lib/router.js';
import { subscribe } from '../lib/ws.js';

const LIVE = new Set(['orders', 'fills', 'balances']); // the account's private channels
// The channels come from the Redis read model, the tables these views read from PostgreSQL:
// a message can arrive before its rows do, so each burst is read again once they are in.
const REREAD_MS = [150, 1500]; // after a burst of account events
const POLL_MS = 3000; // beside the feed: what the channels do not carry (an amend's effect)
const PAGE_ROWS = 50;
const SIDES = ['BUY', 'SELL'];
const STATUSES = ['NEW', 'PARTIALLY_FILLED', 'FILLED', 'CANCELED', 'EXPIRED', 'REJECTED'];

/**
 * Calls `onChange()` now and whenever the account's `channels` (orders, fills, balances)
 * may have changed: soon after each burst of messages on those private WebSocket channels
 * (lib/ws.js) — twice, since the channels may run ahead of the PostgreSQL tables the views
 * read — after a resync or reconnect, and every POLL_MS for what the channels do not carry
 * (an amend's new price). Other strings in `channels` only make the effect start again.
 */
export function useAccountFeed(channels, onChange) {
  const latest = useRef(onChange);
  latest.current = onChange;
  useEffect(() => {
    let timers = [];
    const soon = () => {
      if (timers.length) return;
      timers = REREAD_MS.map((ms, i) => setTimeout(() => {
        if (i === REREAD_MS.length - 1) timers = [];
        latest.current();
      }, ms));
    };
    latest.current();
    const stops = channels.filter((c) => LIVE.has(c)).map((channel) => subscribe({ channel }, soon));
    const poll = setInterval(() => latest.current(), POLL_MS);
    return () => {
      for (const stop of stops) stop();
      clearInterval(poll);
      for (const timer of timers) clearTimeout(timer);
    };
  }, [channels.join(',')]);
}

/** Reads `load()` now, on every account change and on `reload()`: [value, error, reload]. */
function useLoaded(load, deps) {
  const [value, setValue] = useState(undefined);
  const [error, setError] = useState(null);
  const ticket = useRef(0);
  const reload = async () => {
    const mine = ++ticket.current;
    try {
      const found = await load();
      if (mine === ticket.current) { setValue(found); setError(null); }
    } catch (err) { if (mine === ticket.current) setError(err); }
  };
  useEffect(() => { setValue(undefined); }, deps);
  useAccountFeed(['orders', 'fills', ...deps.map(String)], reload);
  return [value, error, reload];
}

function useMarkets() {
  const [markets, setMarkets] = useState([]);
  useEffect(() => { loadMarkets().then(setMarkets).catch(() => setMarkets([])); }, []);
  return markets;
}

/** A time (ms since the epoch) as UTC text in a <time> (the golden screenshots mask those). */
function sideCell(side) { return html`<td class=${side === 'BUY' ? 'buy' : 'sell'}>${side}</td>`; }

/** The amend form of one order: a new price and/or a new total quantity. */
function Amend({ order, onDone }) {
  const [price, setPrice] = useState(order.price);
  const [qty, setQty] = useState(order.origQty);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const key = useRef(newId('amend'));
  const send = async (event) => {
    event.preventDefault();
    const query = { symbol: order.symbol, orderId: order.orderId };
    if (D.cmp(price, order.price) !== 0) query.price = price;
    if (D.cmp(qty, order.origQty) !== 0) query.quantity = qty;
    if (!query.price && !query.quantity) { setError(new Error('Change the price or the quantity.')); return; }
    setBusy(true);
    try {
      await api('POST', '/tradex/v1/orders/amend', { query, headers: { 'Idempotency-Key': key.current } });
      onDone(`Order ${order.orderId} amended.`);
    } catch (err) {
      if (err.status && err.status < 500) key.current = newId('amend'); // decided: a new intent next
      setError(err);
    } finally { setBusy(false); }
  };
  const id = `amend-${order.orderId}`;
  return html`<form class="amend" onSubmit=${send} aria-label=${`Amend order ${order.orderId}`}>
    <label for=${`${id}-price`}>New price</label>
    <input id=${`${id}-price`} inputmode="decimal" value=${price} onInput=${(e) => setPrice(e.target.value)} />
    <label for=${`${id}-qty`}>New quantity</label>
    <input id=${`${id}-qty`} inputmode="decimal" value=${qty} onInput=${(e) => setQty(e.target.value)} />
    <button type="submit" disabled=${busy}>Save</button>
    <button type="button" onClick=${() => onDone(null)}>Close</button>
    ${error && html`<span class="error" role="alert">${errorText(error)}</span>`}
  </form>`;
}

/** A table of open orders with Amend / Cancel per row (`name`: the table's accessible name). */
function OpenTable({ orders, name, onChanged, showSymbol }) {
  const [amending, setAmending] = useState(null);
  const [busy, setBusy] = useState(null);
  const cancel = async (order) => {
    setBusy(order.orderId);
    try {
      const done = await api('DELETE', '/api/v3/order', { query: { symbol: order.symbol, orderId: order.orderId },
        headers: { 'Idempotency-Key': newId('cancel') } });
      onChanged(`Order ${order.orderId}: ${done.status}.`);
    } catch (err) { onChanged(null, err); } finally { setBusy(null); }
  };
  if (!orders.length) return html`<p class="muted">No open orders.</p>`;
  return html`<table aria-label=${name}>
    <thead><tr><th>Order</th>${showSymbol && html`<th>Symbol</th>`}<th>Side</th><th>Type</th>
      <th class="num">Price</th><th class="num">Quantity</th><th class="num">Filled</th><th>Status</th><th>Time (UTC)</th><th></th></tr></thead>
    <tbody>${orders.map((o) => html`
      <tr key=${o.orderId}>
        <td data-volatile>${o.orderId}</td>${showSymbol && html`<td>${o.symbol}</td>`}${sideCell(o.side)}
        <td>${o.type}${o.type === 'LIMIT' ? ` ${o.timeInForce}` : ''}</td>
        <td class="num">${D.fmt(o.price)}</td><td class="num">${D.fmt(o.origQty)}</td>
        <td class="num">${D.fmt(o.executedQty)}</td><td>${o.status}</td><td><${Utc} ms=${o.time} /></td>
        <td class="actions">
          <button type="button" aria-label=${`Amend order ${o.orderId}`} onClick=${() => setAmending(o.orderId)}>Amend</button>
          <button type="button" aria-label=${`Cancel order ${o.orderId}`} disabled=${busy === o.orderId}
            onClick=${() => cancel(o)}>Cancel</button>
        </td>
      </tr>
      ${amending === o.orderId && html`<tr class="amending"><td colspan=${showSymbol ? 10 : 9}>
        <${Amend} order=${o} onDone=${(text) => { setAmending(null); if (text) onChanged(text); }} /></td></tr>`}`)}
    </tbody>
  </table>`;
}

/** Cancel every open order of `symbol` (or of the account when none). */
async function cancelAll(symbol) {
  const key = newId('cancelall');
  const found = await api('DELETE', '/tradex/v1/orders', { query: { symbol }, headers: { 'Idempotency-Key': key } });
  const n = found.cancelling.length;
  return `Cancelling ${n} order${n === 1 ? '' : 's'}${found.more ? ' and more' : ''}${symbol ? ` on ${symbol}` : ''}.`;
}

/** Open orders of a symbol, compact, for the trade page. */
export function OpenOrders({ symbol }) {
  const [orders, error, reload] = useLoaded(
    () => api('GET', '/api/v3/openOrders', { query: { symbol } }), [symbol]);
  const [note, setNote] = useState(null);
  const [failure, setFailure] = useState(null);
  const changed = (text, err) => { setNote(text); setFailure(err || null); reload(); };
  return html`<section class="panel open-orders">
    <div class="bar"><h2>Open orders</h2>
      <button type="button" disabled=${!orders || !orders.length}
        onClick=${() => cancelAll(symbol).then((t) => changed(t), (e) => changed(null, e))}>Cancel all ${symbol}</button></div>
    ${note && html`<p class="notice ok" role="status">${note}</p>`}
    <${ErrorBox} error=${failure || error} />
    ${orders === undefined ? html`<p class="muted">Loading…</p>`
      : html`<${OpenTable} orders=${orders} name=${`Open orders ${symbol}`} onChanged=${changed} />`}
  </section>`;
}

const TABS = [['open', 'Open orders'], ['history', 'Order history'], ['fills', 'Fills']];

/** The filters of the page, kept in the route's query: symbol, side, status, clientId. */
function Filters({ filters, markets, tab, set }) {
  return html`<form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="Filters">
    <label for="f-symbol">Symbol</label>
    <select id="f-symbol" value=${filters.symbol} onChange=${(e) => set({ symbol: e.target.value })}>
      ${tab === 'open' && html`<option value="">All</option>`}
      ${markets.map((m) => html`<option value=${m.symbol}>${m.symbol}</option>`)}
    </select>
    <label for="f-side">Side</label>
    <select id="f-side" value=${filters.side} onChange=${(e) => set({ side: e.target.value })}>
      <option value="">Both</option>${SIDES.map((s) => html`<option value=${s}>${s}</option>`)}
    </select>
    ${tab === 'history' && html`
      <label for="f-status">Status</label>
      <select id="f-status" value=${filters.status} onChange=${(e) => set({ status: e.target.value })}>
        <option value="">Any</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <label for="f-client">Client order id</label>
      <input id="f-client" value=${filters.clientId} onChange=${(e) => set({ clientId: e.target.value.trim() })} />`}
  </form>`;
}

function matches(row, filters) {
  if (filters.side && row.side !== (filters.side)) return false;
  if (filters.status && row.status !== filters.status) return false;
  return true;
}

/** Order history of one symbol, newest page first; `before`: the page's upper order id. */
function History({ filters }) {
  const [before, setBefore] = useState([]); // stack of toOrderId of the pages seen
  useEffect(() => setBefore([]), [filters.symbol, filters.clientId, filters.side, filters.status]);
  const to = before.length ? before[before.length - 1] : undefined;
  const [rows, error] = useLoaded(async () => {
    if (!filters.symbol) return [];
    if (filters.clientId) {
      try {
        return [await api('GET', '/api/v3/order', { query: { symbol: filters.symbol, origClientOrderId: filters.clientId } })];
      } catch (err) { if (err.status === 404) return []; throw err; }
    }
    const page = await api('GET', '/api/v3/allOrders', { query: { symbol: filters.symbol, limit: PAGE_ROWS,
      toOrderId: to, side: filters.side || undefined, status: filters.status || undefined } });
    return page.reverse(); // newest first
  }, [filters.symbol, filters.clientId, filters.side, filters.status, to]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (rows === undefined) return html`<p class="muted">Loading…</p>`;
  const shown = rows.filter((r) => matches(r, filters)); // a client id's order: the filters too
  const oldest = rows.length ? rows[rows.length - 1].orderId : null;
  return html`
    <table aria-label="Order history">
      <thead><tr><th>Order</th><th>Client id</th><th>Side</th><th>Type</th><th class="num">Price</th>
        <th class="num">Quantity</th><th class="num">Filled</th><th class="num">Quote filled</th><th>Status</th><th>Time (UTC)</th></tr></thead>
      <tbody>${shown.map((o) => html`<tr key=${o.orderId}>
        <td data-volatile>${o.orderId}</td><td data-volatile>${o.clientOrderId}</td>${sideCell(o.side)}<td>${o.type}${o.type === 'LIMIT' ? ` ${o.timeInForce}` : ''}</td>
        <td class="num">${D.fmt(o.price)}</td><td class="num">${D.fmt(o.origQty)}</td><td class="num">${D.fmt(o.executedQty)}</td>
        <td class="num">${D.fmt(o.cummulativeQuoteQty)}</td>
        <td>${o.status}${o.rejectReason ? html` <small class="muted">${o.rejectReason}</small>` : ''}</td><td><${Utc} ms=${o.time} /></td></tr>`)}
      </tbody>
    </table>
    ${!shown.length && html`<p class="muted">No orders.</p>`}
    <${Pager} newer=${before.length > 0} older=${!filters.clientId && rows.length === PAGE_ROWS}
      onNewer=${() => setBefore(before.slice(0, -1))} onOlder=${() => setBefore([...before, oldest - 1])} />`;
}

/** Fills of one symbol, newest page first. */
function Fills({ filters }) {
  const [before, setBefore] = useState([]);
  useEffect(() => setBefore([]), [filters.symbol, filters.side]);
  const to = before.length ? before[before.length - 1] : undefined;
  const [rows, error] = useLoaded(async () => {
    if (!filters.symbol) return [];
    const page = await api('GET', '/api/v3/myTrades', { query: { symbol: filters.symbol, limit: PAGE_ROWS,
      toId: to, side: filters.side || undefined } });
    return page.reverse();
  }, [filters.symbol, filters.side, to]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (rows === undefined) return html`<p class="muted">Loading…</p>`;
  const oldest = rows.length ? rows[rows.length - 1].id : null;
  return html`
    <table aria-label="Fills">
      <thead><tr><th>Trade</th><th>Order</th><th>Side</th><th class="num">Price</th><th class="num">Quantity</th>
        <th class="num">Quote</th><th class="num">Fee</th><th>Liquidity</th><th>Time (UTC)</th></tr></thead>
      <tbody>${rows.map((f) => html`<tr key=${`${f.id}-${f.orderId}`}>
        <td data-volatile>${f.id}</td><td data-volatile>${f.orderId}</td>${sideCell(f.isBuyer ? 'BUY' : 'SELL')}
        <td class="num">${D.fmt(f.price)}</td><td class="num">${D.fmt(f.qty)}</td><td class="num">${D.fmt(f.quoteQty)}</td>
        <td class="num">${D.fmt(f.commission)} ${f.commissionAsset}</td><td>${f.isMaker ? 'maker' : 'taker'}</td><td><${Utc} ms=${f.time} /></td></tr>`)}
      </tbody>
    </table>
    ${!rows.length && html`<p class="muted">No fills.</p>`}
    <${Pager} newer=${before.length > 0} older=${rows.length === PAGE_ROWS}
      onNewer=${() => setBefore(before.slice(0, -1))} onOlder=${() => setBefore([...before, oldest - 1])} />`;
}

function Pager({ newer, older, onNewer, onOlder }) {
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" disabled=${!newer} onClick=${onNewer}>Newer</button>
    <button type="button" disabled=${!older} onClick=${onOlder}>Older</button>
  </nav>`;
}

/** Every open order of the account (or of a symbol), filtered by side. */
function Open({ filters }) {
  const [orders, error, reload] = useLoaded(
    () => api('GET', '/api/v3/openOrders', { query: { symbol: filters.symbol || undefined } }), [filters.symbol]);
  const [note, setNote] = useState(null);
  const [failure, setFailure] = useState(null);
  const changed = (text, err) => { setNote(text); setFailure(err || null); reload(); };
  const shown = (orders || []).filter((o) => matches(o, filters));
  return html`<div class="bar">
      <button type="button" disabled=${!orders || !orders.length}
        onClick=${() => cancelAll(filters.symbol || undefined).then((t) => changed(t), (e) => changed(null, e))}>
        ${filters.symbol ? `Cancel all ${filters.symbol}` : 'Cancel all orders'}</button></div>
    ${note && html`<p class="notice ok" role="status">${note}</p>`}
    <${ErrorBox} error=${failure || error} />
    ${orders === undefined ? html`<p class="muted">Loading…</p>`
      : html`<${OpenTable} orders=${shown} name="Open orders" onChanged=${changed} showSymbol=${true} />`}`;
}

export function Orders({ route }) {
  const markets = useMarkets();
  const q = route.query;
  const tab = TABS.some(([t]) => t === q.get('tab')) ? q.get('tab') : 'open';
  const filters = { symbol: q.get('symbol') || '', side: q.get('side') || '', status: q.get('status') || '',
    clientId: q.get('clientId') || '' };
  if (tab !== 'open' && !filters.symbol && markets.length) filters.symbol = markets[0].symbol;
  const go = (changes) => {
    const next = new URLSearchParams({ tab, ...filters, ...changes });
    for (const [k, v] of [...next.entries()]) if (!v) next.delete(k);
    navigate(`/orders?${next.toString()}`);
  };
  const onTabKey = (event) => {
    const i = TABS.findIndex(([t]) => t === tab);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = TABS[(i + step + TABS.length) % TABS.length][0];
    go({ tab: next });
    setTimeout(() => document.getElementById(`tab-${next}`)?.focus(), 0);
  };
  return html`<section class="orders-page">
    <h1>Orders</h1>
    <div role="tablist" aria-label="Orders" onKeyDown=${onTabKey}>
      ${TABS.map(([t, label]) => html`<button type="button" role="tab" id=${`tab-${t}`} aria-selected=${t === tab}
        aria-controls="orders-panel" tabIndex=${t === tab ? 0 : -1} onClick=${() => go({ tab: t })}>${label}</button>`)}
    </div>
    <${Filters} filters=${filters} markets=${markets} tab=${tab} set=${go} />
    <div role="tabpanel" id="orders-panel" aria-labelledby=${`tab-${tab}`}>
      ${tab === 'open' && html`<${Open} filters=${filters} />`}
      ${tab === 'history' && html`<${History} filters=${filters} />`}
      ${tab === 'fills' && html`<${Fills} filters=${filters} />`}
    </div>
  </section>`;
}
