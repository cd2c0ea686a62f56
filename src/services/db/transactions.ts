import type { EntityManager } from 'typeorm';
import type { GatewayDatabase } from './database.js';

/**
 * Runs `work` in a TypeORM transaction (admin CRUD: keys, catalog, sessions) and resolves once it
 * is committed; loads TypeORM on first use. On SQLite it takes its turn in the SqlClient's queue
 * (`exclusive`), so it never overlaps a group commit of the hot path on the other connection,
 * nor another TypeORM transaction (TypeORM's better-sqlite3 driver has one connection, where two
 * overlapping transactions would nest and fail). PostgreSQL runs transactions concurrently.
 * The hot statements use `db.sqlClient.transaction` instead.
 */
export async function inTransaction<T>(db: GatewayDatabase, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  const orm = await db.orm();
  return db.sqlClient.exclusive(() => orm.transaction(work));
}
