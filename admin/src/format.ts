export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '?';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : '—');

export const num = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : n.toLocaleString());

/** An input's value as an integer, null when empty. */
export function intOrNull(value: string): number | null {
  const t = value.trim();
  return t === '' ? null : Number(t);
}
