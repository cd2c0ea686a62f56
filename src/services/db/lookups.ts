import type { ModelEntry } from '../../entities/model-entry.js';
import type { SqlExecutor, SqlRow } from './sql-client.js';
import { jsonText, readBoolean, readDate, readJson, readNullableInt } from './sql-values.js';

// Reads every generation request makes besides its key (the model's catalogue entry and
// settings), and the catalogue reads of the idle reaper's periodic check.

const ENTRY_COLUMNS =
  'id, name, alias, description, system_prompt, enabled, is_default, prompt_price_per_1k, completion_price_per_1k, inactivity_threshold_seconds, created_at, updated_at';

const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const nullableText = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** The entity's fields as a plain object (the entity class would load TypeORM). */
function toModelEntry(row: SqlRow): ModelEntry {
  return {
    id: String(row.id),
    name: String(row.name),
    alias: nullableText(row.alias),
    description: nullableText(row.description),
    systemPrompt: nullableText(row.system_prompt),
    enabled: readBoolean(row.enabled),
    isDefault: readBoolean(row.is_default),
    promptPricePer1k: nullableNumber(row.prompt_price_per_1k),
    completionPricePer1k: nullableNumber(row.completion_price_per_1k),
    inactivityThresholdSeconds: readNullableInt(row.inactivity_threshold_seconds),
    createdAt: readDate(row.created_at)!,
    updatedAt: readDate(row.updated_at)!,
  } as ModelEntry;
}

/** The catalogue entry with this alias or this (canonical) name. */
export async function findModelEntry(db: SqlExecutor, by: { alias: string } | { name: string }): Promise<ModelEntry | null> {
  const row =
    'alias' in by
      ? await db.get(`SELECT ${ENTRY_COLUMNS} FROM model_entries WHERE alias = ?`, [by.alias])
      : await db.get(`SELECT ${ENTRY_COLUMNS} FROM model_entries WHERE name = ?`, [by.name]);
  return row ? toModelEntry(row) : null;
}

/** Every catalogue entry, by name. */
export async function listModelEntries(db: SqlExecutor): Promise<ModelEntry[]> {
  return (await db.all(`SELECT ${ENTRY_COLUMNS} FROM model_entries ORDER BY name ASC`)).map(toModelEntry);
}

/** The entry marked default, if any. */
export async function findDefaultModelEntry(db: SqlExecutor): Promise<ModelEntry | null> {
  const row = await db.get(`SELECT ${ENTRY_COLUMNS} FROM model_entries WHERE is_default = ?`, [true]);
  return row ? toModelEntry(row) : null;
}

/** A setting's JSON value; `found` is false when there is no row. */
export async function readSetting(db: SqlExecutor, key: string): Promise<{ found: boolean; value: unknown }> {
  const row = await db.get('SELECT value FROM settings WHERE key = ?', [key]);
  return row ? { found: true, value: readJson(row.value) } : { found: false, value: null };
}

/** Inserts or replaces a setting's JSON value (null and undefined: SQL NULL, "explicitly cleared"). */
export async function writeSetting(tx: SqlExecutor, key: string, value: unknown, at: Date): Promise<void> {
  await tx.run('INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at', [
    key,
    jsonText(value),
    at,
  ]);
}
