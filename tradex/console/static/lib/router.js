// Hash routes: #/markets, #/trade/BTCUSD, #/orders?tab=fills. Static files need no
// server-side fallback this way, and a reload keeps the page.
//
//   const route = useRoute();    // {parts: ['trade', 'BTCUSD'], query: URLSearchParams}
//   navigate('/trade/BTCUSD');

import { useEffect, useState } from './html.js';

export function current() {
  const raw = window.location.hash.replace(/^#/, '') || '/markets';
  const [path, qs] = raw.split('?');
  return { path, parts: path.split('/').filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(qs || '') };
}

export function navigate(path) { window.location.hash = `#${path}`; }

export function useRoute() {
  const [route, setRoute] = useState(current());
  useEffect(() => {
    const onChange = () => setRoute(current());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
