import type { EntityManager } from 'typeorm';
import type { GatewayDataSource } from './data-source.js';

/**
 * Runs `work` in a TypeORM transaction (admin CRUD: keys, catalog, sessions, settings, leases)
 * and resolves once it is committed. On SQLite it takes its turn in the SqlClient's queue
 * (`exclusive`), so it never overlaps a group commit of the hot path on the other connection,
 * nor another TypeORM transaction (TypeORM's better-sqlite3 driver has one connection, where two
 * overlapping transactions would nest and fail). PostgreSQL runs transactions concurrently.
 * The hot statements use `ds.sqlClient.transaction` instead.
 */
export function inTransaction<T>(ds: GatewayDataSource, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  return ds.sqlClient.exclusive(() => ds.transaction(work));
}
