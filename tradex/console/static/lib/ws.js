// The page's one WebSocket to the TradeX protocol (/tradex/v1/ws, docs/api.md "WebSocket").
//
//   const stop = subscribe({channel: 'book', symbol: 'BTCUSD', depth: 50}, (msg) => ...);
//   stop();                        // the connection closes when nobody listens any more
//   wsStatus()                     // 'connecting' | 'open' | 'closed'
//   const off = onWsStatus((status) => ...);
//
// Several views may follow the same channel: the server sees one subscription, every
// handler gets its messages; a view that joins a live subscription gets its current state
// replayed (`subscribed`, a snapshot made from the kept book or balances, the last ticker
// or candle) instead of a new subscription. Each subscription checks its sequence (sequenceStep): a
// message that skips one is a gap, and the handlers get {type: 'resync', reason} while
// the subscription is made again (a fresh snapshot); a reconnect does the same for every
// subscription. Private channels (orders, fills, balances) authenticate first with the
// session's access token.

import { accessToken, onSession } from './api.js';
import { applyInto, emptyBook, topLevels } from './book.js';

const PRIVATE = new Set(['orders', 'fills', 'balances']);
const CHANNEL = /^(book|trades|ticker|candles:(1m|5m|15m|1h|4h|1d)|orders|fills|balances)$/;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000]; // then 15 s, with jitter
const LINGER_MS = 2000; // an idle connection closes after this
const SUBSCRIPTIONS_MAX = 1024; // the server's per-connection limit
const SEQUENCED = new Set(['snapshot', 'update', 'trades', 'ticker', 'candle', 'order', 'fill', 'balances']);

let socket = null;
let authed = null; // the socket an auth frame was sent on
let status = 'closed';
let attempt = 0;
let reconnectTimer = null;
let lingerTimer = null;
let nextId = 1;
const statusListeners = new Set();
const subs = new Map(); // key -> {spec, handlers:Set, last: Map(accountId|'' -> seq), state, requestId}

/**
 * What to do with a sequenced message given the last sequence applied (null: not synced):
 * 'apply', 'stale' (already covered: drop it) or 'gap' (something was lost: resync).
 * Batches carry `firstSeq`..`seq` and must continue the last one (the first may straddle
 * it: levels are totals); whole-state messages (ticker, candle, private events) carry
 * only `seq` and must not go backwards.
 */
export function sequenceStep(last, msg) {
  if (last === null || last === undefined) return 'stale';
  if (typeof msg.seq !== 'number') return 'apply';
  if (typeof msg.firstSeq === 'number') {
    if (msg.seq <= last) return 'stale';
    if (msg.firstSeq > last + 1) return 'gap';
    return 'apply';
  }
  return msg.seq < last ? 'stale' : 'apply';
}

/** The key of a subscription: one server subscription per key. */
export function keyOf(spec) {
  if (PRIVATE.has(spec.channel)) return `${spec.channel}|${spec.accountId ?? ''}`;
  return `${spec.channel}|${String(spec.symbol).toUpperCase()}`;
}

export function wsStatus() { return status; }

export function onWsStatus(fn) { statusListeners.add(fn); return () => statusListeners.delete(fn); }

function setStatus(next) {
  if (next === status) return;
  status = next;
  for (const fn of statusListeners) fn(status);
}

function url() {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${window.location.host}/tradex/v1/ws`;
}

function freshKept() { return { subscribed: new Map(), book: null, balances: new Map(), last: null }; }

/** Keeps what a late listener needs: the subscribed answers, the book, balances, the last state. */
function keep(sub, msg) {
  const account = msg.accountId ?? '';
  const { kept } = sub;
  if (msg.type === 'subscribed') kept.subscribed.set(account, msg);
  else if (msg.type === 'snapshot' && msg.channel === 'book') kept.book = applyInto(emptyBook(), msg.bids, msg.asks);
  else if (msg.type === 'update' && kept.book) applyInto(kept.book, msg.bids, msg.asks);
  else if (msg.type === 'snapshot' && msg.channel === 'balances') kept.balances.set(account, { ...msg.balances });
  else if (msg.type === 'balances') kept.balances.set(account, { ...(kept.balances.get(account) || {}), ...msg.balances });
  else if (msg.type === 'ticker' || msg.type === 'candle') kept.last = msg;
}

/** The current state of a live subscription, to one late listener, as if it had subscribed. */
function replay(sub, fn) {
  const { kept, spec } = sub;
  for (const [account, answer] of kept.subscribed) {
    const seq = sub.last.has(account) ? sub.last.get(account) : answer.seq;
    fn({ ...answer, seq, replayed: true });
    if (spec.channel === 'book' && kept.book) {
      const depth = spec.depth || 100;
      fn({ type: 'snapshot', channel: 'book', symbol: answer.symbol, seq, replayed: true,
        bids: topLevels(kept.book.bids, 'bids', depth), asks: topLevels(kept.book.asks, 'asks', depth) });
    }
    if (spec.channel === 'balances' && kept.balances.has(account)) {
      fn({ type: 'snapshot', channel: 'balances', accountId: answer.accountId, seq, replayed: true,
        balances: kept.balances.get(account) });
    }
  }
  if (kept.last) fn(kept.last);
}

function deliver(sub, msg) {
  for (const fn of [...sub.handlers]) {
    if (fn.pending) continue; // replayed to first
    try { fn(msg); } catch (e) { console.error('ws handler', e); } // eslint-disable-line no-console
  }
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function request(sub) {
  const { spec } = sub;
  sub.requestId = nextId++;
  sub.state = 'subscribing';
  sub.last = new Map();
  sub.kept = freshKept();
  const frame = { op: 'subscribe', id: sub.requestId, channel: spec.channel };
  if (PRIVATE.has(spec.channel)) {
    if (spec.accountId !== undefined && spec.accountId !== null) frame.accountId = spec.accountId;
  } else {
    frame.symbol = spec.symbol;
    if (spec.channel === 'book' && spec.depth) frame.depth = spec.depth;
  }
  send(frame);
}

function unrequest(sub) {
  const { spec } = sub;
  const frame = { op: 'unsubscribe', id: nextId++, channel: spec.channel };
  if (PRIVATE.has(spec.channel)) {
    if (spec.accountId !== undefined && spec.accountId !== null) frame.accountId = spec.accountId;
  } else frame.symbol = spec.symbol;
  send(frame);
}

/** A gap: tell the handlers, then subscribe again (the server answers a fresh snapshot). */
function resync(sub, reason) {
  deliver(sub, { type: 'resync', reason, channel: sub.spec.channel, symbol: sub.spec.symbol });
  if (!socket || socket.readyState !== WebSocket.OPEN) return; // the reconnect resubscribes
  unrequest(sub);
  request(sub);
}

/** Authenticates this socket with the session's token (once), then calls `fn`. */
async function authThen(fn) {
  const opened = socket;
  if (authed !== opened) {
    let token = null;
    try { token = await accessToken(); } catch (_e) { token = null; }
    if (socket !== opened) return; // closed meanwhile: the reconnect starts over
    if (token) { send({ op: 'auth', id: nextId++, token }); authed = opened; }
  }
  fn();
}

/** Subscribes everything (the private ones after the auth), in order on the one socket. */
function subscribeAll() {
  const list = [...subs.values()];
  const live = (sub) => subs.get(keyOf(sub.spec)) === sub;
  for (const sub of list) if (!PRIVATE.has(sub.spec.channel)) request(sub);
  const own = list.filter((s) => PRIVATE.has(s.spec.channel));
  if (own.length) authThen(() => { for (const sub of own) if (live(sub)) request(sub); });
}

function subOf(msg) {
  if (msg.id !== undefined && msg.id !== null) {
    for (const sub of subs.values()) if (sub.requestId === msg.id) return sub;
  }
  if (!msg.channel) return null;
  if (PRIVATE.has(msg.channel)) {
    return subs.get(`${msg.channel}|${msg.accountId ?? ''}`) || subs.get(`${msg.channel}|`) || null;
  }
  return msg.symbol ? subs.get(`${msg.channel}|${String(msg.symbol).toUpperCase()}`) || null : null;
}

function onMessage(event) {
  let msg;
  try { msg = JSON.parse(event.data); } catch (_e) { return; }
  if (msg.type === 'pong' || msg.type === 'authenticated' || msg.type === 'unsubscribed') return;
  const sub = subOf(msg);
  if (!sub) {
    if (msg.type === 'error') console.warn('ws error', msg); // eslint-disable-line no-console
    return;
  }
  const account = msg.accountId ?? '';
  if (msg.type === 'subscribed') {
    if (msg.id !== sub.requestId) return; // an answer to an earlier request
    sub.state = 'live';
    if (typeof msg.seq === 'number') sub.last.set(account, msg.seq);
    keep(sub, msg);
    deliver(sub, msg);
    return;
  }
  if (msg.type === 'error') {
    if (msg.id === sub.requestId) sub.state = 'failed';
    deliver(sub, msg);
    return;
  }
  if (!SEQUENCED.has(msg.type)) { deliver(sub, msg); return; }
  if (sub.state !== 'live') return; // left over from the subscription a resync replaced
  if (msg.type === 'snapshot') {
    sub.last.set(account, msg.seq);
    keep(sub, msg);
    deliver(sub, msg);
    return;
  }
  const step = sequenceStep(sub.last.get(account), msg);
  if (step === 'stale') return;
  if (step === 'gap') {
    resync(sub, `gap: expected ${sub.last.get(account) + 1}, got ${msg.firstSeq}`);
    return;
  }
  sub.last.set(account, msg.seq);
  keep(sub, msg);
  deliver(sub, msg);
}

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  if (socket || subs.size === 0) return;
  setStatus('connecting');
  const ws = new WebSocket(url());
  socket = ws;
  ws.onopen = () => {
    if (socket !== ws) return;
    attempt = 0;
    setStatus('open');
    subscribeAll();
  };
  ws.onmessage = (event) => { if (socket === ws) onMessage(event); };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    setStatus('closed');
    for (const sub of subs.values()) {
      sub.state = 'closed';
      deliver(sub, { type: 'resync', reason: 'reconnecting', channel: sub.spec.channel, symbol: sub.spec.symbol });
    }
    if (subs.size > 0) {
      const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt += 1;
      reconnectTimer = setTimeout(connect, base + Math.floor(Math.random() * base * 0.3));
    }
  };
}

function closeIdle() {
  lingerTimer = null;
  if (subs.size > 0 || !socket) return;
  const ws = socket;
  socket = null;
  ws.close(1000, 'idle');
  setStatus('closed');
}

/** A new login or a logout: private subscriptions need the socket authenticated anew. */
onSession(() => {
  if (socket && [...subs.values()].some((s) => PRIVATE.has(s.spec.channel))) socket.close(4000, 'session');
});

/** Follows a channel; `handler(msg)` gets its messages. Answers the function that stops it. */
export function subscribe(spec, handler) {
  if (!CHANNEL.test(spec.channel)) throw new Error(`unknown channel "${spec.channel}"`);
  if (!PRIVATE.has(spec.channel) && !spec.symbol) throw new Error(`${spec.channel} needs a symbol`);
  const key = keyOf(spec);
  let sub = subs.get(key);
  if (!sub) {
    if (subs.size >= SUBSCRIPTIONS_MAX) throw new Error(`at most ${SUBSCRIPTIONS_MAX} subscriptions`);
    sub = { spec: { ...spec }, handlers: new Set(), last: new Map(), state: 'new', requestId: null,
      kept: freshKept() };
    subs.set(key, sub);
    if (socket && socket.readyState === WebSocket.OPEN) {
      if (PRIVATE.has(spec.channel)) {
        const fresh = sub;
        authThen(() => { if (subs.get(key) === fresh) request(fresh); });
      } else request(sub);
    }
  }
  const own = (msg) => handler(msg);
  if (sub.state === 'live') {
    // a listener joins a live subscription: after this call returns it gets the current
    // state, then the live messages (none before: it is pending until then)
    own.pending = true;
    const joined = sub;
    setTimeout(() => {
      own.pending = false;
      if (subs.get(key) === joined && joined.handlers.has(own)) replay(joined, own);
    }, 0);
  }
  sub.handlers.add(own);
  clearTimeout(lingerTimer);
  lingerTimer = null;
  connect();
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    sub.handlers.delete(own);
    if (sub.handlers.size === 0 && subs.get(key) === sub) {
      subs.delete(key);
      if (sub.state === 'live' || sub.state === 'subscribing') unrequest(sub);
      if (subs.size === 0) { clearTimeout(lingerTimer); lingerTimer = setTimeout(closeIdle, LINGER_MS); }
    }
  };
}
