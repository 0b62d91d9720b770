// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Orders() { return html`<p class="notice">Orders: not built yet.</p>`; }
