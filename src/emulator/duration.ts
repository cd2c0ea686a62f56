// keep_alive decoding, ported from Go so the emulator accepts and rejects exactly what Ollama does:
// api.Duration.UnmarshalJSON (number = seconds, string = time.ParseDuration, negative = forever)
// and time.ParseDuration itself, including its error texts.

/** math.MaxInt64 nanoseconds, what Ollama stores for "keep loaded forever" (~292 years). */
export const FOREVER_MS = Number(2n ** 63n - 1n) / 1e6;

const NS_PER_UNIT: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX_U63 = 1n << 63n;

/** Go's time.quote: double-quoted with backslash escapes (enough for error texts). */
function quote(s: string): string {
  return JSON.stringify(s);
}

export class GoDurationError extends Error {}

/** time.ParseDuration: returns nanoseconds or throws GoDurationError with Go's message. */
export function parseGoDuration(orig: string): bigint {
  const invalid = () => new GoDurationError(`time: invalid duration ${quote(orig)}`);
  let s = orig;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw invalid();
  let total = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || (s[0] >= '0' && s[0] <= '9'))) throw invalid();
    const intPart = /^[0-9]*/.exec(s)![0];
    s = s.slice(intPart.length);
    let frac = '';
    if (s[0] === '.') {
      s = s.slice(1);
      frac = /^[0-9]*/.exec(s)![0];
      s = s.slice(frac.length);
    }
    if (intPart === '' && frac === '') throw invalid(); // e.g. ".s"
    const unitMatch = /^[^0-9.]*/.exec(s)![0];
    if (unitMatch === '') throw new GoDurationError(`time: missing unit in duration ${quote(orig)}`);
    s = s.slice(unitMatch.length);
    const unit = NS_PER_UNIT[unitMatch];
    if (unit === undefined) {
      throw new GoDurationError(`time: unknown unit ${quote(unitMatch)} in duration ${quote(orig)}`);
    }
    let v = intPart === '' ? 0n : BigInt(intPart);
    if (v > MAX_U63 / unit) throw invalid();
    v *= unit;
    if (frac !== '' && /[1-9]/.test(frac)) {
      // Go uses float64 for the fractional part; same here (nanosecond-accurate for hours).
      v += BigInt(Math.floor(Number(`0.${frac}`) * Number(unit)));
      if (v > MAX_U63) throw invalid();
    }
    total += v;
    if (total > MAX_U63) throw invalid();
  }
  if (neg) return -total;
  if (total > MAX_U63 - 1n) throw invalid();
  return total;
}

/** Go's reflect type names for the "Unsupported type" error of api.Duration. */
function goTypeName(v: unknown): string {
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  return 'map[string]interface {}';
}

export type KeepAlive = { ok: true; ms: number } | { ok: false; error: string };

/**
 * Decode a request's keep_alive value. `undefined`/`null` means "not given" (Go leaves the pointer nil).
 * Returns milliseconds; FOREVER_MS for any negative value.
 */
export function decodeKeepAlive(v: unknown): KeepAlive | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') {
    return { ok: true, ms: v < 0 ? FOREVER_MS : v * 1000 };
  }
  if (typeof v === 'string') {
    try {
      const ns = parseGoDuration(v);
      return { ok: true, ms: ns < 0n ? FOREVER_MS : Number(ns) / 1e6 };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }
  return { ok: false, error: `Unsupported type: '${goTypeName(v)}'` };
}
