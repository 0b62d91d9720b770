// Exact decimal arithmetic on strings, through BigInt. Prices, quantities and amounts
// arrive from the API as decimal strings and never become JavaScript numbers: a float
// cannot hold 0.1, nor an int64 of minor units above 2^53.
//
//   toUnits('12.5', 2)  -> 1250n          fromUnits(1250n, 2) -> '12.50'
//   add('1.1', '2.25')  -> '3.35'         mul('0.1', '3') -> '0.3'
//   cmp('1.0', '0.99')  -> 1              snap('10.07', '0.05') -> '10.05'

export class DecimalError extends Error {}

const PATTERN = /^([+-])?(\d*)(?:\.(\d*))?$/;

/** {units: BigInt, scale: int}: the value is units / 10^scale. */
export function parse(text) {
  const s = String(text).trim();
  const m = PATTERN.exec(s);
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) {
    throw new DecimalError(`not a decimal number: "${text}"`);
  }
  const frac = m[3] || '';
  let units = BigInt((m[2] || '0') + frac);
  if (m[1] === '-') units = -units;
  return { units, scale: frac.length };
}

function rescale(units, from, to) {
  return to >= from ? units * 10n ** BigInt(to - from) : units / 10n ** BigInt(from - to);
}

/** The value as an integer count of 10^-scale; more decimals than `scale` is an error. */
export function toUnits(text, scale) {
  const { units, scale: s } = parse(text);
  if (s > scale) {
    const exact = rescale(rescale(units, s, scale), scale, s) === units;
    if (!exact) throw new DecimalError(`"${text}" has more than ${scale} decimals`);
  }
  return rescale(units, s, scale);
}

/** An integer count of 10^-scale as text with exactly `scale` decimals. */
export function fromUnits(units, scale) {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return negative ? `-${digits}` : digits;
}

function align(a, b) {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  return [rescale(x.units, x.scale, scale), rescale(y.units, y.scale, scale), scale];
}

export function add(a, b) { const [x, y, s] = align(a, b); return fromUnits(x + y, s); }
export function sub(a, b) { const [x, y, s] = align(a, b); return fromUnits(x - y, s); }
export function mul(a, b) {
  const x = parse(a); const y = parse(b);
  return fromUnits(x.units * y.units, x.scale + y.scale);
}
export function cmp(a, b) { const [x, y] = align(a, b); return x < y ? -1 : x > y ? 1 : 0; }
export function isZero(a) { return parse(a).units === 0n; }
export function isNegative(a) { return parse(a).units < 0n; }

/** `value` rounded to a multiple of `step` ('floor' toward zero, 'ceil' away, 'nearest'). */
export function snap(value, step, mode = 'floor') {
  const [x, q, s] = align(value, step);
  if (q <= 0n) throw new DecimalError(`step must be positive: "${step}"`);
  let n = x / q;
  const rem = x - n * q;
  if (rem !== 0n) {
    const away = x < 0n ? -1n : 1n;
    if (mode === 'ceil' || (mode === 'nearest' && 2n * (rem < 0n ? -rem : rem) >= q)) n += away;
  }
  return normalize(fromUnits(n * q, s), decimals(step));
}

/** Whether `value` is a whole multiple of `step`. */
export function isMultiple(value, step) { const [x, q] = align(value, step); return q !== 0n && x % q === 0n; }

/** How many decimals `text` is written with. */
export function decimals(text) { return parse(text).scale; }

/** `text` written with exactly `scale` decimals (an error if that would lose digits). */
export function normalize(text, scale) { return fromUnits(toUnits(text, scale), scale); }

/** `text` with thousands separators in the integer part, for display only. */
export function group(text) {
  const [int, frac] = String(text).split('.');
  const sign = int.startsWith('-') ? '-' : '';
  const grouped = int.replace('-', '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return sign + grouped + (frac !== undefined ? `.${frac}` : '');
}

/** Display form of an API decimal: `scale` decimals when given, else as sent. */
export function fmt(text, scale) {
  if (text === null || text === undefined || text === '') return '';
  return group(scale === undefined ? String(text) : normalize(text, Math.max(scale, 0)));
}

/** Percentage change from `a` to `b` as text with two decimals ('' when a is 0). */
export function pctChange(a, b) {
  const [x, y] = align(a, b);
  if (x === 0n) return '';
  const bp = ((y - x) * 1000000n) / x; // 10^-4 percent
  const rounded = bp >= 0n ? (bp + 50n) / 100n : (bp - 50n) / 100n;
  return fromUnits(rounded, 2);
}
