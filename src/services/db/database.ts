import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { pendingMigrations } from './migration-state.js';
import type { SqlClient } from './sql-client.js';
import { SqliteClient } from './sqlite-client.js';

export interface DatabaseOptions {
  /** PostgreSQL connection string; when unset the SQLite file at `dbPath` is used. */
  databaseUrl?: string;
  dbPath: string;
  /** PostgreSQL schema, for test isolation. Created if missing. */
  schema?: string;
  logging?: boolean;
}

export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The gateway's database: the hot path's own SqlClient (`sqlClient`), open from the start, and
 * TypeORM (migrations, admin CRUD), imported and initialized on the first `orm()` call (orm.ts).
 * TypeORM's 300 files cost about 20 MiB of RSS, so a gateway that only serves and idles never
 * loads them (docs/performance.md, "Idle memory").
 */
export class GatewayDatabase {
  private ormLoad: Promise<DataSource> | undefined;
  private ormSource: DataSource | undefined;
  private closed = false;

  constructor(
    readonly options: DatabaseOptions,
    /** Plain SQL for the hot statements and the periodic ones; see sql-client.ts. */
    readonly sqlClient: SqlClient,
  ) {}

  get dialect(): SqlClient['dialect'] {
    return this.sqlClient.dialect;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** TypeORM's DataSource when it has been loaded, without loading it. */
  get loadedOrm(): DataSource | undefined {
    return this.ormSource;
  }

  /**
   * TypeORM's DataSource on the same database, initialized (migrations not run): loaded on the
   * first call, shared by concurrent first calls; a failed load is forgotten, so the next call
   * tries again.
   */
  orm(): Promise<DataSource> {
    if (this.closed) return Promise.reject(new Error('The database is closed.'));
    this.ormLoad ??= import('./orm.js')
      .then(({ openOrm }) => openOrm(this.options))
      .then(
        (dataSource) => {
          // Closed while loading: close() waits for this load and destroys what it returns.
          if (!this.closed) this.ormSource = dataSource;
          return dataSource;
        },
        (error: unknown) => {
          this.ormLoad = undefined;
          throw error;
        },
      );
    return this.ormLoad;
  }

  /** Runs the pending migrations with TypeORM (loading it), one transaction each; returns their names. */
  async migrate(): Promise<string[]> {
    const orm = await this.orm();
    return (await orm.runMigrations({ transaction: 'each' })).map((m) => m.name);
  }

  /** Closes the SqlClient and, when it was loaded (or is loading), TypeORM's DataSource. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const loading = this.ormLoad;
    this.ormSource = undefined;
    try {
      await this.sqlClient.close();
    } finally {
      const dataSource = await loading?.catch(() => undefined);
      if (dataSource?.isInitialized) await dataSource.destroy();
    }
  }
}

/**
 * Opens the database: creates the SQLite folder (or the PostgreSQL schema), opens the SqlClient
 * and compares the `migrations` table with this build's migrations in plain SQL. Only when one is
 * pending (or the database is new) is TypeORM loaded, to run them, one transaction each; it then
 * stays loaded. Never synchronizes.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<GatewayDatabase> {
  const database = await connectDatabase(opts);
  try {
    if ((await pendingMigrations(database.sqlClient, opts.databaseUrl ? opts.schema : undefined)).length) await database.migrate();
  } catch (error) {
    await database.close();
    throw error;
  }
  return database;
}

/** Creates the SQLite folder (or the PostgreSQL schema) and opens the SqlClient; runs no migration. */
export async function connectDatabase(opts: DatabaseOptions): Promise<GatewayDatabase> {
  if (opts.databaseUrl) {
    if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) throw new Error(`invalid PostgreSQL schema name: ${JSON.stringify(opts.schema)}`);
    if (opts.schema) await ensureSchema(opts.databaseUrl, opts.schema);
    // Imported here: a SQLite gateway never loads pg (idle memory).
    return new GatewayDatabase(opts, new (await import('./postgres-client.js')).PostgresClient(opts.databaseUrl, opts.schema));
  }
  await mkdir(path.dirname(path.resolve(opts.dbPath)), { recursive: true });
  return new GatewayDatabase(opts, new SqliteClient(opts.dbPath));
}

/**
 * `SELECT 1` round trip on the SqlClient, and on TypeORM's connection when it is loaded (an idle
 * check must not load it); false when the database is unreachable or closed.
 */
export async function databaseHealthy(db: GatewayDatabase): Promise<boolean> {
  if (!db.isOpen) return false;
  try {
    await db.sqlClient.get('SELECT 1');
    const orm = db.loadedOrm;
    if (orm) await orm.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

async function ensureSchema(databaseUrl: string, schema: string): Promise<void> {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${JSON.stringify(schema)}`);
  // pg is imported here, not at the top: a SQLite gateway never loads it.
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } finally {
    await client.end();
  }
}
