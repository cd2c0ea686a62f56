import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATION_NAMES } from '../../src/migrations/names.js';
import { type DatabaseOptions, GatewayDatabase } from '../../src/services/db/database.js';
import { SqliteClient } from '../../src/services/db/sqlite-client.js';
import { copyMigratedSqlite } from '../helpers/sqlite-template.js';

describe('GatewayDatabase.orm(): TypeORM on first use', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function migratedDatabase(): Promise<{ db: GatewayDatabase; options: DatabaseOptions; dir: string }> {
    const dir = await mkdtemp(path.join(tmpdir(), 'lazy-orm-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const options: DatabaseOptions = { dbPath: path.join(dir, 'gateway.sqlite') };
    copyMigratedSqlite(options.dbPath);
    const db = new GatewayDatabase(options, new SqliteClient(options.dbPath));
    cleanups.push(() => db.close());
    return { db, options, dir };
  }

  it('loads once: concurrent first calls share one initialized DataSource; close() destroys it', async () => {
    const { db } = await migratedDatabase();
    expect(db.loadedOrm).toBeUndefined();
    const [a, b] = await Promise.all([db.orm(), db.orm()]);
    expect(a).toBe(b);
    expect(a.isInitialized).toBe(true);
    expect(db.loadedOrm).toBe(a);
    expect(await db.orm()).toBe(a);
    await db.close();
    expect(a.isInitialized).toBe(false);
    await expect(db.orm()).rejects.toThrow(/closed/);
  });

  it('forgets a failed load, so the next call tries again', async () => {
    const { db, options, dir } = await migratedDatabase();
    const file = options.dbPath;
    options.dbPath = dir; // a folder: TypeORM's SQLite driver cannot open it
    await expect(db.orm()).rejects.toThrow();
    expect(db.loadedOrm).toBeUndefined();
    options.dbPath = file;
    const orm = await db.orm();
    expect(orm.isInitialized).toBe(true);
    expect(await orm.query('SELECT COUNT(*) AS n FROM migrations')).toEqual([{ n: MIGRATION_NAMES.length }]);
  });
});
