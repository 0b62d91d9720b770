// The order ticket: LIMIT (GTC / IOC / FOK, post-only = LIMIT_MAKER) and MARKET orders of one
// market, checked before sending (tick, lot, min notional, available balance incl. the fee
// part of the hold), sent once per intent (its own newClientOrderId = Idempotency-Key), and
// the account processor's outcome shown: accepted with the order id, or rejected with the
// reason in words and its code; then the engine's answer (resting, filled, or rejected by the
// engine with its reason), and a resting order's later fills and end, followed through the
// account's private channels for as long as the ticket shows it. A limit price
// outside the instrument's price band is refused before sending, as the engine would.
//
//   html`<${OrderTicket} market=${await marketOf('BTCUSD')} />`
//
// The pure rules (snapping, protection price, hold, checks) are exported for tests.
import { html, useEffect, useRef, useState } from '../lib/html.js';
import { api, newId } from '../lib/api.js';
import * as D from '../lib/decimal.js';
import { errorText } from '../lib/ui.js';
import { useAccountFeed } from './orders.js';

const PPM = 1000000n;
const BPS = 10000n;
const PRICE_TICKS_MAX = (1n << 53n) - 1n; // the API's maxPrice in ticks (tradex/queries/markets.py)
const POLL_BEST_MS = 2000; // the best opposite price for a MARKET order's protection
const FOLLOW_MS = 400; // an accepted order is read again this often …
const FOLLOW_READS = 10; // … this many times, until the engine has answered; then on the
const FOLLOW_CHANNELS = ['orders', 'fills']; // account feed of these (orders.js), while open
const ENGINE_DONE = ['REJECTED', 'EXPIRED', 'FILLED', 'CANCELED', 'PARTIALLY_FILLED'];
const ENDED = ['REJECTED', 'EXPIRED', 'FILLED', 'CANCELED'];

/** `text` as a decimal, or null when it is not one (empty, letters, negative). */
export function parseInput(text) {
  const s = String(text || '').trim();
  if (!/^\d*(\.\d*)?$/.test(s) || s === '' || s === '.') return null;
  return s;
}

/**
 * `text` on the grid of `step`: {value, snapped} (`snapped`: it moved). Prices go to the
 * nearest tick, quantities down to the lot (never more than the trader typed).
 */
export function snapTo(text, step, mode) {
  const value = D.snap(text, step, mode);
  return { value, snapped: D.cmp(value, text) !== 0 };
}

/**
 * A MARKET order's protection price as the API computes it (tradex/queries/orders.py): the
 * best opposite price in ticks moved by `bps` against the taker, rounded toward the best.
 */
export function protectionPrice(best, tickSize, bps, side) {
  const scale = D.decimals(tickSize);
  const ticks = D.toUnits(best, scale) / D.toUnits(tickSize, scale);
  const move = (ticks * BigInt(bps)) / BPS;
  let found = side === 'BUY' ? ticks + move : ticks - move;
  if (found > PRICE_TICKS_MAX) found = PRICE_TICKS_MAX;
  if (found < 1n) found = 1n;
  return D.fromUnits(found * D.toUnits(tickSize, scale), scale);
}

/** price × qty in the quote asset's scale (exact: a tick times a lot is whole minor units). */
export function notional(price, qty, quoteScale) {
  return D.normalize(D.mul(price, qty), quoteScale);
}

/**
 * What an order holds (docs/ledger.md "Units, holds and fees"): a buy holds the notional at
 * its limit (or protection) price plus ceil(notional × the higher fee rate / 10^6) of the
 * quote; a sell holds its quantity of the base.
 */
export function holdOf(side, price, qty, market) {
  if (side === 'SELL') return { asset: market.base, amount: D.normalize(qty, market.baseScale) };
  const n = D.toUnits(notional(price, qty, market.quoteScale), market.quoteScale);
  const rate = BigInt(Math.max(market.makerFeePpm || 0, market.takerFeePpm || 0));
  const fee = (n * rate + PPM - 1n) / PPM;
  return { asset: market.quote, amount: D.fromUnits(n + fee, market.quoteScale),
    fee: D.fromUnits(fee, market.quoteScale) };
}

/**
 * Everything wrong with an order before it is sent: [{field, text}]. `price` is the limit
 * (or, for MARKET, the protection price, null when unknown); `available` maps an asset to
 * its available balance (undefined: not loaded, not checked).
 */
export function problemsOf({ market, side, type, price, qty, available }) {
  const found = [];
  if (type !== 'MARKET') {
    if (price === null) found.push({ field: 'price', text: 'Enter a price (a decimal number).' });
    else if (D.isZero(price)) found.push({ field: 'price', text: 'The price must be above 0.' });
    else if (!D.isMultiple(price, market.tickSize)) {
      found.push({ field: 'price', text: `The price must be a multiple of the tick ${market.tickSize}.` });
    }
  }
  if (qty === null) found.push({ field: 'quantity', text: 'Enter a quantity (a decimal number).' });
  else if (D.cmp(qty, market.minQty) < 0) {
    found.push({ field: 'quantity', text: `The quantity must be at least ${market.minQty}.` });
  } else if (!D.isMultiple(qty, market.stepSize)) {
    found.push({ field: 'quantity', text: `The quantity must be a multiple of the lot ${market.stepSize}.` });
  } else if (D.cmp(qty, market.maxQty) > 0) {
    found.push({ field: 'quantity', text: `The quantity must be at most ${market.maxQty}.` });
  }
  if (found.length || price === null) return found;
  const n = notional(price, qty, market.quoteScale);
  if (D.cmp(n, market.minNotional) < 0) {
    found.push({ field: 'quantity', text: `Below the minimum notional: price × quantity = ${n} ${market.quote}, `
      + `at least ${market.minNotional} ${market.quote} is needed.` });
    return found;
  }
  const hold = holdOf(side, price, qty, market);
  const have = available ? available[hold.asset] : undefined;
  if (have !== undefined && D.cmp(have, hold.amount) < 0) {
    found.push({ field: 'balance', text: `Insufficient funds: this order holds ${hold.amount} ${hold.asset}`
      + `${hold.fee ? ` (incl. ${hold.fee} fee)` : ''}, ${have} ${hold.asset} is available.` });
  }
  return found;
}

/**
 * The engine's price band check (tradex/matching/book_ops.py `outside_band`): a limit price
 * further than `bandBps` from the reference — the last trade, else the mid of the best bid
 * and ask rounded down to the tick, else none — is rejected. `reference` null: no check.
 */
export function outsideBand(price, reference, bandBps) {
  if (!bandBps || reference === null || D.isZero(reference)) return false;
  const diff = D.sub(price, reference);
  const distance = D.isNegative(diff) ? D.sub('0', diff) : diff;
  return D.cmp(D.mul(distance, String(BPS)), D.mul(reference, String(bandBps))) > 0;
}

/** The band's reference price of `market` now (see `outsideBand`), or null. */
export async function bandReference(market) {
  const query = { symbol: market.symbol };
  const ticker = await api('GET', '/api/v3/ticker/24hr', { query, auth: false });
  if (ticker.lastPrice && !D.isZero(ticker.lastPrice)) return ticker.lastPrice;
  const book = await api('GET', '/api/v3/depth', { query: { ...query, limit: 5 }, auth: false });
  if (!book.bids.length || !book.asks.length) return null;
  const mid = D.mul(D.add(book.bids[0][0], book.asks[0][0]), '0.5');
  return D.snap(mid, market.tickSize, 'floor');
}

/** The available balance per asset of the caller's (first) account, refreshed live. */
export function useAvailable() {
  const [available, setAvailable] = useState(undefined);
  const load = async () => {
    const found = await api('GET', '/tradex/v1/balances');
    setAvailable(Object.fromEntries(found.balances.map((b) => [b.asset, b.free])));
  };
  useAccountFeed(['balances'], () => { load().catch(() => {}); });
  return [available, load];
}

/** The best opposite price of `symbol` for `side` (or the last trade's), polled. */
function useBestOpposite(symbol, side, enabled) {
  const [best, setBest] = useState(null);
  useEffect(() => {
    if (!enabled) return undefined;
    let live = true;
    const read = async () => {
      try {
        const book = await api('GET', '/api/v3/depth', { query: { symbol, limit: 5 }, auth: false });
        const levels = side === 'BUY' ? book.asks : book.bids;
        let price = levels.length ? levels[0][0] : null;
        if (price === null) {
          const ticker = await api('GET', '/api/v3/ticker/24hr', { query: { symbol }, auth: false });
          price = ticker.lastPrice && !D.isZero(ticker.lastPrice) ? ticker.lastPrice : null;
        }
        if (live) setBest(price);
      } catch (_e) { if (live) setBest(null); }
    };
    read();
    const timer = setInterval(read, POLL_BEST_MS);
    return () => { live = false; clearInterval(timer); };
  }, [symbol, side, enabled]);
  return best;
}

const TYPES = [['LIMIT', 'Limit'], ['MARKET', 'Market']];
const TIFS = ['GTC', 'IOC', 'FOK'];

export function OrderTicket({ market }) {
  const m = market;
  const [side, setSide] = useState('BUY');
  const [type, setType] = useState('LIMIT');
  const [priceText, setPriceText] = useState('');
  const [qtyText, setQtyText] = useState('');
  const [tif, setTif] = useState('GTC');
  const [postOnly, setPostOnly] = useState(false);
  const [notes, setNotes] = useState([]); // what was snapped
  const [problems, setProblems] = useState([]);
  const [outcome, setOutcome] = useState(null); // {ok, text, orderId} | {error}
  const [sending, setSending] = useState(false);
  const intent = useRef(null); // {id, key, open}: a timed-out intent is resent with its id
  const unseenSnap = useRef(false); // a value moved since the last send: show it, send nothing
  const [available, reloadAvailable] = useAvailable();
  const best = useBestOpposite(m.symbol, side, type === 'MARKET');
  const protection = type === 'MARKET' && best ? protectionPrice(best, m.tickSize, m.protectionBps, side) : null;

  const snapField = (field) => {
    const text = field === 'price' ? priceText : qtyText;
    const value = parseInput(text);
    if (value === null || D.isZero(value)) return null;
    const step = field === 'price' ? m.tickSize : m.stepSize;
    const { value: snapped, snapped: moved } = snapTo(value, step, field === 'price' ? 'nearest' : 'floor');
    if (!moved) return null;
    (field === 'price' ? setPriceText : setQtyText)(snapped);
    const label = field === 'price' ? 'Price' : 'Quantity';
    const note = `${label} snapped from ${value} to ${snapped} `
      + `(${field === 'price' ? `tick ${m.tickSize}` : `lot ${m.stepSize}`}).`;
    setNotes((old) => [...old.filter((n) => !n.startsWith(label)), note]);
    unseenSnap.current = true;
    return snapped;
  };
  const edit = (label, set) => (e) => {
    set(e.target.value);
    setNotes((old) => old.filter((n) => !n.startsWith(label)));
  };

  const submit = async (event) => {
    event.preventDefault();
    if (sending) return;
    setOutcome(null);
    // Off the grid: snap, show it, and send nothing; the trader checks and presses again.
    if (type === 'LIMIT') snapField('price');
    snapField('quantity');
    if (unseenSnap.current) {
      unseenSnap.current = false;
      setProblems([{ field: 'snap', text: 'Values were snapped to the grid: check them and send again.' }]);
      return;
    }
    const price = type === 'MARKET' ? protection : parseInput(priceText);
    const qty = parseInput(qtyText);
    const found = problemsOf({ market: m, side, type, price, qty, available });
    if (type === 'MARKET' && !protection) {
      found.push({ field: 'price', text: 'No price to protect a market order (empty book, no trade): use a limit order.' });
    }
    if (!found.length && type === 'LIMIT' && m.priceBandBps) {
      let reference = null;
      try { reference = await bandReference(m); } catch (_e) { /* not checked: the engine will */ }
      if (outsideBand(price, reference, m.priceBandBps)) {
        found.push({ field: 'price', text: `Outside the price band: more than ${Number(m.priceBandBps) / 100} % `
          + `from ${reference} ${m.quote} (the last trade, else the mid); the engine would reject it.` });
      }
    }
    setProblems(found);
    if (found.length) return;
    const form = { symbol: m.symbol, side, quantity: qty };
    if (type === 'MARKET') form.type = 'MARKET';
    else if (postOnly) Object.assign(form, { type: 'LIMIT_MAKER', price });
    else Object.assign(form, { type: 'LIMIT', timeInForce: tif, price });
    const key = JSON.stringify(form);
    if (!intent.current || intent.current.key !== key || !intent.current.open) {
      intent.current = { id: newId('web'), key, open: true };
    }
    const id = intent.current.id;
    form.newClientOrderId = id;
    setSending(true);
    try {
      const order = await api('POST', '/api/v3/order', { form, headers: { 'Idempotency-Key': id } });
      intent.current.open = false;
      setOutcome({ ok: true, orderId: order.orderId, status: order.status, clientOrderId: id });
      follow(order.orderId);
    } catch (err) {
      // No outcome (timeout, network): the same intent is resent with the same id.
      const unknown = !err.status || err.status >= 500 || err.error === 'TIMEOUT';
      intent.current.open = unknown;
      setOutcome({ error: err, unknown });
    } finally {
      setSending(false);
      reloadAvailable().catch(() => {});
    }
  };

  // The account processor accepted the order: read it again until the engine has answered,
  // and show that answer under the acceptance. NEW is also what the API answers before the
  // engine has: an order still NEW after the last read is shown resting. An open order is
  // then read again on the account's feed (useAccountFeed: soon after messages of its orders
  // and fills channels, and every few seconds), until it has ended or the ticket shows
  // another outcome.
  const [followed, setFollowed] = useState(null); // an open order's id, past its first reads
  const read = async (orderId, resting) => {
    const order = await api('GET', '/api/v3/order', { query: { symbol: m.symbol, orderId } });
    if (ENGINE_DONE.includes(order.status) || (resting && order.status === 'NEW')) {
      setOutcome((now) => (now && now.ok && now.orderId === orderId
        ? { ...now, engine: { status: order.status, reason: order.rejectReason } } : now));
    }
    return order;
  };
  const follow = async (orderId) => {
    setFollowed(null);
    let last = null;
    for (let k = 0; k < FOLLOW_READS; k += 1) {
      await new Promise((done) => { setTimeout(done, FOLLOW_MS); });
      try { last = await read(orderId, k === FOLLOW_READS - 1); } catch (_e) { continue; } // not readable yet
      if (ENGINE_DONE.includes(last.status)) break;
    }
    if (last && !ENDED.includes(last.status)) setFollowed(orderId);
  };
  useAccountFeed(followed === null ? [] : [...FOLLOW_CHANNELS, `order-${followed}`], () => {
    if (followed === null) return;
    read(followed, true).then((order) => { if (ENDED.includes(order.status)) setFollowed(null); }, () => {});
  });
  useEffect(() => { // the ticket shows something else now: stop following
    if (followed !== null && !(outcome && outcome.orderId === followed)) setFollowed(null);
  }, [outcome]);

  const hold = (() => {
    const price = type === 'MARKET' ? protection : parseInput(priceText);
    const qty = parseInput(qtyText);
    if (!price || !qty || !D.isMultiple(qty, m.stepSize) || !D.isMultiple(price, m.tickSize)) return null;
    try { return holdOf(side, price, qty, m); } catch (_e) { return null; }
  })();
  const problemOf = (field) => problems.filter((p) => p.field === field).map((p) => p.text).join(' ');
  const id = (name) => `ticket-${m.symbol}-${name}`;
  const verb = side === 'BUY' ? 'Buy' : 'Sell';
  const heldAsset = side === 'BUY' ? m.quote : m.base;

  return html`<section class="panel ticket">
    <form onSubmit=${submit} noValidate>
      <fieldset>
        <legend>Order ticket</legend>
        <div class="sides" role="radiogroup" aria-label="Side">
          ${[['BUY', 'Buy'], ['SELL', 'Sell']].map(([value, label]) => html`
            <label class=${`side ${value.toLowerCase()}${side === value ? ' chosen' : ''}`}>
              <input type="radio" name=${id('side')} value=${value} checked=${side === value}
                onChange=${() => { setSide(value); setOutcome(null); }} />${label}</label>`)}
        </div>
        <div class="field">
          <label for=${id('type')}>Type</label>
          <select id=${id('type')} value=${type} onChange=${(e) => { setType(e.target.value); setProblems([]); }}>
            ${TYPES.map(([value, label]) => html`<option value=${value}>${label}</option>`)}
          </select>
        </div>
        ${type === 'LIMIT' ? html`<div class="field">
          <label for=${id('price')}>Price</label>
          <input id=${id('price')} inputmode="decimal" autocomplete="off" value=${priceText}
            aria-describedby=${`${id('price')}-hint`} aria-invalid=${problemOf('price') ? 'true' : undefined}
            onInput=${edit('Price', setPriceText)} onBlur=${() => snapField('price')} />
          <small class="hint" id=${`${id('price')}-hint`}>${m.quote} per ${m.base}, tick ${m.tickSize}</small>
          ${problemOf('price') && html`<small class="error">${problemOf('price')}</small>`}
        </div>` : html`<div class="field protection">
          <span class="muted">Protection price</span>
          <output data-testid="protection-price" aria-live="polite">${protection
            ? `${D.fmt(protection)} ${m.quote}` : 'no price (empty book, no trade)'}</output>
          <small class="hint">best ${side === 'BUY' ? 'ask' : 'bid'} ${best ? D.fmt(best) : '—'}
            ${side === 'BUY' ? '+' : '−'} ${Number(m.protectionBps) / 100} %
            (${m.priceBandBps ? 'the instrument\'s band' : 'no band: 5 %'}); the order fills no worse, the hold is computed there</small>
          ${problemOf('price') && html`<small class="error">${problemOf('price')}</small>`}
        </div>`}
        <div class="field">
          <label for=${id('qty')}>Quantity</label>
          <input id=${id('qty')} inputmode="decimal" autocomplete="off" value=${qtyText}
            aria-describedby=${`${id('qty')}-hint`} aria-invalid=${problemOf('quantity') ? 'true' : undefined}
            onInput=${edit('Quantity', setQtyText)} onBlur=${() => snapField('quantity')} />
          <small class="hint" id=${`${id('qty')}-hint`}>${m.base}, lot ${m.stepSize}, min notional ${m.minNotional} ${m.quote}</small>
          ${problemOf('quantity') && html`<small class="error">${problemOf('quantity')}</small>`}
        </div>
        <div class="row">
          <div class="field">
            <label for=${id('tif')}>Time in force</label>
            <select id=${id('tif')} value=${tif} disabled=${type === 'MARKET' || postOnly}
              onChange=${(e) => setTif(e.target.value)}>
              ${TIFS.map((t) => html`<option value=${t}>${t}</option>`)}
            </select>
          </div>
          <label class="check">
            <input type="checkbox" checked=${postOnly} disabled=${type === 'MARKET'}
              onChange=${(e) => setPostOnly(e.target.checked)} />Post-only</label>
        </div>
        <dl class="summary">
          <dt>Available</dt><dd data-testid="ticket-available">${available && available[heldAsset] !== undefined
            ? `${D.fmt(available[heldAsset])} ${heldAsset}` : '—'}</dd>
          <dt>Holds</dt><dd>${hold ? `${D.fmt(hold.amount)} ${hold.asset}${hold.fee ? ` (fee ≤ ${hold.fee})` : ''}` : '—'}</dd>
        </dl>
        <button type="submit" class=${side === 'BUY' ? 'buy' : 'sell'} disabled=${sending || m.status !== 'TRADING'}>
          ${verb} ${m.base}${sending ? '…' : ''}</button>
        ${/* below the button: a snap on leaving a field must not move the button under the pointer */ ''}
        ${notes.length > 0 && html`<ul class="snapped" aria-live="polite">${notes.map((n) => html`<li>${n}</li>`)}</ul>`}
        ${problems.filter((p) => p.field === 'balance' || p.field === 'snap').map((p) => html`
          <p class="notice warn">${p.text}</p>`)}
        ${m.status !== 'TRADING' && html`<p class="muted">Trading is halted on ${m.symbol}.</p>`}
      </fieldset>
    </form>
    <${Outcome} outcome=${outcome} />
  </section>`;
}

function Outcome({ outcome }) {
  if (!outcome) return null;
  if (outcome.ok) {
    const engine = outcome.engine;
    return html`<p class="notice ok" role="status">${`Accepted: order ${outcome.orderId} `
      + `(${outcome.status}, client id ${outcome.clientOrderId})`}</p>
      ${engine && (engine.status === 'REJECTED' || engine.status === 'EXPIRED'
        ? html`<p class="notice error" role="alert" data-testid="engine-answer">${`The engine ${
          engine.status === 'REJECTED' ? 'rejected' : 'expired'} order ${outcome.orderId}`
          + `${engine.reason ? `: ${engine.reason}` : ''}.`}</p>`
        : html`<p class="notice ok" role="status" data-testid="engine-answer">${`Order ${outcome.orderId}: `
          + `${engine.status === 'NEW' ? 'resting in the book' : engine.status.toLowerCase().replace('_', ' ')}.`}</p>`)}`;
  }
  const e = outcome.error;
  if (outcome.unknown) {
    return html`<p class="notice warn" role="alert">No outcome yet (${errorText(e)}): press again to resend
      the same order (same id, it cannot be placed twice).</p>`;
  }
  return html`<p class="notice error" role="alert">${`Rejected: ${errorText(e)} `}
    <small>${`(code ${e.code}${e.error ? ` ${e.error}` : ''})`}</small></p>`;
}
