// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Instrument() { return html`<p class="notice">Instrument: not built yet.</p>`; }
