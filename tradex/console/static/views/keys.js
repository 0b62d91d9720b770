// API keys: create (the secret is shown once), list, revoke; and "log out everywhere".
import { html, useEffect, useRef, useState } from '../lib/html.js';
import { api, hasRole, logoutEverywhere, session } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { ErrorBox, Field, Utc } from '../lib/ui.js';

const PERMISSIONS = [
  { id: 'read', text: 'Read (orders, fills, balances)' },
  { id: 'trade', text: 'Trade (place and cancel orders)' },
  { id: 'withdraw', text: 'Withdraw (request withdrawals)' },
];
const IP_ALLOW_MAX = 32;

/** The allow-list text (addresses or CIDR networks, by line, comma or space) as a list. */
export function parseAllowList(text) {
  return String(text).split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

function NewSecret({ created, onDone }) {
  const [copied, setCopied] = useState('');
  const box = useRef(null);
  useEffect(() => { if (box.current) box.current.focus(); }, []);
  async function copy() {
    try {
      await navigator.clipboard.writeText(created.secretKey);
      setCopied('Secret copied to the clipboard.');
    } catch (_e) {
      const field = document.getElementById('new-key-secret');
      field.select();
      setCopied('Copying is not allowed here: the secret is selected, press Ctrl+C.');
    }
  }
  return html`<div class="panel new-secret" role="region" aria-label="New API key" tabindex="-1" ref=${box}>
    <h2>Key ${created.keyId} created</h2>
    <p class="notice warn" role="alert"><strong>Copy the secret now: it is shown only this once.</strong>
      TradeX does not keep it; if it is lost, revoke this key and create another.</p>
    <div class="field"><label for="new-key-api">API key</label>
      <input id="new-key-api" readonly value=${created.apiKey} class="mono" /></div>
    <div class="field"><label for="new-key-secret">Secret</label>
      <input id="new-key-secret" readonly value=${created.secretKey} class="mono" /></div>
    <div class="actions">
      <button type="button" class="primary" onClick=${copy}>Copy secret</button>
      <button type="button" onClick=${onDone}>I have stored it: hide the secret</button>
      <span role="status" class="muted">${copied}</span>
    </div>
  </div>`;
}

function CreateKey({ onCreated }) {
  const accounts = (session.user && session.user.accountIds) || [];
  const [accountId, setAccountId] = useState(accounts[0]);
  const [permissions, setPermissions] = useState(['read']);
  const [label, setLabel] = useState('');
  const [allow, setAllow] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  function toggle(id, on) {
    setPermissions((old) => (on ? [...new Set([...old, id])] : old.filter((p) => p !== id)));
  }

  async function submit(event) {
    event.preventDefault();
    const ipAllowList = parseAllowList(allow);
    if (permissions.length === 0) { setError({ msg: 'Choose at least one permission.' }); return; }
    if (ipAllowList.length > IP_ALLOW_MAX) {
      setError({ msg: `At most ${IP_ALLOW_MAX} addresses or networks.`, field: 'ipAllowList' });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const body = { permissions, label, ipAllowList };
      if (accountId !== undefined) body.accountId = Number(accountId);
      const created = await api('POST', '/tradex/v1/apiKeys', { body });
      setLabel(''); setAllow('');
      onCreated(created);
    } catch (err) { setError(err); } finally { setBusy(false); }
  }

  return html`<form class="panel create-key" onSubmit=${submit} aria-labelledby="create-key-title">
    <h2 id="create-key-title">Create an API key</h2>
    ${accounts.length > 1 && html`<${Field} id="key-account" label="Account">
      <select id="key-account" value=${accountId} onChange=${(e) => setAccountId(e.currentTarget.value)}>
        ${accounts.map((a) => html`<option value=${a}>${a}</option>`)}
      </select><//>`}
    <fieldset class="permissions"><legend>Permissions</legend>
      ${PERMISSIONS.map((p) => html`<label class="check">
        <input type="checkbox" name="permission" value=${p.id} checked=${permissions.includes(p.id)}
          onChange=${(e) => toggle(p.id, e.currentTarget.checked)} /> ${p.text}</label>`)}
    </fieldset>
    <${Field} id="key-label" label="Label" hint="what the key is for (at most 64 characters)">
      <input id="key-label" maxLength="64" value=${label} onInput=${(e) => setLabel(e.currentTarget.value)} /><//>
    <${Field} id="key-ips" label="IP allow-list"
      hint="addresses or CIDR networks, one per line; empty: any address"
      error=${error && error.field === 'ipAllowList' ? error.msg : undefined}>
      <textarea id="key-ips" rows="3" value=${allow} onInput=${(e) => setAllow(e.currentTarget.value)}></textarea><//>
    ${error && error.field !== 'ipAllowList' && html`<${ErrorBox} error=${error} />`}
    <button type="submit" class="primary" disabled=${busy}>Create key</button>
  </form>`;
}

function KeyRow({ k, onRevoked }) {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState(null);
  async function revoke() {
    setError(null);
    try {
      await api('DELETE', '/tradex/v1/apiKeys', { query: { keyId: k.keyId } });
      setAsking(false);
      onRevoked();
    } catch (err) { setError(err); }
  }
  const live = k.revokedTime === null || k.revokedTime === undefined;
  return html`<tr>
    <td class="mono">${k.keyId}</td><td>${k.label || html`<span class="muted">—</span>`}</td>
    <td>${k.accountId}</td><td>${k.permissions.join(', ')}</td>
    <td>${k.ipAllowList.length ? k.ipAllowList.join(', ') : html`<span class="muted">any</span>`}</td>
    <td><${Utc} ms=${k.createdTime} /></td>
    <td>${live ? 'live' : html`revoked <${Utc} ms=${k.revokedTime} />`}</td>
    <td>${live && (asking
      ? html`<span role="group" aria-label=${`Revoke key ${k.keyId}?`}>Revoke ${k.keyId}?
          <button type="button" class="sell" onClick=${revoke}>Yes, revoke</button>
          <button type="button" onClick=${() => setAsking(false)}>Cancel</button></span>`
      : html`<button type="button" onClick=${() => setAsking(true)}
          aria-label=${`Revoke key ${k.keyId}`}>Revoke</button>`)}
      ${error && html`<${ErrorBox} error=${error} />`}</td>
  </tr>`;
}

// The buttons' names avoid "Log out": the header's `Log out` button keeps a name no other
// button on the page contains (tests find it by that name).
function Everywhere() {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState(null);
  async function go() {
    try {
      await logoutEverywhere();
      navigate('/login');
    } catch (err) { setError(err); }
  }
  return html`<section class="panel everywhere" aria-labelledby="everywhere-title">
    <h2 id="everywhere-title">Log out everywhere</h2>
    <p>End every session of yours, on every device and browser, this one too (API keys stay).</p>
    ${asking
      ? html`<p role="group" aria-label="Confirm ending every session">End every session?
          <button type="button" class="sell" onClick=${go}>Yes, end every session</button>
          <button type="button" onClick=${() => setAsking(false)}>Cancel</button></p>`
      : html`<button type="button" onClick=${() => setAsking(true)}>End every session</button>`}
    <${ErrorBox} error=${error} />
  </section>`;
}

export function Keys() {
  const [keys, setKeys] = useState(null);
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const trader = hasRole('trader');

  async function load() {
    try { setKeys(await api('GET', '/tradex/v1/apiKeys')); setError(null); } catch (err) { setError(err); }
  }
  useEffect(() => { if (trader) load(); }, [trader]);

  return html`<section class="keys">
    <h1>API keys</h1>
    ${trader ? html`
      ${created
        ? html`<${NewSecret} created=${created} onDone=${() => setCreated(null)} />`
        : html`<${CreateKey} onCreated=${(c) => { setCreated(c); load(); }} />`}
      <${ErrorBox} error=${error} />
      <table class="keys-table" aria-label="API keys">
        <thead><tr><th scope="col">Key id</th><th scope="col">Label</th><th scope="col">Account</th>
          <th scope="col">Permissions</th><th scope="col">IP allow-list</th><th scope="col">Created (UTC)</th>
          <th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${keys === null ? html`<tr><td colspan="8" class="muted">Loading…</td></tr>`
          : keys.length === 0 ? html`<tr><td colspan="8" class="muted">No API keys yet.</td></tr>`
          : keys.map((k) => html`<${KeyRow} key=${k.keyId} k=${k} onRevoked=${load} />`)}</tbody>
      </table>`
      : html`<p class="notice">API keys act for a trader's account; your roles have none.</p>`}
    <${Everywhere} />
  </section>`;
}
