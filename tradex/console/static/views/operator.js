// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Operator() { return html`<p class="notice">Operator: not built yet.</p>`; }
