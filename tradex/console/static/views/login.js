// Log in and register (a registration logs in too). `next`: the route to open afterwards.
import { html, useState } from '../lib/html.js';
import { login, register } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { Field, errorText, utc } from '../lib/ui.js';

const USERNAME = /^[a-z0-9_.-]{3,32}$/;
const PASSWORD_MIN = 10;

/** Words for a failed login or registration; `field` names the input it belongs to. */
export function authErrorText(err, now = Date.now()) {
  if (!err) return { text: '' };
  if (err.error === 'LOGIN_LOCKED') {
    const wait = err.retryAfterS;
    const when = wait === undefined ? '' : ` Try again in ${wait} s (after ${utc(now + wait * 1000)} UTC).`;
    return { text: `Too many failed logins: this user is locked for now.${when}` };
  }
  if (err.error === 'CREDENTIALS_INVALID') return { text: 'Wrong username or password.' };
  if (err.error === 'ALREADY_EXISTS') return { text: 'This username is taken: choose another.', field: 'username' };
  if (err.error === 'TOO_MANY_REQUESTS') {
    return { text: `Too many attempts from here; try again in ${err.retryAfterS ?? 60} s.` };
  }
  const field = err.field === 'username' || err.field === 'password' ? err.field : undefined;
  return { text: errorText(err), field };
}

function target(next, route) {
  const wanted = next || (route && route.query.get('next')) || '/markets';
  return wanted.startsWith('/') && !wanted.startsWith('/login') && !wanted.startsWith('/register')
    ? wanted : '/markets';
}

function AuthForm({ mode, next, route }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState(null); // {text, field}
  const registering = mode === 'register';
  const id = `${mode}-`;

  function check() {
    if (!USERNAME.test(username)) {
      return { field: 'username', text: 'A username is 3 to 32 of a-z, 0-9, "_", "." and "-".' };
    }
    if (registering && password.length < PASSWORD_MIN) {
      return { field: 'password', text: `A password has at least ${PASSWORD_MIN} characters.` };
    }
    if (!password) return { field: 'password', text: 'Enter your password.' };
    return null;
  }

  async function submit(event) {
    event.preventDefault();
    const wrong = check();
    setFailure(wrong);
    if (wrong) return;
    setBusy(true);
    try {
      await (registering ? register : login)(username, password);
      navigate(target(next, route));
    } catch (err) {
      setFailure(authErrorText(err));
      setPassword('');
    } finally { setBusy(false); }
  }

  const fieldError = (name) => (failure && failure.field === name ? failure.text : undefined);
  const title = registering ? 'Register' : 'Log in';
  return html`<section class="auth panel" aria-labelledby=${`${id}title`}>
    <h1 id=${`${id}title`}>${registering ? 'Register a trader account' : 'Log in to TradeX'}</h1>
    <form onSubmit=${submit} noValidate>
      <${Field} id=${`${id}username`} label="Username" error=${fieldError('username')}
        hint=${registering ? '3-32 of a-z 0-9 _ . -' : undefined}>
        <input id=${`${id}username`} name="username" autocomplete="username" value=${username}
          autocapitalize="none" spellcheck=${false} required
          aria-invalid=${fieldError('username') ? 'true' : undefined}
          aria-describedby=${fieldError('username') ? `${id}username-error` : undefined}
          onInput=${(e) => setUsername(e.currentTarget.value.trim().toLowerCase())} />
      <//>
      <${Field} id=${`${id}password`} label="Password" error=${fieldError('password')}
        hint=${registering ? `at least ${PASSWORD_MIN} characters` : undefined}>
        <input id=${`${id}password`} name="password" type="password" value=${password} required
          autocomplete=${registering ? 'new-password' : 'current-password'}
          aria-invalid=${fieldError('password') ? 'true' : undefined}
          aria-describedby=${fieldError('password') ? `${id}password-error` : undefined}
          onInput=${(e) => setPassword(e.currentTarget.value)} />
      <//>
      ${failure && !failure.field && html`<div class="notice error" role="alert">${failure.text}</div>`}
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>${title}</button>
        ${registering
          ? html`<span class="muted">Have an account? <a href=${`#/login${next ? `?next=${encodeURIComponent(next)}` : ''}`}>Log in</a></span>`
          : html`<span class="muted">New here? <a href="#/register">Register</a></span>`}
      </div>
    </form>
  </section>`;
}

export function Login({ next, route }) { return html`<${AuthForm} mode="login" next=${next} route=${route} />`; }
export function Register({ next, route }) { return html`<${AuthForm} mode="register" next=${next} route=${route} />`; }
