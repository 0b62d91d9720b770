// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Markets() { return html`<p class="notice">Markets: not built yet.</p>`; }
