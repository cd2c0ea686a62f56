// Values as the columns store them, written the way TypeORM writes them, so that rows written by
// either path read the same through both. SQLite: `datetime` columns hold UTC text with
// milliseconds ("2026-12-04 13:53:53.123"), booleans 0/1. PostgreSQL: timestamptz and boolean
// (node-pg converts Date and boolean both ways). JSON (TypeORM's simple-json) is text on both.

/** A Date as SQLite's `datetime` text, exactly as TypeORM's SQLite driver formats it. */
export function sqliteDateText(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/** A stored instant as a Date: SQLite text (with or without milliseconds, read as UTC) or PostgreSQL's Date. */
export function readDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  const text = String(value);
  // "YYYY-MM-DD HH:MM[:SS[.SSS]]" without a zone is UTC (SQLite's datetime('now') and TypeORM's format).
  const zoneless = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(text);
  return new Date(zoneless ? `${text.replace(' ', 'T')}Z` : text);
}

export const readBoolean = (value: unknown): boolean => value === true || value === 1 || value === '1' || value === 't';

/** simple-json text as a value; SQL NULL is null. */
export function readJson<T>(value: unknown): T | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

/** A value as simple-json text; null and undefined become SQL NULL (as TypeORM stores them). */
export const jsonText = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));

/** An integer column (node-pg returns bigint and numeric as strings). */
export const readInt = (value: unknown): number => Number(value ?? 0);

export const readNullableInt = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
