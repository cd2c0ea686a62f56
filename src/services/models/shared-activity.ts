import type { GatewayDatabase } from '../db/database.js';
import type { SharedActivity } from './idle-reaper.js';
import { modelKey } from '../ollama/model-names.js';


/** A time as the driver returns an aggregate: a Date (PostgreSQL) or UTC text without zone (SQLite). */
function instant(value: unknown): number | null {
  if (value instanceof Date) return value.getTime();
  if (typeof value !== 'string' || !value) return null;
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value.replace(' ', 'T')}Z`);
  return Number.isNaN(t) ? null : t;
}

/**
 * Activity on one Ollama host as the usage log records it, whichever gateway instance served the
 * requests: the models streaming now, and each model's latest request start or end since `since`.
 * Plain SQL on the SqlClient: the idle reaper asks on every check, which must not load TypeORM.
 */
export function usageLogActivity(db: GatewayDatabase, host: string): (since: Date) => Promise<SharedActivity> {
  return async (since) => {
    const rows = await db.sqlClient.all<{ model: string; status: string; created_at: unknown; finished_at: unknown }>(
      `SELECT model, status, MAX(created_at) AS created_at, MAX(finished_at) AS finished_at FROM generations
       WHERE host = ? AND (status = ? OR created_at >= ?) GROUP BY model, status`,
      [host, 'STREAMING', since],
    );
    const busy = new Set<string>();
    const lastActive = new Map<string, number>();
    for (const row of rows) {
      const key = modelKey(row.model);
      if (row.status === 'STREAMING') busy.add(key);
      const at = Math.max(instant(row.created_at) ?? 0, instant(row.finished_at) ?? 0);
      if (at > (lastActive.get(key) ?? 0)) lastActive.set(key, at);
    }
    return { busy, lastActive };
  };
}
