import { type GatewayDatabase, databaseHealthy } from '../db/database.js';
import type { OllamaPool } from '../ollama/pool.js';

export interface HealthReport {
  /** "ok" when everything answers, "degraded" when the gateway runs but a dependency does not. */
  status: 'ok' | 'degraded';
  version: string;
  database: boolean;
  /** True when at least one Ollama host answers. */
  upstream: boolean;
}

/** Asks the database and the Ollama hosts whether they answer (one answering host is enough to serve). */
export async function checkHealth(db: GatewayDatabase, pool: OllamaPool, version: string): Promise<HealthReport> {
  const [database, hosts] = await Promise.all([databaseHealthy(db), Promise.all(pool.hosts.map((h) => h.check()))]);
  const reachable = hosts.some(Boolean);
  return { status: database && reachable ? 'ok' : 'degraded', version, database, upstream: reachable };
}
