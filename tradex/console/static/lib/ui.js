// Small shared pieces of UI. Views keep their own components; what two views need lives here.
import { html } from './html.js';

/** A labelled form field; `error` (text) is shown under it and tied to it for screen readers. */
export function Field({ id, label, error, hint, children }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<small class="hint" id=${`${id}-hint`}>${hint}</small>`}
    ${error && html`<small class="error" id=${`${id}-error`} role="alert">${error}</small>`}
  </div>`;
}

/** The text of an error for a person: the API's message (and field), or the exception's. */
export function errorText(err) {
  if (!err) return '';
  if (err.field) return `${err.msg || err.message} (${err.field})`;
  return err.msg || err.message || String(err);
}

/** An error box (role=alert) or nothing. */
export function ErrorBox({ error }) {
  return error ? html`<div class="notice error" role="alert">${errorText(error)}</div>` : null;
}

/** ms since the epoch as UTC text: 2026-12-02 15:04:05. */
export function utc(ms) {
  if (ms === null || ms === undefined) return '';
  return new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 19);
}

/** ms since the epoch as UTC text in a <time> (`clock`: the time of day only). */
export function Utc({ ms, clock = false }) {
  if (ms === null || ms === undefined) return null;
  const text = utc(ms);
  return html`<time datetime=${new Date(Number(ms)).toISOString()}>${clock ? text.slice(11) : text}</time>`;
}

/** 'YYYY-MM-DDTHH:MM[:SS[.mmm]]' (a datetime-local input) read as UTC → ms, or null. */
export function utcMs(text) {
  if (!text) return null;
  const ms = Date.parse(`${text.length === 16 ? `${text}:00` : text}Z`);
  return Number.isNaN(ms) ? null : ms;
}

/** ms → the value of a datetime-local input, in UTC. */
export function utcInput(ms) { return new Date(ms).toISOString().slice(0, 19); }
