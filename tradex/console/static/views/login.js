// Not built yet: a stub so the shell runs.
import { html } from '../lib/html.js';
export function Login() { return html`<p class="notice">Login: not built yet.</p>`; }
export function Register() { return html`<p class="notice">Register: not built yet.</p>`; }
