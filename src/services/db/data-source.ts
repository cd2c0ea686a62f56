import 'reflect-metadata';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { entities } from '../../entities/all.js';
import { migrations } from '../../migrations/all.js';

export interface DatabaseOptions {
  /** PostgreSQL connection string; when unset the SQLite file at `dbPath` is used. */
  databaseUrl?: string;
  dbPath: string;
  /** PostgreSQL schema, for test isolation. Created if missing. */
  schema?: string;
  logging?: boolean;
}

const SQLITE_BUSY_TIMEOUT_MS = 5_000;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Builds the DataSource for SQLite or PostgreSQL; not initialized, migrations not run. */
export function createDataSource(opts: DatabaseOptions): DataSource {
  const common = {
    entities,
    migrations,
    synchronize: false,
    migrationsRun: false,
    migrationsTransactionMode: 'each',
    logging: opts.logging ?? false,
  } as const;

  if (opts.databaseUrl) {
    if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
      throw new Error(`invalid PostgreSQL schema name: ${JSON.stringify(opts.schema)}`);
    }
    const dataSource = new DataSource({
      ...common,
      type: 'postgres',
      url: opts.databaseUrl,
      schema: opts.schema,
      // Raw SQL (query builder expressions, ds.query) must resolve unqualified names in the schema too.
      extra: opts.schema ? { options: `-c search_path=${opts.schema}` } : undefined,
    });
    storeDatesAsTimestamptz(dataSource);
    return dataSource;
  }

  return new DataSource({
    ...common,
    type: 'better-sqlite3',
    database: opts.dbPath,
    timeout: SQLITE_BUSY_TIMEOUT_MS,
    // Runs on every connection the driver opens: synchronous is per connection and is not kept
    // in the file, so a reopened WAL database would otherwise fall back to NORMAL.
    prepareDatabase: (db: BetterSqlite3.Database) => {
      db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    },
  });
}

/**
 * Opens the database: creates the SQLite folder (or the PostgreSQL schema), initializes the
 * DataSource and runs pending migrations, one transaction each. Never synchronizes.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<DataSource> {
  if (opts.databaseUrl) {
    if (opts.schema) await ensureSchema(opts.databaseUrl, opts.schema);
  } else {
    await mkdir(path.dirname(path.resolve(opts.dbPath)), { recursive: true });
  }
  const dataSource = createDataSource(opts);
  await dataSource.initialize();
  try {
    await dataSource.runMigrations({ transaction: 'each' });
  } catch (error) {
    await dataSource.destroy();
    throw error;
  }
  return dataSource;
}

/** `SELECT 1` round trip; false when the database is unreachable or the DataSource is closed. */
export async function databaseHealthy(ds: DataSource): Promise<boolean> {
  if (!ds.isInitialized) return false;
  try {
    await ds.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

async function ensureSchema(databaseUrl: string, schema: string): Promise<void> {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${JSON.stringify(schema)}`);
  // pg is imported here, not at the top: a SQLite gateway never loads it (TypeORM loads it for its own driver).
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } finally {
    await client.end();
  }
}

/**
 * Entities declare their timestamps as `type: Date`, the one type both drivers accept (SQLite maps
 * it to `datetime`, stored as UTC text with milliseconds). TypeORM maps `Date` to `timestamp
 * without time zone` on PostgreSQL, where node-pg writes and reads wall-clock time in the Node
 * process's zone: instants would shift when that zone changes and repeat in a DST fall-back hour.
 * The migrations create `timestamptz` instead; this keeps this DataSource's metadata in step with
 * them, so schema diffs stay empty. Value conversion is the same for both types in the driver.
 */
function storeDatesAsTimestamptz(dataSource: DataSource): void {
  const driver = dataSource.driver;
  const normalizeType = driver.normalizeType.bind(driver);
  driver.normalizeType = (column) => (column.type === Date ? 'timestamp with time zone' : normalizeType(column));
}
