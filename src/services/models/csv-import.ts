import { parse } from 'csv-parse/sync';
import type { GatewayDatabase } from '../db/database.js';
import type { ModelEntry } from '../../entities/model-entry.js';
import { inTransaction } from '../db/transactions.js';
import { ErrorCode, GatewayError } from '../platform/errors.js';
import { blankEntry } from './catalog.js';
import { MODEL_LIMITS } from './limits.js';
import { canonicalModelName } from '../ollama/model-names.js';

/** One catalogue row of the file: Ollama name, alias, description. */
export interface CatalogCsvRow {
  line: number;
  name: string;
  alias: string | null;
  description: string | null;
}

export interface CsvRowError {
  line: number;
  message: string;
}

export interface CatalogImportResult {
  created: number;
  updated: number;
  models: string[];
}

/** Thrown when the file has bad rows: BAD_USER_INPUT, every problem listed in `details.errors`. */
export class CatalogImportError extends GatewayError {
  constructor(readonly errors: CsvRowError[]) {
    super(
      ErrorCode.BAD_USER_INPUT,
      `The catalog file has ${errors.length} bad row${errors.length === 1 ? '' : 's'}; nothing was imported.\n${errors
        .map((e) => `  line ${e.line}: ${e.message}`)
        .join('\n')}`,
      { errors },
    );
  }
}

const HEADER_NAME = /^(ollama[ _-]?)?(model[ _-]?)?name$|^model$/i;
const ALIAS = /^[a-z0-9_][a-z0-9_.-]{0,63}$/;

/**
 * Parses and checks a catalogue CSV (`ollama name,alias,description`; header row optional; alias
 * and description may be empty; quoted fields may span lines). Returns the rows and every
 * problem, each with the line its row starts on.
 */
export function parseCatalogCsv(text: string): { rows: CatalogCsvRow[]; errors: CsvRowError[] } {
  const errors: CsvRowError[] = [];
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text.replace(/\r\n?/g, '\n'), {
      bom: true,
      info: true,
      skip_empty_lines: true,
      relax_column_count: true,
      trim: true,
    }) as unknown as Array<{ record: string[]; info: { lines: number } }>;
  } catch (e) {
    const line = Number((e as { lines?: unknown }).lines) || 1;
    return { rows: [], errors: [{ line, message: `not valid CSV: ${(e as Error).message}` }] };
  }

  const rows: CatalogCsvRow[] = [];
  const names = new Map<string, number>();
  const aliases = new Map<string, number>();
  records.forEach(({ record, info }, i) => {
    const line = info.lines - record.reduce((n, field) => n + (field.match(/\n/g)?.length ?? 0), 0);
    if (i === 0 && HEADER_NAME.test(record[0] ?? '')) return;
    const bad = (message: string) => errors.push({ line, message });
    if (record.length < 1 || record.length > 3) return bad(`expected 1 to 3 columns (Ollama name, alias, description), found ${record.length}`);
    const [rawName = '', rawAlias = '', rawDescription = ''] = record;
    const name = canonicalModelName(rawName);
    if (!name) return bad(rawName ? `"${rawName.slice(0, 100)}" is not a valid Ollama model name` : 'the Ollama name is empty');
    const alias = rawAlias === '' ? null : rawAlias.toLowerCase();
    if (alias !== null && !ALIAS.test(alias)) return bad(`alias "${rawAlias.slice(0, 100)}" is invalid (1 to 64 letters, digits, "_", "-" or "."; no ":" or "/")`);
    if (rawDescription.length > MODEL_LIMITS.descriptionLength) return bad(`the description is longer than ${MODEL_LIMITS.descriptionLength} characters`);
    if (names.has(name)) return bad(`"${name}" already appears on line ${names.get(name)}`);
    if (alias !== null && aliases.has(alias)) return bad(`alias "${alias}" already appears on line ${aliases.get(alias)}`);
    names.set(name, line);
    if (alias !== null) aliases.set(alias, line);
    rows.push({ line, name, alias, description: rawDescription === '' ? null : rawDescription });
  });
  if (rows.length === 0 && errors.length === 0) errors.push({ line: 1, message: 'the file has no catalog rows' });
  return { rows, errors };
}

/**
 * Imports a catalogue CSV: existing entries (by Ollama name) get the file's alias and
 * description, new ones are added enabled. Everything is checked first, against the file and the
 * database, then written in one transaction: on any bad row nothing is imported
 * (CatalogImportError lists every problem by line).
 */
export async function importCatalogCsv(db: GatewayDatabase, text: string): Promise<CatalogImportResult> {
  const { rows, errors } = parseCatalogCsv(text);
  if (errors.length) throw new CatalogImportError(errors);
  return inTransaction(db, async (tx) => {
    const repo = tx.getRepository<ModelEntry>('ModelEntry');
    const existing = await repo.find();
    const byName = new Map(existing.map((e) => [e.name, e]));
    // The catalogue as it will be: existing entries with the file's rows laid over them.
    const finalAlias = new Map(existing.map((e) => [e.name, e.alias]));
    for (const row of rows) finalAlias.set(row.name, row.alias);
    const aliasOwners = new Map<string, string[]>();
    for (const [name, alias] of finalAlias) if (alias) aliasOwners.set(alias, [...(aliasOwners.get(alias) ?? []), name]);
    const conflicts: CsvRowError[] = [];
    for (const row of rows) {
      if (!row.alias) continue;
      const other = aliasOwners.get(row.alias)?.find((n) => n !== row.name);
      if (other) conflicts.push({ line: row.line, message: `alias "${row.alias}" is already used by "${other}"` });
      const shadowed = canonicalModelName(row.alias);
      if (shadowed && shadowed !== row.name && finalAlias.has(shadowed))
        conflicts.push({ line: row.line, message: `alias "${row.alias}" would hide the catalogued model "${shadowed}"` });
    }
    for (const row of rows) {
      const stem = row.name.endsWith(':latest') ? row.name.slice(0, -':latest'.length) : null;
      const other = stem ? aliasOwners.get(stem)?.find((n) => n !== row.name) : undefined;
      if (other) conflicts.push({ line: row.line, message: `"${other}" uses the alias "${stem}", which would hide "${row.name}"` });
    }
    if (conflicts.length) throw new CatalogImportError(conflicts.sort((a, b) => a.line - b.line));

    let created = 0;
    let updated = 0;
    // Clear aliases that move between entries first, so the unique index never sees them twice.
    for (const row of rows) {
      const current = byName.get(row.name);
      if (current?.alias && current.alias !== row.alias) await repo.update({ id: current.id }, { alias: null });
    }
    for (const row of rows) {
      const current = byName.get(row.name);
      if (current) {
        await repo.update({ id: current.id }, { alias: row.alias, description: row.description, updatedAt: new Date() });
        updated++;
      } else {
        await repo.insert({ ...blankEntry(row.name), alias: row.alias, description: row.description });
        created++;
      }
    }
    return { created, updated, models: rows.map((r) => r.name) };
  });
}
