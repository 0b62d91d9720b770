// An order book kept from the `book` channel (a Map per side: canonical price -> [price, qty]), and its cumulative depth — exact, on
// decimal strings (lib/decimal.js). Pure functions: the trade page and the browser tests
// call them.
//
//   let book = emptyBook();
//   book = applyLevels(book, snapshot.bids, snapshot.asks, true);   // a snapshot
//   book = applyLevels(book, update.bids, update.asks);              // an update
//   topLevels(book.bids, 'bids', 20)  -> [[price, qty], ...] best first
//   cumulative([[p, q], ...])         -> [{price, qty, total}, ...]

import { add, cmp, isZero, parse, fromUnits } from './decimal.js';

export const LEVELS_MAX = 5000; // levels kept per side; the farthest go first

export function emptyBook() { return { bids: new Map(), asks: new Map() }; }

/** The canonical text of a decimal (trailing zeros dropped), so '10.0' and '10' are one level. */
export function canonical(text) {
  const { units, scale } = parse(text);
  let u = units;
  let s = scale;
  while (s > 0 && u % 10n === 0n) { u /= 10n; s -= 1; }
  return fromUnits(u, s);
}

function applySide(side, levels, isBid) {
  for (const [price, qty] of levels || []) {
    const key = canonical(price);
    if (isZero(qty)) side.delete(key);
    else side.set(key, [price, qty]); // the price as sent, for display
  }
  if (side.size > LEVELS_MAX) {
    const keep = sortLevels([...side.values()], isBid).slice(0, LEVELS_MAX);
    side.clear();
    for (const level of keep) side.set(canonical(level[0]), level);
  }
  return side;
}

/** Applies `bids`/`asks` ([price, qty] level totals, qty "0": gone) to `book` itself. */
export function applyInto(book, bids, asks) {
  applySide(book.bids, bids, true);
  applySide(book.asks, asks, false);
  return book;
}

/** A new book: `book` after `bids`/`asks`; `reset`: a snapshot (the levels are the book). */
export function applyLevels(book, bids, asks, reset = false) {
  const next = reset ? emptyBook() : { bids: new Map(book.bids), asks: new Map(book.asks) };
  return applyInto(next, bids, asks);
}

/** [price, qty] pairs best first: bids high to low, asks low to high. */
export function sortLevels(levels, isBid) {
  return [...levels].sort((a, b) => (isBid ? cmp(b[0], a[0]) : cmp(a[0], b[0])));
}

/** The best `count` levels of a side ('bids' or 'asks') as [price, qty], best first. */
export function topLevels(side, which, count) {
  return sortLevels([...side.values()], which === 'bids').slice(0, count);
}

/** Each level with the running total of the quantity from the best price outwards. */
export function cumulative(levels) {
  let total = '0';
  return levels.map(([price, qty]) => {
    total = add(total, qty);
    return { price, qty, total };
  });
}

/** Whether the book is crossed (best bid >= best ask): never, on a consistent book. */
export function crossed(book) {
  const bid = topLevels(book.bids, 'bids', 1)[0];
  const ask = topLevels(book.asks, 'asks', 1)[0];
  return !!(bid && ask && cmp(bid[0], ask[0]) >= 0);
}
