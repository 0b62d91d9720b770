// The console's shell: the header, the navigation by role, and the page of the route.
import { html, render, useEffect, useState } from './lib/html.js';
import { logout, onSession, session, hasRole } from './lib/api.js';
import { useRoute, navigate } from './lib/router.js';
import { Login, Register } from './views/login.js';
import { Keys } from './views/keys.js';
import { Markets } from './views/markets.js';
import { Instrument } from './views/instrument.js';
import { Orders } from './views/orders.js';
import { Balances } from './views/balances.js';
import { Withdrawals } from './views/withdrawals.js';
import { Operator } from './views/operator.js';
import { Auditor } from './views/auditor.js';

const anyone = () => true;
const loggedIn = () => !!session.user;
const trader = () => hasRole('trader');
const admin = () => hasRole('admin');
const auditor = () => hasRole('auditor') || hasRole('admin');

// One entry per page: the first part of the route, its title, who sees it in the menu.
const PAGES = [
  { id: 'markets', title: 'Markets', view: Markets, may: anyone, nav: true },
  { id: 'trade', title: 'Trade', view: Instrument, may: anyone },
  { id: 'orders', title: 'Orders', view: Orders, may: trader, nav: true },
  { id: 'balances', title: 'Balances', view: Balances, may: trader, nav: true },
  { id: 'withdrawals', title: 'Withdrawals', view: Withdrawals, may: trader, nav: true },
  { id: 'keys', title: 'API keys', view: Keys, may: loggedIn, nav: true },
  { id: 'operator', title: 'Operator', view: Operator, may: admin, nav: true },
  { id: 'auditor', title: 'Auditor', view: Auditor, may: auditor, nav: true },
  { id: 'login', title: 'Log in', view: Login, may: anyone },
  { id: 'register', title: 'Register', view: Register, may: anyone },
];

function useSession() {
  const [, setVersion] = useState(0);
  useEffect(() => onSession(() => setVersion((v) => v + 1)), []);
  return session;
}

function Header({ page }) {
  const s = useSession();
  return html`<header class="top">
    <a class="brand" href="#/markets">TradeX</a>
    <nav aria-label="Main">
      ${PAGES.filter((p) => p.nav && p.may()).map((p) => html`
        <a href=${`#/${p.id}`} aria-current=${page && page.id === p.id ? 'page' : undefined}>${p.title}</a>`)}
    </nav>
    <div class="who">
      ${s.user ? html`
        <span class="user" title=${`roles: ${s.user.roles.join(', ')}`}>${s.user.username}
          <small>${s.user.roles.join(' · ')}</small></span>
        <button type="button" onClick=${() => logout().then(() => navigate('/login'))}>Log out</button>`
      : html`<a href="#/login">Log in</a> <a href="#/register">Register</a>`}
    </div>
  </header>`;
}

function App() {
  const route = useRoute();
  useSession();
  const page = PAGES.find((p) => p.id === route.parts[0]);
  let body;
  if (!page) body = html`<p class="notice">No page "${route.path}". <a href="#/markets">Markets</a></p>`;
  else if (!page.may()) {
    body = session.user
      ? html`<p class="notice">Your roles do not give access to ${page.title}.</p>`
      : html`<${Login} next=${route.path} />`;
  } else body = html`<${page.view} route=${route} />`;
  useEffect(() => { document.title = page ? `${page.title} · TradeX` : 'TradeX'; }, [page]);
  return html`<${Header} page=${page} /><main id="main">${body}</main>
    <footer>Charts by <a href="https://www.tradingview.com/" rel="noopener">TradingView</a> Lightweight
      Charts™ · <a href="/docs">API docs</a> · <a href="./vendor/licenses/">licences</a></footer>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the boot message
render(html`<${App} />`, root);
