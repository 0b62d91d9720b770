// What the operator's and auditor's screens share: an action's outcome in words (role
// status when done, role alert with the API's reason and code when refused), and the
// maker/checker refusal said plainly (in the words of the screen's action).
import { html, useState } from '../lib/html.js';
import { errorText } from '../lib/ui.js';

// why maker/checker refused a withdrawal's decision (the default: the first screen that had one)
const WITHDRAWAL_MAKER_CHECKER = 'you requested this withdrawal, so another admin must approve or reject it. '
  + 'The account processor refused it, and the refusal is on the log.';

/**
 * Words for a refused action: the reason first, then the API's message and code;
 * `makerChecker`: why maker/checker refused this kind of action.
 */
export function refusalText(err, makerChecker = WITHDRAWAL_MAKER_CHECKER) {
  if (err && err.local) return err.message; // a check before sending: nothing was sent
  if (err && err.error === 'MAKER_CHECKER') return `Refused (MAKER_CHECKER): ${makerChecker} — ${errorText(err)}`;
  const code = err && err.error ? ` (${err.error})` : '';
  return `Refused${code}: ${errorText(err)}`;
}

/**
 * One action at a time with its outcome: `run(problem, call, done)` shows `problem` (a
 * check before sending) or awaits `call()` and shows `done(result)` (the words of success).
 */
export function useAction() {
  const [state, setState] = useState({ busy: false, ok: '', error: null });
  const run = async (problem, call, done) => {
    if (problem) { setState({ busy: false, ok: '', error: Object.assign(new Error(problem), { local: true }) }); return; }
    setState({ busy: true, ok: '', error: null });
    try {
      const result = await call();
      setState({ busy: false, ok: done(result), error: null });
    } catch (err) { setState({ busy: false, ok: '', error: err }); }
  };
  return { ...state, run };
}

export function Outcome({ action, makerChecker }) {
  if (action.error) return html`<p class="notice error" role="alert">${refusalText(action.error, makerChecker)}</p>`;
  if (action.ok) return html`<p class="notice ok" role="status">${action.ok}</p>`;
  return null;
}
