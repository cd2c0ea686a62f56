import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrations } from '../../src/migrations/all.js';
import { MIGRATION_NAMES } from '../../src/migrations/names.js';
import { databaseHealthy, openDatabase } from '../../src/services/db/database.js';
import { pendingMigrations } from '../../src/services/db/migration-state.js';
import { dataSourceOptions } from '../../src/services/db/orm.js';
import { createTestDatabase, createTestDatabaseOptions, describeEachDatabase } from '../helpers/database.js';
import type { TestDatabase } from '../helpers/database.js';

const TABLES = ['api_keys', 'model_entries', 'sessions', 'messages', 'generations', 'settings', 'leases'];

describeEachDatabase('migrations', (kind) => {
  const open: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((db) => db.cleanup()));
  });
  const fresh = async () => {
    const db = await createTestDatabase(kind, { runMigrations: true });
    open.push(db);
    return db;
  };

  it('creates every table on an empty database, matching the entities exactly', async () => {
    const { orm: dataSource } = await fresh();
    const queryRunner = dataSource.createQueryRunner();
    try {
      for (const table of TABLES) expect(await queryRunner.hasTable(table), table).toBe(true);
    } finally {
      await queryRunner.release();
    }
    // The schema builder diffs entity metadata against the live schema: empty means the
    // migration and the entities agree on every column type, default, index and foreign key.
    const diff = await dataSource.driver.createSchemaBuilder().log();
    expect(diff.upQueries.map((q) => q.query)).toEqual([]);
    expect(dataSource.options.synchronize).toBe(false);
  });

  it('is idempotent: a second openDatabase finds nothing pending, without loading TypeORM', async () => {
    const db = await fresh();
    await db.database.close();

    const again = await openDatabase(db.options);
    try {
      expect(again.loadedOrm).toBeUndefined();
      expect(await pendingMigrations(again.sqlClient, db.options.schema)).toEqual([]);
      const [{ count }] = await again.sqlClient.all<{ count: unknown }>('SELECT COUNT(*) AS count FROM migrations');
      expect(Number(count)).toBe(migrations.length);
      expect(await (await again.orm()).showMigrations()).toBe(false);
    } finally {
      await again.close();
    }
  });

  it('finds every migration pending on a new database (no migrations table) without TypeORM', async () => {
    const { options, dispose } = await createTestDatabaseOptions(kind);
    try {
      const { connectDatabase } = await import('../../src/services/db/database.js');
      const db = await connectDatabase(options);
      try {
        expect(await pendingMigrations(db.sqlClient, options.schema)).toEqual([...MIGRATION_NAMES]);
        expect(db.loadedOrm).toBeUndefined();
      } finally {
        await db.close();
      }
    } finally {
      await dispose();
    }
  });

  it('a reopen with a migration pending loads TypeORM and applies it', async () => {
    const db = await fresh();
    await db.orm.undoLastMigration({ transaction: 'each' });
    await db.database.close();

    const again = await openDatabase(db.options);
    try {
      expect(again.loadedOrm?.isInitialized).toBe(true);
      expect(await pendingMigrations(again.sqlClient, db.options.schema)).toEqual([]);
      const queryRunner = again.loadedOrm!.createQueryRunner();
      try {
        expect(await queryRunner.hasColumn('generations', 'thinking')).toBe(true);
      } finally {
        await queryRunner.release();
      }
    } finally {
      await again.close();
    }
  });

  it('undoes every migration, newest first, and applies them again', async () => {
    const { orm: dataSource } = await fresh();
    for (let i = migrations.length; i > 0; i--) await dataSource.undoLastMigration({ transaction: 'each' });
    expect(await dataSource.showMigrations()).toBe(true);
    const queryRunner = dataSource.createQueryRunner();
    try {
      for (const table of TABLES) expect(await queryRunner.hasTable(table), table).toBe(false);
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      expect(applied.map((m) => m.name)).toEqual(['Initial1763900000000', 'HostPool1764000000000', 'ShortKeyPrefix1765000000000', 'ModernOllama1766000000000']);
      for (const table of TABLES) expect(await queryRunner.hasTable(table), table).toBe(true);
    } finally {
      await queryRunner.release();
    }
    const diff = await dataSource.driver.createSchemaBuilder().log();
    expect(diff.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('the host-pool migration adds the host and instance columns to an existing usage log, keeping its rows', async () => {
    const { orm: dataSource } = await fresh();
    // Back to the initial schema (every migration after it undone).
    for (let i = migrations.length; i > 1; i--) await dataSource.undoLastMigration({ transaction: 'each' });
    await dataSource.query(`INSERT INTO api_keys (id, name, prefix, secret_hash, role, credits) VALUES ('k1', 'k', 'llmgw_x', '${'a'.repeat(64)}', 'USER', 5)`);
    await dataSource.query(
      `INSERT INTO generations (id, api_key_id, model, kind, streamed, prompt, status) VALUES ('g1', 'k1', 'llama3.2', 'generate', ${kind === 'postgres' ? 'true' : '1'}, 'hi', 'COMPLETE')`,
    );
    await dataSource.runMigrations({ transaction: 'each' });
    const [row] = await dataSource.query(`SELECT id, host, instance_id FROM generations`);
    expect(row).toEqual({ id: 'g1', host: null, instance_id: null });
    const queryRunner = dataSource.createQueryRunner();
    try {
      expect(await queryRunner.hasTable('leases')).toBe(true);
    } finally {
      await queryRunner.release();
    }
  });

  it('the modern-ollama migration adds reasoning, tool calls, tool messages and a model system prompt, keeping rows', async () => {
    const { orm: dataSource } = await fresh();
    await dataSource.undoLastMigration({ transaction: 'each' });
    await dataSource.query(`INSERT INTO api_keys (id, name, prefix, secret_hash, role, credits) VALUES ('k1', 'k', 'llmgw_x', '${'a'.repeat(64)}', 'USER', 5)`);
    await dataSource.query(`INSERT INTO model_entries (id, name) VALUES ('m1', 'llama3.2:latest')`);
    await dataSource.runMigrations({ transaction: 'each' });
    const [entry]: Array<{ name: string; system_prompt: string | null }> = await dataSource.query("SELECT name, system_prompt FROM model_entries WHERE id = 'm1'");
    expect(entry).toEqual({ name: 'llama3.2:latest', system_prompt: null });
    const queryRunner = dataSource.createQueryRunner();
    try {
      for (const [table, column] of [['generations', 'thinking'], ['generations', 'tool_calls'], ['messages', 'tool_name'], ['messages', 'tool_call_id']]) {
        expect(await queryRunner.hasColumn(table, column), `${table}.${column}`).toBe(true);
      }
    } finally {
      await queryRunner.release();
    }
  });

  it('the short-key-prefix migration cuts stored display prefixes to llmgw_ and 4 characters, or 4 of a chosen secret', async () => {
    const { orm: dataSource } = await fresh();
    // Back to just before the short-key-prefix migration (the third).
    for (let i = migrations.length; i > 2; i--) await dataSource.undoLastMigration({ transaction: 'each' });
    const hash = (c: string) => c.repeat(64);
    await dataSource.query(`INSERT INTO api_keys (id, name, prefix, secret_hash, role, credits) VALUES ('k1', 'generated', 'llmgw_abcdefgh', '${hash('a')}', 'USER', 5)`);
    await dataSource.query(`INSERT INTO api_keys (id, name, prefix, secret_hash, role, credits) VALUES ('k2', 'chosen', 'my-admin-secre', '${hash('b')}', 'ADMIN', 5)`);
    await dataSource.runMigrations({ transaction: 'each' });
    const rows: Array<{ id: string; prefix: string }> = await dataSource.query('SELECT id, prefix FROM api_keys ORDER BY id');
    expect(rows).toEqual([
      { id: 'k1', prefix: 'llmgw_abcd' },
      { id: 'k2', prefix: 'my-a' },
    ]);
  });

  it('databaseHealthy is true while open and false after close', async () => {
    const { database, orm } = await fresh();
    expect(await databaseHealthy(database)).toBe(true);
    await database.close();
    expect(orm.isInitialized).toBe(false);
    expect(await databaseHealthy(database)).toBe(false);
  });

  it('databaseHealthy does not load TypeORM', async () => {
    const db = await fresh();
    await db.database.close();
    const again = await openDatabase(db.options);
    try {
      expect(await databaseHealthy(again)).toBe(true);
      expect(again.loadedOrm).toBeUndefined();
    } finally {
      await again.close();
    }
  });

  it("TypeORM's options never synchronize nor run migrations by themselves", async () => {
    const { options, dispose } = await createTestDatabaseOptions(kind);
    try {
      const dataSource = dataSourceOptions(options);
      expect(dataSource.synchronize).toBe(false);
      expect(dataSource.migrationsRun).toBe(false);
      expect(dataSource.type).toBe(kind === 'sqlite' ? 'better-sqlite3' : 'postgres');
    } finally {
      await dispose();
    }
  });
});

describe('SQLite connection settings', () => {
  const open: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((db) => db.cleanup()));
  });

  const pragmas = async (query: (sql: string) => Promise<Array<Record<string, unknown>>>) => ({
    journalMode: (await query('PRAGMA journal_mode'))[0].journal_mode,
    synchronous: (await query('PRAGMA synchronous'))[0].synchronous,
    foreignKeys: (await query('PRAGMA foreign_keys'))[0].foreign_keys,
    busyTimeout: (await query('PRAGMA busy_timeout'))[0].timeout,
  });
  const expected = { journalMode: 'wal', synchronous: 2, foreignKeys: 1, busyTimeout: 5000 };
  // The hot path's own connection commits with synchronous=NORMAL and flushes the WAL itself
  // before a commit is acknowledged (src/services/db/sqlite-client.ts; test/database/wal-flush.test.ts).
  const expectedSqlClient = { ...expected, synchronous: 1 };

  it('creates the folder and sets WAL, synchronous (FULL on TypeORM\'s connection), foreign_keys and busy_timeout', async () => {
    const db = await createTestDatabase('sqlite', { runMigrations: true });
    open.push(db);
    expect(db.options.dbPath).toMatch(/[/\\]data[/\\]gateway\.sqlite$/);
    expect(await pragmas((sql) => db.orm.query(sql))).toEqual(expected);
    expect(await pragmas((sql) => db.database.sqlClient.all(sql))).toEqual(expectedSqlClient);
  });

  it('sets them again on a reopened WAL file, which alone would come back as synchronous=NORMAL', async () => {
    const db = await createTestDatabase('sqlite');
    open.push(db);
    await db.database.close();

    // Control: a plain reopen keeps WAL (stored in the file) but not synchronous=FULL.
    const plain = new Database(db.options.dbPath);
    try {
      expect(plain.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(plain.pragma('synchronous', { simple: true })).not.toBe(2);
    } finally {
      plain.close();
    }

    const reopened = await openDatabase(db.options);
    try {
      expect(await pragmas((sql) => reopened.sqlClient.all(sql))).toEqual(expectedSqlClient);
      const orm = await reopened.orm();
      expect(await pragmas((sql) => orm.query(sql))).toEqual(expected);
    } finally {
      await reopened.close();
    }
  });
});
