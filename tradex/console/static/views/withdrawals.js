// Withdrawals (traders): request one — an asset and an exact amount, checked against the
// available balance before sending — and follow your requests: status, when, and who
// decided (an operator other than you approves or rejects it).
import { html, useEffect, useState } from '../lib/html.js';
import { api, newId, session } from '../lib/api.js';
import * as D from '../lib/decimal.js';
import { ErrorBox, Field, utc } from '../lib/ui.js';

/** The text of a maker or checker: "alice (#7)", or the system. */
export function who(actor) {
  if (!actor) return '';
  if (actor.userId === 0) return 'the system';
  return actor.username ? `${actor.username} (#${actor.userId})` : `user #${actor.userId}`;
}

/** Why `amount` of `balance` (an API balance row) cannot be withdrawn, or ''. */
export function amountProblem(amount, balance, scale) {
  if (!amount) return 'Enter an amount.';
  let units;
  try { units = D.toUnits(amount, scale); } catch (_e) {
    return `Enter a number with at most ${scale} decimals.`;
  }
  if (units <= 0n) return 'The amount must be more than zero.';
  if (balance && D.cmp(amount, balance.free) > 0) return `More than available (${D.fmt(balance.free, scale)}).`;
  return '';
}

function scaleOf(balance) {
  // the API writes every amount with the asset's scale: its decimals are the scale
  return balance ? D.decimals(balance.total) : 0;
}

function RequestForm({ accountId, balances, onDone }) {
  const [asset, setAsset] = useState('');
  const [amount, setAmount] = useState('');
  const [key, setKey] = useState(() => newId('wd'));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const held = balances.filter((b) => !D.isZero(b.total));
  const chosen = held.find((b) => b.asset === asset) || held[0];
  const scale = scaleOf(chosen);
  const problem = chosen ? amountProblem(amount, chosen, scale) : 'Nothing to withdraw: no balance.';
  const change = (set) => (e) => { set(e.target.value); setKey(newId('wd')); setDone(null); };
  const submit = async (event) => {
    event.preventDefault();
    if (problem || busy) { setError(new Error(problem)); return; }
    setBusy(true);
    try {
      const found = await api('POST', '/tradex/v1/withdrawals', {
        body: { accountId, asset: chosen.asset, amount: D.normalize(amount, scale) },
        headers: { 'Idempotency-Key': key },
      });
      setDone(found); setError(null); setAmount(''); setKey(newId('wd'));
      onDone();
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return html`<form class="panel ops-form" onSubmit=${submit} aria-label="Request a withdrawal">
    <h2>Request a withdrawal</h2>
    <${Field} id="wd-asset" label="Asset">
      <select id="wd-asset" value=${chosen ? chosen.asset : ''} onChange=${change(setAsset)}>
        ${held.map((b) => html`<option key=${b.asset} value=${b.asset}>${b.asset}</option>`)}
      </select>
    <//>
    <${Field} id="wd-amount" label="Amount" hint=${chosen ? `Available: ${D.fmt(chosen.free, scale)} ${chosen.asset}` : ''}
      error=${amount && problem ? problem : ''}>
      <input id="wd-amount" inputmode="decimal" autocomplete="off" value=${amount}
        aria-describedby="wd-amount-hint" aria-invalid=${amount && problem ? 'true' : 'false'}
        onInput=${change(setAmount)} />
    <//>
    <button type="submit" class="primary" disabled=${busy}>Request withdrawal</button>
    <${ErrorBox} error=${error} />
    ${done && html`<p class="notice ok" role="status">${`Requested ${done.amount} ${done.asset}: ${done.withdrawalId} (held until an operator decides).`}</p>`}
  </form>`;
}

/** A table of withdrawals; `admin` adds the account and the decision buttons. */
export function WithdrawalTable({ rows, label, actions }) {
  if (!rows.length) return html`<p class="muted">None.</p>`;
  return html`<table aria-label=${label} class="ops-table">
    <thead><tr>
      <th>Withdrawal</th><th>Account</th><th>Asset</th><th class="num">Amount</th><th>Status</th>
      <th>Requested by</th><th>Requested (UTC)</th><th>Decided by</th><th>Decided (UTC)</th>
      ${actions && html`<th>Decide</th>`}
    </tr></thead>
    <tbody>${rows.map((w) => html`<tr key=${w.withdrawalId}>
      <td class="mono" data-volatile>${w.withdrawalId}</td><td>${w.accountId}</td><td>${w.asset}</td>
      <td class="num">${D.fmt(w.amount)}</td><td><span class=${`status status-${w.status}`}>${w.status}</span></td>
      <td>${who(w.requestedBy)}</td><td data-volatile>${utc(w.requestedTime)}</td>
      <td>${who(w.decidedBy)}</td><td data-volatile>${utc(w.decidedTime)}</td>
      ${actions && html`<td class="actions">${actions(w)}</td>`}
    </tr>`)}</tbody>
  </table>`;
}

export function Withdrawals() {
  const accounts = (session.user && session.user.accountIds) || [];
  const [accountId, setAccountId] = useState(accounts[0]);
  const [balances, setBalances] = useState(null);
  const [rows, setRows] = useState([]);
  const [error, setError] = useState(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let live = true;
    Promise.all([
      api('GET', '/tradex/v1/balances', { query: { accountId } }),
      api('GET', '/tradex/v1/withdrawals', { query: { accountId } }),
    ]).then(([b, w]) => {
      if (!live) return;
      setBalances(b.balances);
      setRows([...w].sort((x, y) => (y.requestedTime || 0) - (x.requestedTime || 0)));
      setError(null);
    }, (err) => live && setError(err));
    return () => { live = false; };
  }, [accountId, version]);
  const refresh = () => setVersion((v) => v + 1);
  return html`<section class="ops">
    <h1>Withdrawals</h1>
    ${accounts.length > 1 && html`<${Field} id="wd-account" label="Account">
      <select id="wd-account" value=${accountId} onChange=${(e) => setAccountId(Number(e.target.value))}>
        ${accounts.map((a) => html`<option key=${a} value=${a}>${a}</option>`)}
      </select><//>`}
    <${ErrorBox} error=${error} />
    ${balances ? html`<${RequestForm} accountId=${accountId} balances=${balances} onDone=${refresh} />`
      : html`<p class="muted">Loading…</p>`}
    <section class="panel">
      <div class="ops-head"><h2>Your requests</h2>
        <button type="button" onClick=${refresh}>Refresh</button></div>
      <${WithdrawalTable} rows=${rows} label="Your withdrawals" />
    </section>
  </section>`;
}
