import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';
import type { DataSource } from 'typeorm';
import { type DatabaseOptions, type GatewayDatabase, openDatabase } from '../../src/services/db/database.js';
import { copyMigratedSqlite } from './sqlite-template.js';

export type TestDatabaseKind = 'sqlite' | 'postgres';

export interface TestDatabase {
  kind: TestDatabaseKind;
  database: GatewayDatabase;
  /** The database's TypeORM DataSource, loaded eagerly so that tests can read and seed rows directly. */
  orm: DataSource;
  /** What `openDatabase` was given: open it again to test a reopen. */
  options: DatabaseOptions;
  /** Closes the database (if still open) and removes the temp dir or drops the schema. */
  cleanup(): Promise<void>;
}

export const POSTGRES_SKIP_REASON = 'skipped: TEST_POSTGRES_URL unset';

/** The PostgreSQL test server, e.g. postgresql://postgres@127.0.0.1:5432/test, or undefined. */
export function postgresUrl(): string | undefined {
  const url = process.env.TEST_POSTGRES_URL?.trim();
  return url ? url : undefined;
}

export const testDatabaseKinds: readonly TestDatabaseKind[] = ['sqlite', 'postgres'];

/**
 * Runs `fn` in one describe block per engine. The PostgreSQL block is skipped, with the reason
 * in its name, when TEST_POSTGRES_URL is unset.
 */
export function describeEachDatabase(title: string, fn: (kind: TestDatabaseKind) => void): void {
  for (const kind of testDatabaseKinds) {
    const skip = kind === 'postgres' && !postgresUrl();
    describe.skipIf(skip)(`${title} [${kind}${skip ? `, ${POSTGRES_SKIP_REASON}` : ''}]`, () => fn(kind));
  }
}

/** Options for a fresh, empty database: a new temp dir (SQLite) or a new schema (PostgreSQL). */
export async function createTestDatabaseOptions(kind: TestDatabaseKind): Promise<{
  options: DatabaseOptions;
  dispose(): Promise<void>;
}> {
  if (kind === 'sqlite') {
    const dir = await mkdtemp(path.join(tmpdir(), 'gateway-db-'));
    return {
      options: { dbPath: path.join(dir, 'data', 'gateway.sqlite') },
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const url = postgresUrl();
  if (!url) throw new Error(`PostgreSQL test database requested but ${POSTGRES_SKIP_REASON}`);
  const schema = `test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  return {
    options: { databaseUrl: url, dbPath: '', schema },
    dispose: () => dropSchema(url, schema),
  };
}

/**
 * A migrated database on a fresh SQLite file or a fresh PostgreSQL schema. The SQLite file is a
 * copy of the run's migrated template unless `runMigrations` asks `openDatabase` to migrate it.
 */
export async function createTestDatabase(kind: TestDatabaseKind, { runMigrations = false } = {}): Promise<TestDatabase> {
  const { options, dispose } = await createTestDatabaseOptions(kind);
  if (kind === 'sqlite' && !runMigrations) copyMigratedSqlite(options.dbPath);
  let database: GatewayDatabase | undefined;
  let orm: DataSource;
  try {
    database = await openDatabase(options);
    orm = await database.orm();
  } catch (error) {
    await database?.close();
    await dispose();
    throw error;
  }
  return {
    kind,
    database,
    orm,
    options,
    async cleanup() {
      await database.close();
      await dispose();
    },
  };
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
