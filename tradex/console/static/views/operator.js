// The operator (admin role): the withdrawal approval queue with maker/checker visible (who
// asked, who approved or rejected, when), deposits, users, assets and instruments.
// Tabs are routes: #/operator/withdrawals (the default), /instruments, /assets, /deposits, /users.
import { html, useEffect, useRef, useState } from '../lib/html.js';
import { api, newId, session } from '../lib/api.js';
import * as D from '../lib/decimal.js';
import { ErrorBox, Field } from '../lib/ui.js';
import { WithdrawalTable } from './withdrawals.js';
import { Assets, Instruments } from './operator_markets.js';
import { Outcome, useAction } from './operator_ui.js';

const TABS = [
  ['withdrawals', 'Withdrawals'], ['instruments', 'Instruments'], ['assets', 'Assets'],
  ['deposits', 'Deposits'], ['users', 'Users'],
];
const DECIDED_SHOWN_MAX = 50; // per status, the newest decisions
const RELOAD_AFTER_MS = [700, 2000, 5000, 10000, 20000]; // the read models follow the log a moment later
const ROLES = ['trader', 'admin', 'auditor'];

/** Data loaded by `load()`, reloaded now and a few times after each change. */
function useReloading(load, deps) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const timers = useRef([]);
  const fetchNow = () => load().then((d) => { setData(d); setError(null); }, setError);
  useEffect(() => { fetchNow(); return () => timers.current.forEach(clearTimeout); }, deps);
  const reload = () => {
    fetchNow();
    timers.current.forEach(clearTimeout);
    timers.current = RELOAD_AFTER_MS.map((ms) => setTimeout(fetchNow, ms));
  };
  return { data, error, reload };
}

function Queue() {
  const me = session.user && session.user.userId;
  const { data, error, reload } = useReloading(() => Promise.all(['REQUESTED', 'PAID', 'RELEASED'].map(
    (status) => api('GET', '/tradex/v1/admin/withdrawals', { query: { status, limit: status === 'REQUESTED' ? 1000 : DECIDED_SHOWN_MAX } }),
  )), []);
  const action = useAction();
  const decide = (w, verb) => action.run('', () => api('POST', `/tradex/v1/admin/withdrawals/${verb}`, {
    body: { accountId: w.accountId, withdrawalId: w.withdrawalId }, headers: { 'Idempotency-Key': newId(verb) } }),
  (found) => { reload(); return `${verb === 'approve' ? 'Approved' : 'Rejected'} ${found.withdrawalId}: ${found.status}.`; });
  const buttons = (w) => html`
    <button type="button" class="buy" disabled=${action.busy} onClick=${() => decide(w, 'approve')}>Approve</button>
    <button type="button" class="sell" disabled=${action.busy} onClick=${() => decide(w, 'reject')}>Reject</button>
    ${w.requestedBy && w.requestedBy.userId === me && html`<small class="muted"> you asked</small>`}`;
  const [waiting, paid, released] = data || [[], [], []];
  const decided = [...paid, ...released].sort((a, b) => (b.decidedTime || 0) - (a.decidedTime || 0));
  return html`<section class="panel">
    <div class="ops-head"><h2>Withdrawal requests</h2><button type="button" onClick=${reload}>Refresh</button></div>
    <p class="muted">Maker/checker: the admin who requested a withdrawal cannot decide it; another admin approves (paid) or rejects (released).</p>
    <${ErrorBox} error=${error} />
    <${Outcome} action=${action} />
    ${data ? html`<${WithdrawalTable} rows=${waiting} label="Withdrawal requests" actions=${buttons} />` : html`<p class="muted">Loading…</p>`}
    <h3>Decided (newest first)</h3>
    <${WithdrawalTable} rows=${decided} label="Decided withdrawals" />
  </section>`;
}

function Deposits({ assets }) {
  const [accountId, setAccountId] = useState('');
  const [asset, setAsset] = useState('');
  const [amount, setAmount] = useState('');
  const [accounts, setAccounts] = useState([]);
  const action = useAction();
  useEffect(() => { api('GET', '/tradex/v1/audit/accounts', { query: { limit: 1000 } }).then(setAccounts, () => {}); }, []);
  const chosen = assets.find((a) => a.asset === asset) || assets[0];
  const submit = (event) => {
    event.preventDefault();
    let problem = /^[1-9]\d*$/.test(accountId) ? '' : 'Enter an account id.';
    if (!problem && !chosen) problem = 'No asset exists yet.';
    if (!problem) {
      try { if (D.toUnits(amount, chosen.scale) <= 0n) problem = 'The amount must be more than zero.'; } catch (_e) {
        problem = `Enter an amount with at most ${chosen.scale} decimals.`;
      }
    }
    const body = { accountId: Number(accountId), asset: chosen && chosen.asset, amount };
    action.run(problem, () => api('POST', '/tradex/v1/admin/deposits', { body, headers: { 'Idempotency-Key': newId('dep') } }),
      () => `Deposited ${D.normalize(amount, chosen.scale)} ${chosen.asset} to account ${accountId}.`);
  };
  return html`<form class="panel ops-form" onSubmit=${submit} aria-label="Deposit">
    <h2>Deposit to an account</h2>
    <p class="muted">Records money that arrived outside TradeX (on the log with you as the actor).</p>
    <${Field} id="dep-account" label="Account">
      <input id="dep-account" list="dep-accounts" inputmode="numeric" autocomplete="off" value=${accountId}
        onInput=${(e) => setAccountId(e.target.value.trim())} />
      <datalist id="dep-accounts">${accounts.map((a) => html`<option key=${a.accountId} value=${a.accountId}>${a.username}</option>`)}</datalist>
    <//>
    <${Field} id="dep-asset" label="Asset">
      <select id="dep-asset" value=${chosen ? chosen.asset : ''} onChange=${(e) => setAsset(e.target.value)}>
        ${assets.map((a) => html`<option key=${a.asset} value=${a.asset}>${a.asset}</option>`)}</select>
    <//>
    <${Field} id="dep-amount" label="Amount" hint=${chosen ? `at most ${chosen.scale} decimals` : ''}>
      <input id="dep-amount" inputmode="decimal" autocomplete="off" value=${amount} onInput=${(e) => setAmount(e.target.value.trim())} />
    <//>
    <button type="submit" class="primary" disabled=${action.busy}>Deposit</button>
    <${Outcome} action=${action} />
  </form>`;
}

// why maker/checker refused a change of roles
const ROLES_MAKER_CHECKER = 'these are your own roles, so another admin must change them. '
  + 'The reference processor refused it, and the refusal is on the log.';

/** `roles` as words: "admin, trader", or "no roles". */
function rolesText(roles) { return roles.length ? roles.join(', ') : 'no roles'; }

/** The checkboxes of the roles (a fieldset named `legend`). */
function RoleBoxes({ legend, roles, onChange, first }) {
  const flip = (role) => onChange(roles.includes(role) ? roles.filter((r) => r !== role) : [...roles, role]);
  return html`<fieldset class="ops-roles"><legend>${legend}</legend>
    ${ROLES.map((r, i) => html`<label key=${r}><input type="checkbox" ref=${i === 0 ? first : undefined}
      checked=${roles.includes(r)} onChange=${() => flip(r)} /> ${r}</label>`)}
  </fieldset>`;
}

/**
 * Gives another user exactly the roles ticked (none allowed); the server refuses an admin's
 * own roles (MAKER_CHECKER) and ends the user's sessions when it changes them.
 */
function EditRoles({ user, onChange, onClose }) {
  const [roles, setRoles] = useState(user.roles);
  const action = useAction();
  const first = useRef(null);
  useEffect(() => { if (first.current) first.current.focus(); }, []);
  const submit = (event) => {
    event.preventDefault();
    if (action.busy) return;
    const chosen = ROLES.filter((r) => roles.includes(r)).sort(); // as the server keeps them
    const same = chosen.length === user.roles.length && chosen.every((r) => user.roles.includes(r));
    action.run(same && `${user.username} already has ${rolesText(chosen)}: nothing to change.`,
      () => api('POST', '/tradex/v1/admin/users/roles', { body: { userId: user.userId, roles: chosen },
        headers: { 'Idempotency-Key': newId('roles') } }),
      () => {
        onChange();
        return `${user.username} (#${user.userId}) now has ${rolesText(chosen)}; their sessions ended, so they must log in again.`;
      });
  };
  const escape = (event) => { if (event.key === 'Escape') onClose(); };
  return html`<form class="panel ops-form" onSubmit=${submit} onKeyDown=${escape} aria-label=${`Roles of ${user.username}`}>
    <h2>Roles of ${user.username}</h2>
    <p class="muted">Now: ${rolesText(user.roles)}. The change ends their sessions (the next login carries the new roles).</p>
    <${RoleBoxes} legend="Roles" roles=${roles} onChange=${setRoles} first=${first} />
    <button type="submit" class="primary" aria-disabled=${action.busy ? 'true' : undefined}>Save roles</button>
    <button type="button" onClick=${onClose}>Close</button>
    <${Outcome} action=${action} makerChecker=${ROLES_MAKER_CHECKER} />
  </form>`;
}

function Users() {
  const me = session.user && session.user.userId;
  const { data, error, reload } = useReloading(() => api('GET', '/tradex/v1/admin/users'), []);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [roles, setRoles] = useState(['trader']);
  const [editing, setEditing] = useState(null); // the userId whose roles are open
  const closed = useRef(null); // the userId whose button gets the focus back
  const action = useAction();
  useEffect(() => {
    if (editing !== null || closed.current === null) return;
    const button = document.getElementById(`roles-of-${closed.current}`);
    closed.current = null;
    if (button) button.focus();
  }, [editing]);
  const close = () => { closed.current = editing; setEditing(null); };
  const submit = (event) => {
    event.preventDefault();
    const problem = (!/^[a-z0-9_.-]{3,32}$/.test(username) && 'A username is 3 to 32 of a-z, 0-9, "_", "." and "-".')
      || (password.length < 10 && 'A password has at least 10 characters.') || (!roles.length && 'Choose at least one role.');
    action.run(problem, () => api('POST', '/tradex/v1/admin/users', { body: { username, password, roles },
      headers: { 'Idempotency-Key': newId('user') } }),
    (user) => { reload(); setPassword(''); return `Created ${user.username} (#${user.userId}): ${user.roles.join(', ')}.`; });
  };
  const change = (u) => (u.userId === me
    ? html`<button type="button" id=${`roles-of-${u.userId}`} aria-label=${`Edit roles of ${u.username}`} disabled
        aria-describedby="roles-own">Edit roles</button> <small id="roles-own" class="muted">yours: another admin changes them</small>`
    : html`<button type="button" id=${`roles-of-${u.userId}`} aria-label=${`Edit roles of ${u.username}`}
        aria-expanded=${editing === u.userId} onClick=${() => setEditing(u.userId)}>Edit roles</button>`);
  const shown = editing !== null && (data || []).find((u) => u.userId === editing);
  return html`<div class="ops-grid">
    <section class="panel"><h2>Users</h2><${ErrorBox} error=${error} />
      <p class="muted">Maker/checker: an admin cannot change their own roles; another admin does.</p>
      <table aria-label="Users" class="ops-table"><thead><tr><th class="num">User</th><th>Username</th><th>Roles</th><th>Accounts</th><th>Change</th></tr></thead>
        <tbody>${(data || []).map((u) => html`<tr key=${u.userId}><td class="num">${u.userId}</td><td>${u.username}</td>
          <td>${u.roles.length ? u.roles.join(', ') : html`<span class="muted">none</span>`}</td><td>${u.accountIds.join(', ')}</td>
          <td class="actions">${change(u)}</td></tr>`)}</tbody></table>
    </section>
    ${shown ? html`<${EditRoles} key=${shown.userId} user=${shown} onChange=${reload} onClose=${close} />`
      : html`<form class="panel ops-form" onSubmit=${submit} aria-label="Create a user">
      <h2>Create a user</h2>
      <${Field} id="user-name" label="Username"><input id="user-name" autocomplete="off" value=${username} onInput=${(e) => setUsername(e.target.value.trim())} /><//>
      <${Field} id="user-password" label="Password"><input id="user-password" type="password" autocomplete="new-password" value=${password} onInput=${(e) => setPassword(e.target.value)} /><//>
      <${RoleBoxes} legend="Roles" roles=${roles} onChange=${setRoles} />
      <button type="submit" class="primary" disabled=${action.busy}>Create user</button>
      <${Outcome} action=${action} />
    </form>`}
  </div>`;
}

export function Operator({ route }) {
  const tab = TABS.some(([id]) => id === route.parts[1]) ? route.parts[1] : 'withdrawals';
  const reference = useReloading(() => Promise.all([
    api('GET', '/tradex/v1/admin/assets'), api('GET', '/tradex/v1/admin/instruments'),
  ]), []);
  const [assets, instruments] = reference.data || [[], []];
  let body;
  if (tab === 'withdrawals') body = html`<${Queue} />`;
  else if (tab === 'deposits') body = html`<${Deposits} assets=${assets} />`;
  else if (tab === 'users') body = html`<${Users} />`;
  else if (tab === 'assets') body = html`<${Assets} assets=${assets} onChange=${reference.reload} />`;
  else body = html`<${Instruments} assets=${assets} instruments=${instruments} onChange=${reference.reload} />`;
  return html`<section class="ops">
    <h1>Operator</h1>
    <nav class="ops-tabs" aria-label="Operator">
      ${TABS.map(([id, title]) => html`<a key=${id} href=${`#/operator/${id}`} aria-current=${tab === id ? 'page' : undefined}>${title}</a>`)}
    </nav>
    <${ErrorBox} error=${reference.error} />
    ${body}
  </section>`;
}
