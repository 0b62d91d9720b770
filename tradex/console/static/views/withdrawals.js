// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Withdrawals() { return html`<p class="notice">Withdrawals: not built yet.</p>`; }
