// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Auditor() { return html`<p class="notice">Auditor: not built yet.</p>`; }
