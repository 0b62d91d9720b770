// Balances: available / held / total per asset (live), a ledger statement for a UTC period
// with its CSV export, and balances as of a past time.
import { html, useEffect, useState } from '../lib/html.js';
import { api, statementPages } from '../lib/api.js';
import { assetScale, loadMarkets } from '../lib/catalog.js';
import * as D from '../lib/decimal.js';
import { ErrorBox, utc, Utc, utcMs, utcInput } from '../lib/ui.js';
import { useAccountFeed } from './orders.js';

const STATEMENT_ROWS_MAX = 20000; // postings loaded (pages of the API's 1,000) for one statement
const CSV_FIELDS = ['eventId', 'index', 'asset', 'amount', 'balanceAfter', 'time'];

function csvCell(value) {
  const s = String(value);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The statement's postings as CSV: the API's fields as sent (exact decimals), then UTC time. */
export function statementCsv(postings) {
  const lines = [[...CSV_FIELDS, 'timeUtc'].join(',')];
  for (const p of postings) lines.push([...CSV_FIELDS.map((f) => csvCell(p[f])), utc(p.time)].join(','));
  return `${lines.join('\n')}\n`;
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

function scaled(text, asset) { return D.fmt(text, assetScale(asset)); }

/** The `Balances` table: one row per asset. */
export function BalanceTable({ balances, caption }) {
  if (!balances.length) return html`<p class="muted">No balances.</p>`;
  return html`<table aria-label="Balances">
    ${caption && html`<caption>${caption}</caption>`}
    <thead><tr><th>Asset</th><th class="num">Available</th><th class="num">Held</th><th class="num">Total</th></tr></thead>
    <tbody>${balances.map((b) => html`<tr key=${b.asset}>
      <td>${b.asset}</td><td class="num">${scaled(b.free, b.asset)}</td>
      <td class="num">${scaled(b.locked, b.asset)}</td><td class="num">${scaled(b.total, b.asset)}</td></tr>`)}
    </tbody>
  </table>`;
}

function Now() {
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  useAccountFeed(['balances'], () => {
    api('GET', '/tradex/v1/balances').then((b) => { setFound(b); setError(null); }, setError);
  });
  return html`<section class="panel">
    <h2>Balances now</h2>
    <${ErrorBox} error=${error} />
    ${found ? html`<p class="muted">Account <span data-volatile>${found.accountId}</span></p><${BalanceTable} balances=${found.balances} />`
      : html`<p class="muted">Loading…</p>`}
  </section>`;
}

function AsOf() {
  const [when, setWhen] = useState('');
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const show = async (event) => {
    event.preventDefault();
    const ms = utcMs(when);
    if (ms === null) { setError(new Error('Enter a date and time (UTC).')); return; }
    try { setFound(await api('GET', '/tradex/v1/balances', { query: { asOf: ms } })); setError(null); } catch (err) { setError(err); }
  };
  return html`<section class="panel as-of">
    <h2>Balances as of a past time</h2>
    <form onSubmit=${show} class="inline">
      <label for="asof-when">As of (UTC)</label>
      <input id="asof-when" type="datetime-local" step="0.001" value=${when} onInput=${(e) => setWhen(e.target.value)} />
      <button type="submit">Show</button>
    </form>
    <${ErrorBox} error=${error} />
    ${found && html`<${BalanceTable} balances=${found.balances} caption=${`As of ${utc(found.asOf)} UTC`} />`}
  </section>`;
}

function Statement() {
  const [from, setFrom] = useState(() => utcInput(Date.now() - 24 * 3600 * 1000));
  const [to, setTo] = useState(() => utcInput(Date.now() + 60 * 1000));
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const show = async (event) => {
    event.preventDefault();
    const start = utcMs(from);
    const end = utcMs(to);
    if (start === null || end === null || end <= start) {
      setError(new Error('Enter a period: From before To (UTC).'));
      return;
    }
    try {
      setFound(await statementPages('/tradex/v1/statement', { startTime: start, endTime: end }, STATEMENT_ROWS_MAX));
      setError(null);
    } catch (err) { setError(err); }
  };
  const exportCsv = () => download(
    `statement-${found.accountId}-${utc(found.startTime).replace(/[ :]/g, '')}-${utc(found.endTime).replace(/[ :]/g, '')}.csv`,
    statementCsv(found.postings));
  return html`<section class="panel statement">
    <h2>Statement</h2>
    <form onSubmit=${show} class="inline">
      <label for="st-from">From (UTC)</label>
      <input id="st-from" data-volatile type="datetime-local" step="1" value=${from} onInput=${(e) => setFrom(e.target.value)} />
      <label for="st-to">To (UTC)</label>
      <input id="st-to" data-volatile type="datetime-local" step="1" value=${to} onInput=${(e) => setTo(e.target.value)} />
      <button type="submit">Show statement</button>
      <button type="button" disabled=${!found} onClick=${exportCsv}>Export CSV</button>
    </form>
    <${ErrorBox} error=${error} />
    ${found && found.next && html`<p class="notice warn" role="status">
      Only the first ${found.postings.length} postings of the period are shown and exported: choose a shorter period.</p>`}
    ${found && html`<table aria-label="Statement">
      <thead><tr><th>Time (UTC)</th><th>Event</th><th class="num">#</th><th>Asset</th><th class="num">Amount</th><th class="num">Balance after</th></tr></thead>
      <tbody>${found.postings.map((p) => html`<tr key=${`${p.eventId}-${p.index}`}>
        <td><${Utc} ms=${p.time} /></td><td class="mono" data-volatile>${p.eventId}</td><td class="num">${p.index}</td><td>${p.asset}</td>
        <td class=${`num ${D.isNegative(p.amount) ? 'sell' : 'buy'}`}>${scaled(p.amount, p.asset)}</td>
        <td class="num">${scaled(p.balanceAfter, p.asset)}</td></tr>`)}
      </tbody>
    </table>
    ${!found.postings.length && html`<p class="muted">No postings in this period.</p>`}`}
  </section>`;
}

export function Balances() {
  const [ready, setReady] = useState(false);
  useEffect(() => { loadMarkets().finally(() => setReady(true)); }, []); // asset scales
  if (!ready) return html`<p class="muted">Loading…</p>`;
  return html`<section class="balances-page grid">
    <h1>Balances</h1>
    <${Now} />
    <${Statement} />
    <${AsOf} />
  </section>`;
}
