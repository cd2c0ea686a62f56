import 'reflect-metadata';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { entities } from '../../entities/all.js';
import { migrations } from '../../migrations/all.js';
import { type DatabaseOptions, SCHEMA_NAME } from './database.js';
import { SQLITE_BUSY_TIMEOUT_MS, applySqlitePragmas } from './sqlite-client.js';

// Imported only by GatewayDatabase.orm() (database.ts): the one module of the gateway that loads
// TypeORM, reflect-metadata, the entities and the migrations.

/** TypeORM's options for SQLite or PostgreSQL: the entities and migrations, never synchronize. */
export function dataSourceOptions(opts: DatabaseOptions): DataSourceOptions {
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
    return {
      ...common,
      type: 'postgres',
      url: databaseUrl,
      schema,
      // Raw SQL (query builder expressions, ds.query) must resolve unqualified names in the schema too.
      extra: schema ? { options: `-c search_path=${schema}` } : undefined,
    };
  }

  return {
    ...common,
    type: 'better-sqlite3',
    database: opts.dbPath,
    timeout: SQLITE_BUSY_TIMEOUT_MS,
    // Runs on every connection the driver opens (see applySqlitePragmas).
    prepareDatabase: (db: BetterSqlite3.Database) => applySqlitePragmas(db),
  };
}

/**
 * TypeORM's DataSource beside the SqlClient on the same database, initialized; migrations not
 * run. On SQLite its transactions take their turn with the SqlClient's: `inTransaction`
 * (transactions.ts) runs them through `sqlClient.exclusive`.
 */
export async function openOrm(opts: DatabaseOptions): Promise<DataSource> {
  const dataSource = new DataSource(dataSourceOptions(opts));
  await dataSource.initialize();
  storeDatesAsTimestamptz(dataSource);
  return dataSource;
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
