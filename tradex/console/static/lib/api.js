// The console's one way to call the API: same origin, the API's own paths, the access
// token of the logged-in person (a session: /tradex/v1/auth/*). Errors are the API's
// {code, msg, error, field} shape as an ApiError.
//
//   await login('alice', 'secret')                   // then session.user
//   await api('GET', '/api/v3/openOrders', { query: { symbol: 'BTCUSD' } })
//   await api('POST', '/tradex/v1/withdrawals', { body: { asset: 'USD', amount: '10' } })
//   await api('POST', '/api/v3/order', { form: { symbol, side, type, ... } })

export class ApiError extends Error {
  constructor(status, body, retryAfterS = undefined) {
    super(body && body.msg ? body.msg : `HTTP ${status}`);
    this.retryAfterS = retryAfterS; // from Retry-After (LOGIN_LOCKED, rate limits), seconds
    this.status = status;
    this.code = body ? body.code : undefined;
    this.error = body ? body.error : undefined; // e.g. INSUFFICIENT_FUNDS's -2010 NEW_ORDER_REJECTED
    this.field = body ? body.field : undefined;
  }
}

const STORE = 'tradex.console.session';
const listeners = new Set();

/** The logged-in person: {user: {userId, username, roles, accountIds}, tokens} or nulls. */
export const session = { user: null, accessToken: null, refreshToken: null, expiresAt: 0 };

function save() {
  if (session.user) sessionStorage.setItem(STORE, JSON.stringify(session));
  else sessionStorage.removeItem(STORE);
  for (const fn of listeners) fn(session);
}

function restore() {
  try {
    const found = JSON.parse(sessionStorage.getItem(STORE) || 'null');
    if (found && found.user) Object.assign(session, found);
  } catch (_e) { sessionStorage.removeItem(STORE); }
}
restore();

/** Calls `fn(session)` after every login, refresh of the user or logout; returns an unsubscribe. */
export function onSession(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export function hasRole(role) { return !!(session.user && session.user.roles.includes(role)); }

function clear() {
  Object.assign(session, { user: null, accessToken: null, refreshToken: null, expiresAt: 0 });
  save();
}

function keep(tokens) {
  session.accessToken = tokens.accessToken;
  session.refreshToken = tokens.refreshToken;
  session.expiresAt = Date.now() + tokens.expiresIn * 1000;
}

export async function login(username, password) {
  keep(await api('POST', '/tradex/v1/auth/login', { body: { username, password }, auth: false }));
  session.user = await api('GET', '/tradex/v1/me');
  save();
  return session.user;
}

export async function register(username, password) {
  await api('POST', '/tradex/v1/auth/register', { body: { username, password }, auth: false });
  return login(username, password);
}

/** Revokes this session on the server (its access token stops working at once). */
export async function logout() {
  try { if (session.accessToken) await api('POST', '/tradex/v1/auth/logout'); } finally { clear(); }
}

/** Revokes every session of this user (all devices); only then forgets this one. */
export async function logoutEverywhere() {
  const answer = await api('POST', '/tradex/v1/auth/logoutAll');
  clear();
  return answer;
}

/** Reloads the user (roles, accounts) after a change such as a new account. */
export async function reloadUser() { session.user = await api('GET', '/tradex/v1/me'); save(); }

let refreshing = null;

async function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        keep(await api('POST', '/tradex/v1/auth/refresh',
          { body: { refreshToken: session.refreshToken }, auth: false }));
        save();
      } catch (e) {
        clear(); // the session is gone (expired, revoked, reused): log in again
        throw e;
      } finally { refreshing = null; }
    })();
  }
  return refreshing;
}

/** A fresh access token (refreshed when it ends within 30 s), or null when logged out. */
export async function accessToken() {
  if (!session.accessToken) return null;
  if (Date.now() > session.expiresAt - 30000) await refresh();
  return session.accessToken;
}

function search(query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') params.append(k, String(v));
  }
  return params.toString();
}

/**
 * Calls the API. `query`: the query string; `body`: a JSON body (TradeX paths); `form`:
 * a form body (Binance paths); `headers`: extra headers (e.g. Idempotency-Key);
 * `auth` (default true): send the access token when logged in. Answers the JSON body;
 * throws ApiError for any non-2xx answer (after one refresh on an expired token).
 */
export async function api(method, path, { query, body, form, headers, auth = true, signal } = {}) {
  const qs = search(query);
  const url = qs ? `${path}?${qs}` : path;
  for (let attempt = 0; ; attempt += 1) {
    const h = { Accept: 'application/json', ...(headers || {}) };
    let payload;
    if (body !== undefined) { h['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
    if (form !== undefined) {
      h['Content-Type'] = 'application/x-www-form-urlencoded';
      payload = search(form);
    }
    const token = auth ? await accessToken() : null;
    if (token) h.Authorization = `Bearer ${token}`;
    const response = await fetch(url, { method, headers: h, body: payload, signal });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_e) { data = { msg: text }; }
    if (response.ok) return data;
    if (response.status === 401 && token && attempt === 0 && data && data.error === 'TOKEN_INVALID') {
      await refresh();
      continue;
    }
    if (response.status === 401 && token && data && data.error === 'TOKEN_INVALID') clear();
    const retry = Number.parseInt(response.headers.get('Retry-After') || '', 10);
    throw new ApiError(response.status, data, Number.isNaN(retry) ? undefined : retry);
  }
}

/** A fresh idempotency key: a retry of the same action sends the same one. */
export function newId(prefix = 'web') {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** A statement (GET ``path`` with ``query``) page after page, following each page's ``next``,
 *  until the period ends or ``postingsMax`` postings are in: the first page's answer with
 *  every posting, and ``next`` set when the period holds more than were loaded. */
export async function statementPages(path, query, postingsMax) {
  const first = await api('GET', path, { query: { ...query, limit: 1000 } });
  const postings = [...first.postings];
  let next = first.next;
  while (next && postings.length < postingsMax) {
    const page = await api('GET', path, { query: { ...query, limit: 1000, after: next } });
    postings.push(...page.postings);
    next = page.next;
  }
  return { ...first, postings, next };
}
