// Percentiles and plain-text tables.

/** Nearest-rank percentile of an unsorted sample (NaN when empty). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export function summary(values: number[]): { n: number; p50: number; p90: number; p99: number; max: number; mean: number } {
  const n = values.length;
  return {
    n,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: n ? Math.max(...values) : NaN,
    mean: n ? values.reduce((a, b) => a + b, 0) / n : NaN,
  };
}

export const round = (v: number, digits = 2) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);

export function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 10_000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

export function ratio(a: number, b: number): number {
  return b > 0 && Number.isFinite(a) ? a / b : NaN;
}

/** A text table with a title, right-aligned numbers, left-aligned first column. */
export function table(title: string, head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [`\n${title}`, line(cells[0]), sep, ...cells.slice(1).map(line)].join('\n');
}

/** The same table as GitHub markdown (for the README). */
export function markdownTable(title: string, head: string[], rows: (string | number)[][]): string {
  const esc = (c: string | number) => String(c).replace(/\|/g, '\\|');
  return [`**${title}**`, '', `| ${head.map(esc).join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`), ''].join('\n');
}
