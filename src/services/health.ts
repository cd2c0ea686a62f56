import { databaseHealthy } from './database.js';
import type { DataSource } from 'typeorm';
import type { OllamaUpstream } from './ollama/upstream.js';

export interface HealthReport {
  /** "ok" when everything answers, "degraded" when the gateway runs but a dependency does not. */
  status: 'ok' | 'degraded';
  version: string;
  database: boolean;
  upstream: boolean;
}

/** Asks the database and the Ollama host whether they answer. */
export async function checkHealth(db: DataSource, upstream: OllamaUpstream, version: string): Promise<HealthReport> {
  const [database, reachable] = await Promise.all([databaseHealthy(db), upstream.reachable()]);
  return { status: database && reachable ? 'ok' : 'degraded', version, database, upstream: reachable };
}
