import { ModelEntry } from '../../entities/model-entry.js';
import type { SqlExecutor, SqlRow } from './sql-client.js';
import { readBoolean, readDate, readJson, readNullableInt } from './sql-values.js';

// Reads every generation request makes besides its key: the model's catalogue entry and settings.

const ENTRY_COLUMNS =
  'id, name, alias, description, system_prompt, enabled, is_default, prompt_price_per_1k, completion_price_per_1k, inactivity_threshold_seconds, created_at, updated_at';

const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const nullableText = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toModelEntry(row: SqlRow): ModelEntry {
  const entry = new ModelEntry();
  entry.id = String(row.id);
  entry.name = String(row.name);
  entry.alias = nullableText(row.alias);
  entry.description = nullableText(row.description);
  entry.systemPrompt = nullableText(row.system_prompt);
  entry.enabled = readBoolean(row.enabled);
  entry.isDefault = readBoolean(row.is_default);
  entry.promptPricePer1k = nullableNumber(row.prompt_price_per_1k);
  entry.completionPricePer1k = nullableNumber(row.completion_price_per_1k);
  entry.inactivityThresholdSeconds = readNullableInt(row.inactivity_threshold_seconds);
  entry.createdAt = readDate(row.created_at)!;
  entry.updatedAt = readDate(row.updated_at)!;
  return entry;
}

/** The catalogue entry with this alias or this (canonical) name. */
export async function findModelEntry(db: SqlExecutor, by: { alias: string } | { name: string }): Promise<ModelEntry | null> {
  const row =
    'alias' in by
      ? await db.get(`SELECT ${ENTRY_COLUMNS} FROM model_entries WHERE alias = ?`, [by.alias])
      : await db.get(`SELECT ${ENTRY_COLUMNS} FROM model_entries WHERE name = ?`, [by.name]);
  return row ? toModelEntry(row) : null;
}

/** A setting's JSON value; `found` is false when there is no row. */
export async function readSetting(db: SqlExecutor, key: string): Promise<{ found: boolean; value: unknown }> {
  const row = await db.get('SELECT value FROM settings WHERE key = ?', [key]);
  return row ? { found: true, value: readJson(row.value) } : { found: false, value: null };
}
