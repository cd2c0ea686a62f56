import 'reflect-metadata';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { entities } from '../../entities/all.js';
import { migrations } from '../../migrations/all.js';
import type { SqlClient } from './sql-client.js';
import { SQLITE_BUSY_TIMEOUT_MS, SqliteClient, applySqlitePragmas } from './sqlite-client.js';

export interface DatabaseOptions {
  /** PostgreSQL connection string; when unset the SQLite file at `dbPath` is used. */
  databaseUrl?: string;
  dbPath: string;
  /** PostgreSQL schema, for test isolation. Created if missing. */
  schema?: string;
  logging?: boolean;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * TypeORM's DataSource (migrations, admin CRUD) with the hot path's own SqlClient on the same
 * database (`sqlClient`): opened by `initialize`, closed by `destroy`.
 */
export class GatewayDataSource extends DataSource {
  private client: SqlClient | undefined;

  constructor(
    options: DataSourceOptions,
    private readonly openSql: () => SqlClient | Promise<SqlClient>,
  ) {
    super(options);
  }

  /** Plain SQL for the hot statements (credits, usage rows, key lookup); see sql-client.ts. */
  get sqlClient(): SqlClient {
    if (!this.client) throw new Error('The database is not open.');
    return this.client;
  }

  override async initialize(): Promise<this> {
    await super.initialize();
    storeDatesAsTimestamptz(this);
    try {
      this.client = await this.openSql();
    } catch (error) {
      await super.destroy();
      throw error;
    }
    return this;
  }

  override async destroy(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.close();
    await super.destroy();
  }
}

/** Builds the DataSource for SQLite or PostgreSQL; not initialized, migrations not run. */
export function createDataSource(opts: DatabaseOptions): GatewayDataSource {
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
    const { databaseUrl, schema } = opts;
    return new GatewayDataSource(
      {
        ...common,
        type: 'postgres',
        url: databaseUrl,
        schema,
        // Raw SQL (query builder expressions, ds.query) must resolve unqualified names in the schema too.
        extra: schema ? { options: `-c search_path=${schema}` } : undefined,
      },
      // Imported here: a SQLite gateway never loads pg (idle memory).
      async () => new (await import('./postgres-client.js')).PostgresClient(databaseUrl, schema),
    );
  }

  return new GatewayDataSource(
    {
      ...common,
      type: 'better-sqlite3',
      database: opts.dbPath,
      timeout: SQLITE_BUSY_TIMEOUT_MS,
      // Runs on every connection the driver opens (see applySqlitePragmas).
      prepareDatabase: (db: BetterSqlite3.Database) => applySqlitePragmas(db),
    },
    () => new SqliteClient(opts.dbPath),
  );
}

/**
 * Opens the database: creates the SQLite folder (or the PostgreSQL schema), initializes the
 * DataSource and runs pending migrations, one transaction each. Never synchronizes.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<GatewayDataSource> {
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

/** `SELECT 1` round trips on both paths; false when the database is unreachable or closed. */
export async function databaseHealthy(ds: GatewayDataSource): Promise<boolean> {
  if (!ds.isInitialized) return false;
  try {
    await ds.query('SELECT 1');
    await ds.sqlClient.get('SELECT 1');
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
 * The migrations create `timestamptz` instead; this sets the built metadata's column type (public
 * `ColumnMetadata.type`) to match once, so schema diffs stay empty. The driver converts values the
 * same way for both types.
 */
function storeDatesAsTimestamptz(dataSource: DataSource): void {
  if (dataSource.options.type !== 'postgres') return;
  for (const entity of dataSource.entityMetadatas) {
    for (const column of entity.columns) if (column.type === Date) column.type = 'timestamp with time zone';
  }
}
