// The auditor (auditor or admin role), read-only: the last `tradex audit verify` and the
// signed checkpoints' status, then any account — its balances now or as of a past time,
// its statement for a period, its orders. Nothing here changes anything.
import { html, useEffect, useState } from '../lib/html.js';
import { api, statementPages } from '../lib/api.js';
import { loadMarkets } from '../lib/catalog.js';
import * as D from '../lib/decimal.js';
import { ErrorBox, Field, utc, utcMs, utcInput } from '../lib/ui.js';

const ACCOUNTS_PAGE = 100;
const STATEMENT_ROWS_MAX = 20000; // postings loaded (pages of the API's 1,000) for one statement
const ORDERS_MAX = 500;

function Verdict({ ok, yes, no }) {
  if (ok === null || ok === undefined) return html`<span class="verdict verdict-unknown">unknown</span>`;
  return ok ? html`<span class="verdict verdict-ok">${yes}</span>` : html`<span class="verdict verdict-bad">${no}</span>`;
}

function VerifyStatus({ verify }) {
  if (!verify.ran) {
    return html`<p class="muted">No <code>tradex audit verify</code> has run on this log yet.</p>`;
  }
  const failing = Object.entries(verify.counts).filter(([, n]) => n > 0);
  return html`<dl class="ops-facts">
      <dt>Last run</dt><dd data-volatile>${utc(verify.time)} UTC</dd>
      <dt>Result</dt><dd><${Verdict} ok=${verify.ok} yes="OK" no=${`${verify.violations} violations`} /></dd>
      <dt>Records checked</dt><dd>${verify.records === null ? '' : D.group(String(verify.records))}</dd>
      <dt>Checks run</dt><dd>${Object.keys(verify.counts).length}</dd>
    </dl>
    ${failing.length > 0 && html`<table aria-label="Violations by check" class="ops-table">
      <thead><tr><th>Check</th><th class="num">Violations</th></tr></thead>
      <tbody>${failing.map(([check, n]) => html`<tr key=${check}><td>${check}</td><td class="num">${n}</td></tr>`)}</tbody></table>`}
    ${verify.found.length > 0 && html`<table aria-label="Violations" class="ops-table">
      <thead><tr><th>Check</th><th>Where</th><th>What</th></tr></thead>
      <tbody>${verify.found.map((f, i) => html`<tr key=${i}><td>${f.check}</td><td class="mono">${f.place}</td><td>${f.message}</td></tr>`)}</tbody></table>`}
    ${verify.notes.map((n) => html`<p class="muted" key=${n}>Note: ${n}</p>`)}`;
}

function CheckpointStatus({ status }) {
  const c = status.latest;
  return html`<dl class="ops-facts">
      <dt>Checkpoints on the log</dt><dd>${status.checkpoints}</dd>
      ${c && html`<dt>Newest</dt><dd data-volatile>#${c.seq}, ${utc(c.createdTime)} UTC, key ${c.keyId}</dd>
        <dt>Signature</dt><dd><${Verdict} ok=${c.signatureOk} yes="verifies" no="does NOT verify" /></dd>
        <dt>Link to the previous</dt><dd><${Verdict} ok=${c.linked} yes="intact" no=${c.linkProblem || 'broken'} /></dd>
        <dt>Checkpoint</dt><dd><${Verdict} ok=${c.verifies} yes="verifies" no="does NOT verify" /></dd>`}
    </dl>
    ${status.problem && html`<p class="notice warn" role="note">${status.problem}</p>`}
    ${c && html`<table aria-label="Chain heads" class="ops-table">
      <thead><tr><th>Stream</th><th class="num">Covered to</th><th class="num">Records</th><th>Heads (producer @ offset: hash)</th>
        <th class="num">Log end</th><th class="num">Since</th></tr></thead>
      <tbody>${c.streams.map((s) => html`<tr key=${`${s.topic}-${s.partition}`}>
        <td>${s.topic}[${s.partition}]</td><td class="num">${s.end}</td><td class="num">${s.records}</td>
        <td class="mono" data-volatile>${s.heads.map((h) => html`<div key=${h.producer}>${h.producer || '—'} @ ${h.offset}: ${h.hash.slice(0, 16)}…</div>`)}</td>
        <td class="num">${s.logEnd}</td><td class="num">${s.sinceCheckpoint}</td></tr>`)}</tbody></table>`}`;
}

function Status() {
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api('GET', '/tradex/v1/audit/status').then((s) => { setFound(s); setError(null); }, setError);
  useEffect(() => { load(); }, []);
  return html`<section class="panel" aria-labelledby="audit-status-title">
    <div class="ops-head"><h2 id="audit-status-title">Audit and checkpoints</h2>
      <button type="button" onClick=${load}>Refresh status</button></div>
    <${ErrorBox} error=${error} />
    ${found ? html`<div class="ops-grid">
      <section aria-label="Audit verify"><h3>Audit verify</h3><${VerifyStatus} verify=${found.verify} /></section>
      <section aria-label="Checkpoints"><h3>Signed checkpoints</h3><${CheckpointStatus} status=${found.checkpoints} /></section>
    </div><p class="muted" data-volatile>Read ${utc(found.readTime)} UTC. The full checks scan the log:${' '}
      <code>tradex audit verify --read-models --public-key K</code>,${' '}
      <code>tradex audit checkpoint --check</code>.</p>`
      : html`<p class="muted">Loading…</p>`}
  </section>`;
}

function Balances({ accountId }) {
  const [when, setWhen] = useState('');
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const load = (asOf) => api('GET', '/tradex/v1/audit/balances', { query: { accountId, asOf } })
    .then((b) => { setFound(b); setError(null); }, setError);
  useEffect(() => { setWhen(''); load(undefined); }, [accountId]);
  const show = (event) => {
    event.preventDefault();
    const ms = utcMs(when);
    if (when && ms === null) { setError(new Error('Enter a date and time (UTC).')); return; }
    load(ms === null ? undefined : ms);
  };
  return html`<section class="panel">
    <h3>Balances</h3>
    <form class="inline ops-inline" onSubmit=${show}>
      <label for="audit-asof">As of (UTC)</label>
      <input id="audit-asof" type="datetime-local" step="1" value=${when} onInput=${(e) => setWhen(e.target.value)} />
      <button type="submit">Show</button>
    </form>
    <${ErrorBox} error=${error} />
    ${found && html`<table aria-label="Balances" class="ops-table">
      <caption>Account ${found.accountId}, ${found.asOf === null ? 'now' : `as of ${utc(found.asOf)} UTC`}</caption>
      <thead><tr><th>Asset</th><th class="num">Available</th><th class="num">Held</th><th class="num">Total</th></tr></thead>
      <tbody>${found.balances.map((b) => html`<tr key=${b.asset}><td>${b.asset}</td><td class="num">${D.fmt(b.free)}</td>
        <td class="num">${D.fmt(b.locked)}</td><td class="num">${D.fmt(b.total)}</td></tr>`)}</tbody></table>`}
    ${found && !found.balances.length && html`<p class="muted">No balances.</p>`}
  </section>`;
}

function Statement({ accountId }) {
  const [from, setFrom] = useState(() => utcInput(Date.now() - 24 * 3600 * 1000));
  const [to, setTo] = useState(() => utcInput(Date.now() + 60 * 1000));
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => setFound(null), [accountId]);
  const show = (event) => {
    event.preventDefault();
    const start = utcMs(from);
    const end = utcMs(to);
    if (start === null || end === null || end <= start) { setError(new Error('Enter a period: From before To (UTC).')); return; }
    statementPages('/tradex/v1/audit/statement', { accountId, startTime: start, endTime: end }, STATEMENT_ROWS_MAX)
      .then((s) => { setFound(s); setError(null); }, setError);
  };
  return html`<section class="panel">
    <h3>Statement</h3>
    <form class="inline ops-inline" onSubmit=${show}>
      <label for="audit-from">From (UTC)</label>
      <input id="audit-from" data-volatile type="datetime-local" step="1" value=${from} onInput=${(e) => setFrom(e.target.value)} />
      <label for="audit-to">To (UTC)</label>
      <input id="audit-to" data-volatile type="datetime-local" step="1" value=${to} onInput=${(e) => setTo(e.target.value)} />
      <button type="submit">Load statement</button>
    </form>
    <${ErrorBox} error=${error} />
    ${found && html`<table aria-label="Statement" class="ops-table">
      <thead><tr><th>Time (UTC)</th><th>Asset</th><th class="num">Amount</th><th class="num">Balance after</th><th>Event</th></tr></thead>
      <tbody>${found.postings.map((p) => html`<tr key=${`${p.eventId}-${p.index}`}><td data-volatile>${utc(p.time)}</td><td>${p.asset}</td>
        <td class="num">${D.fmt(p.amount)}</td><td class="num">${D.fmt(p.balanceAfter)}</td><td class="mono" data-volatile>${p.eventId}</td></tr>`)}</tbody></table>
      ${found.next && html`<p class="muted">The first ${found.postings.length} postings: choose a shorter period.</p>`}`}
  </section>`;
}

function Orders({ accountId }) {
  const [markets, setMarkets] = useState([]);
  const [symbol, setSymbol] = useState('');
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { loadMarkets().then(setMarkets, setError); }, []);
  useEffect(() => setFound(null), [accountId]);
  const chosen = symbol || (markets[0] && markets[0].symbol) || '';
  const show = (event) => {
    event.preventDefault();
    api('GET', '/tradex/v1/audit/orders', { query: { accountId, symbol: chosen, limit: ORDERS_MAX } })
      .then((o) => { setFound(o); setError(null); }, setError);
  };
  return html`<section class="panel">
    <h3>Orders</h3>
    <form class="inline ops-inline" onSubmit=${show}>
      <label for="audit-symbol">Symbol</label>
      <select id="audit-symbol" value=${chosen} onChange=${(e) => setSymbol(e.target.value)}>
        ${markets.map((m) => html`<option key=${m.symbol} value=${m.symbol}>${m.symbol}</option>`)}</select>
      <button type="submit">Load orders</button>
    </form>
    <${ErrorBox} error=${error} />
    ${found && html`<table aria-label="Account orders" class="ops-table">
      <thead><tr><th>Order</th><th>Time (UTC)</th><th>Side</th><th>Type</th><th class="num">Price</th>
        <th class="num">Quantity</th><th class="num">Filled</th><th>Status</th></tr></thead>
      <tbody>${found.map((o) => html`<tr key=${o.orderId}><td>${o.orderId}</td><td data-volatile>${utc(o.time)}</td>
        <td class=${o.side === 'BUY' ? 'buy' : 'sell'}>${o.side}</td><td>${o.type}</td><td class="num">${D.fmt(o.price)}</td>
        <td class="num">${D.fmt(o.origQty)}</td><td class="num">${D.fmt(o.executedQty)}</td><td>${o.status}</td></tr>`)}</tbody></table>
      ${!found.length && html`<p class="muted">No orders of ${chosen}.</p>`}`}
  </section>`;
}

function Accounts({ chosen, onChoose }) {
  const [pages, setPages] = useState([0]); // the `after` of each page seen
  const [rows, setRows] = useState([]);
  const [error, setError] = useState(null);
  const after = pages[pages.length - 1];
  useEffect(() => {
    api('GET', '/tradex/v1/audit/accounts', { query: { after, limit: ACCOUNTS_PAGE } }).then((r) => { setRows(r); setError(null); }, setError);
  }, [after]);
  return html`<section class="panel">
    <h2>Accounts</h2>
    <${ErrorBox} error=${error} />
    <table aria-label="Accounts" class="ops-table">
      <thead><tr><th class="num">Account</th><th>Owner</th><th>View</th></tr></thead>
      <tbody>${rows.map((a) => html`<tr key=${a.accountId} aria-selected=${a.accountId === chosen ? 'true' : undefined}>
        <td class="num">${a.accountId}</td><td>${a.username} (#${a.userId})</td>
        <td><button type="button" aria-label=${`View account ${a.accountId}`} aria-pressed=${a.accountId === chosen ? 'true' : 'false'}
          onClick=${() => onChoose(a.accountId)}>View</button></td></tr>`)}</tbody>
    </table>
    <div class="ops-pager">
      <button type="button" disabled=${pages.length < 2} onClick=${() => setPages(pages.slice(0, -1))}>Previous accounts</button>
      <button type="button" disabled=${rows.length < ACCOUNTS_PAGE} onClick=${() => setPages([...pages, rows[rows.length - 1].accountId])}>Next accounts</button>
    </div>
  </section>`;
}

export function Auditor({ route }) {
  const fromRoute = Number(route.parts[1]) || null;
  const [accountId, setAccountId] = useState(fromRoute);
  useEffect(() => { if (fromRoute) setAccountId(fromRoute); }, [fromRoute]);
  return html`<section class="ops">
    <h1>Auditor</h1>
    <p class="muted">Read-only: every account, the ledger as of any time, and whether the log verifies.</p>
    <${Status} />
    <div class="ops-split">
      <${Accounts} chosen=${accountId} onChoose=${setAccountId} />
      <div>${accountId ? html`<h2>Account ${accountId}</h2>
        <${Balances} accountId=${accountId} /><${Statement} accountId=${accountId} /><${Orders} accountId=${accountId} />`
        : html`<p class="notice">Choose an account to see its balances, statement and orders.</p>`}</div>
    </div>
  </section>`;
}
