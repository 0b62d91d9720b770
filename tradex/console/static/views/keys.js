// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Keys() { return html`<p class="notice">Keys: not built yet.</p>`; }
