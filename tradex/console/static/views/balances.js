// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Balances() { return html`<p class="notice">Balances: not built yet.</p>`; }
