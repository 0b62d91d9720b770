// The operator's reference data: assets (create with a scale) and instruments (create,
// update rules, halt and resume, with their status). Every action waits for the reference
// processor's outcome, shown as it came.
import { html, useEffect, useState } from '../lib/html.js';
import { api, newId } from '../lib/api.js';
import { loadMarkets } from '../lib/catalog.js';
import * as D from '../lib/decimal.js';
import { Field } from '../lib/ui.js';
import { Outcome, useAction } from './operator_ui.js';

const CODE = /^[A-Z0-9]{1,16}$/;
const BPS_MAX = 10000;
const PPM_MAX = 1000000;

/** '' when `text` is a positive decimal, else the problem. */
export function positiveProblem(text, name) {
  try { if (D.parse(text).units > 0n) return ''; } catch (_e) { /* said below */ }
  return `${name} must be a decimal number above zero.`;
}

function intProblem(text, name, max) {
  if (!/^\d+$/.test(String(text)) || Number(text) > max) return `${name} is a whole number from 0 to ${max}.`;
  return '';
}

function rulesProblem(form) {
  return (form.minNotional !== '0' && positiveProblem(form.minNotional, 'Min notional'))
    || intProblem(form.priceBandBps, 'Price band', BPS_MAX) || intProblem(form.makerFeePpm, 'Maker fee', PPM_MAX)
    || intProblem(form.takerFeePpm, 'Taker fee', PPM_MAX);
}

function rulesBody(form) {
  return { minNotional: form.minNotional, priceBandBps: Number(form.priceBandBps),
    makerFeePpm: Number(form.makerFeePpm), takerFeePpm: Number(form.takerFeePpm) };
}

function input(id, label, value, set, extra = {}) {
  return html`<${Field} id=${id} label=${label} hint=${extra.hint}>
    <input id=${id} value=${value} autocomplete="off" inputmode=${extra.inputmode || 'decimal'}
      onInput=${(e) => set(e.target.value)} /><//>`;
}

export function Assets({ assets, onChange }) {
  const [code, setCode] = useState('');
  const [scale, setScale] = useState('2');
  const action = useAction();
  const submit = (event) => {
    event.preventDefault();
    const problem = (!CODE.test(code) && 'A code is 1 to 16 of A-Z and 0-9.') || intProblem(scale, 'Scale', 18);
    action.run(problem, () => api('POST', '/tradex/v1/admin/assets', {
      body: { code, scale: Number(scale) }, headers: { 'Idempotency-Key': newId('asset') } }),
    () => { onChange(); return `Created ${code} with ${scale} decimals.`; });
  };
  return html`<div class="ops-grid">
    <section class="panel">
      <h2>Assets</h2>
      <table aria-label="Assets" class="ops-table"><thead><tr><th>Asset</th><th class="num">Scale</th></tr></thead>
        <tbody>${assets.map((a) => html`<tr key=${a.asset}><td>${a.asset}</td><td class="num">${a.scale}</td></tr>`)}</tbody>
      </table>
    </section>
    <form class="panel ops-form" onSubmit=${submit} aria-label="Create an asset">
      <h2>Create an asset</h2>
      ${input('asset-code', 'Code', code, (v) => setCode(v.toUpperCase()), { inputmode: 'text' })}
      ${input('asset-scale', 'Scale (decimals)', scale, setScale, { inputmode: 'numeric' })}
      <button type="submit" class="primary" disabled=${action.busy}>Create asset</button>
      <${Outcome} action=${action} />
    </form>
  </div>`;
}

function CreateInstrument({ assets, onChange }) {
  const codes = assets.map((a) => a.asset);
  const [form, setForm] = useState({ base: '', quote: '', tickSize: '', stepSize: '', minNotional: '0',
    priceBandBps: '0', makerFeePpm: '0', takerFeePpm: '0' });
  const action = useAction();
  const set = (name) => (value) => setForm({ ...form, [name]: value });
  const base = form.base || codes[0] || '';
  const quote = form.quote || codes[1] || codes[0] || '';
  const submit = (event) => {
    event.preventDefault();
    const symbol = `${base}-${quote}`;
    const problem = (base === quote && 'Base and quote must differ.') || positiveProblem(form.tickSize, 'Tick size')
      || positiveProblem(form.stepSize, 'Step size') || rulesProblem(form);
    action.run(problem, () => api('POST', '/tradex/v1/admin/instruments', {
      body: { symbol, tickSize: form.tickSize, stepSize: form.stepSize, ...rulesBody(form) },
      headers: { 'Idempotency-Key': newId('instrument') } }),
    () => { onChange(); return `Created ${symbol}.`; });
  };
  const select = (id, label, value, name) => html`<${Field} id=${id} label=${label}>
    <select id=${id} value=${value} onChange=${(e) => set(name)(e.target.value)}>
      ${codes.map((c) => html`<option key=${c} value=${c}>${c}</option>`)}</select><//>`;
  return html`<form class="panel ops-form" onSubmit=${submit} aria-label="Create an instrument">
    <h2>Create an instrument</h2>
    <div class="ops-row">${select('inst-base', 'Base asset', base, 'base')}${select('inst-quote', 'Quote asset', quote, 'quote')}</div>
    <div class="ops-row">
      ${input('inst-tick', 'Tick size', form.tickSize, set('tickSize'), { hint: 'price step, quote per base unit' })}
      ${input('inst-step', 'Step size', form.stepSize, set('stepSize'), { hint: 'quantity step, base units' })}
    </div>
    <${RulesFields} id="inst" form=${form} set=${set} />
    <button type="submit" class="primary" disabled=${action.busy}>Create instrument</button>
    <${Outcome} action=${action} />
  </form>`;
}

function RulesFields({ id, form, set }) {
  return html`<div class="ops-row">
    ${input(`${id}-min`, 'Min notional', form.minNotional, set('minNotional'))}
    ${input(`${id}-band`, 'Price band (bps)', form.priceBandBps, set('priceBandBps'), { inputmode: 'numeric' })}
    ${input(`${id}-maker`, 'Maker fee (ppm)', form.makerFeePpm, set('makerFeePpm'), { inputmode: 'numeric' })}
    ${input(`${id}-taker`, 'Taker fee (ppm)', form.takerFeePpm, set('takerFeePpm'), { inputmode: 'numeric' })}
  </div>`;
}

function EditRules({ instrument, onChange, onClose }) {
  const [form, setForm] = useState({ minNotional: instrument.minNotional, priceBandBps: String(instrument.priceBandBps),
    makerFeePpm: String(instrument.makerFeePpm), takerFeePpm: String(instrument.takerFeePpm) });
  const action = useAction();
  const set = (name) => (value) => setForm({ ...form, [name]: value });
  const submit = (event) => {
    event.preventDefault();
    action.run(rulesProblem(form), () => api('POST', '/tradex/v1/admin/instruments/rules', {
      body: { symbol: instrument.symbol, ...rulesBody(form) }, headers: { 'Idempotency-Key': newId('rules') } }),
    () => { onChange(); return `Rules of ${instrument.symbol} updated.`; });
  };
  return html`<form class="panel ops-form" onSubmit=${submit} aria-label=${`Rules of ${instrument.symbol}`}>
    <h2>Rules of ${instrument.symbol}</h2>
    <p class="muted">Tick ${instrument.tickSize}, step ${instrument.stepSize}: these never change.</p>
    <${RulesFields} id="rules" form=${form} set=${set} />
    <button type="submit" class="primary" disabled=${action.busy}>Update rules</button>
    <button type="button" onClick=${onClose}>Close</button>
    <${Outcome} action=${action} />
  </form>`;
}

export function Instruments({ assets, instruments, onChange }) {
  const [editing, setEditing] = useState(null);
  const action = useAction();
  const toggle = (m) => {
    const halting = m.status === 'TRADING';
    action.run('', () => api('POST', `/tradex/v1/admin/instruments/${halting ? 'halt' : 'resume'}`, {
      body: { symbol: m.symbol }, headers: { 'Idempotency-Key': newId(halting ? 'halt' : 'resume') } }),
    () => { onChange(); return `${m.symbol} ${halting ? 'halted' : 'resumed'}.`; });
  };
  useEffect(() => { loadMarkets(true).catch(() => {}); }, [instruments]); // the other pages' catalog
  const shown = editing && instruments.find((m) => m.symbol === editing);
  return html`<div class="ops-grid">
    <section class="panel">
      <h2>Instruments</h2>
      <table aria-label="Instruments" class="ops-table">
        <thead><tr><th>Symbol</th><th>Status</th><th class="num">Tick</th><th class="num">Step</th>
          <th class="num">Min notional</th><th class="num">Band (bps)</th><th class="num">Maker (ppm)</th>
          <th class="num">Taker (ppm)</th><th>Change</th></tr></thead>
        <tbody>${instruments.map((m) => html`<tr key=${m.symbol}>
          <td>${m.symbol}</td><td><span class=${`status status-${m.status}`}>${m.status}</span></td>
          <td class="num">${m.tickSize}</td><td class="num">${m.stepSize}</td><td class="num">${m.minNotional}</td>
          <td class="num">${m.priceBandBps}</td><td class="num">${m.makerFeePpm}</td><td class="num">${m.takerFeePpm}</td>
          <td class="actions">
            <button type="button" aria-label=${`${m.status === 'TRADING' ? 'Halt' : 'Resume'} ${m.symbol}`}
              disabled=${action.busy} onClick=${() => toggle(m)}>${m.status === 'TRADING' ? 'Halt' : 'Resume'}</button>
            <button type="button" aria-label=${`Rules of ${m.symbol}`} onClick=${() => setEditing(m.symbol)}>Rules</button>
          </td></tr>`)}</tbody>
      </table>
      <${Outcome} action=${action} />
    </section>
    ${shown ? html`<${EditRules} key=${shown.symbol} instrument=${shown} onChange=${onChange} onClose=${() => setEditing(null)} />`
      : html`<${CreateInstrument} assets=${assets} onChange=${onChange} />`}
  </div>`;
}
