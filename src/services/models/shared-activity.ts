import type { GatewayDataSource } from '../db/data-source.js';
import { Generation } from '../../entities/generation.js';
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
 */
export function usageLogActivity(db: GatewayDataSource, host: string): (since: Date) => Promise<SharedActivity> {
  return async (since) => {
    const rows: Array<{ model: string; status: string; createdAt: unknown; finishedAt: unknown }> = await db
      .getRepository(Generation)
      .createQueryBuilder('g')
      .select('g.model', 'model')
      .addSelect('g.status', 'status')
      .addSelect('MAX(g.created_at)', 'createdAt')
      .addSelect('MAX(g.finished_at)', 'finishedAt')
      .where('g.host = :host AND (g.status = :streaming OR g.created_at >= :since)', { host, streaming: 'STREAMING', since })
      .groupBy('g.model')
      .addGroupBy('g.status')
      .getRawMany();
    const busy = new Set<string>();
    const lastActive = new Map<string, number>();
    for (const row of rows) {
      const key = modelKey(row.model);
      if (row.status === 'STREAMING') busy.add(key);
      const at = Math.max(instant(row.createdAt) ?? 0, instant(row.finishedAt) ?? 0);
      if (at > (lastActive.get(key) ?? 0)) lastActive.set(key, at);
    }
    return { busy, lastActive };
  };
}
