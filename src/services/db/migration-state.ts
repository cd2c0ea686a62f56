import { MIGRATION_NAMES } from '../../migrations/names.js';
import type { SqlExecutor } from './sql-client.js';

/**
 * The migrations of this build that the database has not recorded, oldest first, read through
 * the SqlClient without TypeORM. TypeORM records each migration it ran in its `migrations` table
 * (id, timestamp, name) and decides what is pending by name; so does this. A database without
 * that table (a new one) has every migration pending. PostgreSQL: the table is looked up in
 * `schema` when one is configured (as TypeORM does), else in the connection's current schema.
 */
export async function pendingMigrations(sql: SqlExecutor, schema?: string): Promise<string[]> {
  const exists =
    sql.dialect === 'sqlite'
      ? await sql.get("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'migrations'")
      : await sql.get("SELECT 1 AS found FROM information_schema.tables WHERE table_schema = COALESCE(?, current_schema()) AND table_name = 'migrations'", [schema ?? null]);
  if (!exists) return [...MIGRATION_NAMES];
  const table = sql.dialect === 'postgres' && schema ? `"${schema}"."migrations"` : 'migrations';
  const applied = new Set((await sql.all<{ name: string }>(`SELECT name FROM ${table}`)).map((row) => row.name));
  return MIGRATION_NAMES.filter((name) => !applied.has(name));
}
