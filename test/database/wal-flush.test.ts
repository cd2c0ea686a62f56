import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLUSH_DONE, FLUSH_STARTED, SqliteClient } from '../../src/services/db/sqlite-client.js';
import { type TestDatabase, createTestDatabase } from '../helpers/database.js';

// src/services/db/sqlite-client.ts commits with synchronous=NORMAL and flushes the WAL with
// fdatasync off the event loop: no caller may hear of its commit before a flush that started
// after that commit has finished.
describe('SqliteClient: commits are flushed to disk before their callers hear of them', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  /** Index of the first entry at or after `from` that satisfies `test`, or -1. */
  const indexFrom = (log: string[], from: number, test: (s: string) => boolean) => {
    for (let i = Math.max(0, from); i < log.length; i++) if (test(log[i])) return i;
    return -1;
  };

  it('settles every transaction after a flush that began after its COMMIT, with many committing at once', async () => {
    const log: string[] = [];
    const client = new SqliteClient(db.options.dbPath, (sql) => log.push(sql));
    try {
      const n = 60;
      // Spread over several event-loop turns, so several groups commit while flushes run.
      const outcomes = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          await new Promise((r) => setTimeout(r, i % 6));
          await client.transaction(async (tx) => {
            log.push(`work:${i}`);
            await tx.run('INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)', [`flush-${i}`, String(i), new Date()]);
          });
          log.push(`resolved:${i}`);
          return i;
        }),
      );
      expect(outcomes).toHaveLength(n);
      for (let i = 0; i < n; i++) {
        const work = log.indexOf(`work:${i}`);
        const commit = indexFrom(log, work, (s) => s === 'COMMIT');
        const resolved = log.indexOf(`resolved:${i}`);
        const flushStart = indexFrom(log, commit, (s) => s === FLUSH_STARTED);
        const flushDone = indexFrom(log, flushStart, (s) => s === FLUSH_DONE);
        expect(work, `work:${i}`).toBeGreaterThanOrEqual(0);
        expect(commit, `the COMMIT of ${i}`).toBeGreaterThan(work);
        expect(flushStart, `a flush after the COMMIT of ${i}`).toBeGreaterThan(commit);
        expect(flushDone, `that flush done before ${i} settled`).toBeGreaterThan(flushStart);
        expect(resolved).toBeGreaterThan(flushDone);
      }
      // Flushes are shared: fewer than one per transaction.
      expect(log.filter((s) => s === FLUSH_STARTED).length).toBeLessThan(n);
      // The rows are there (read on the gateway's own client).
      const count = await db.database.sqlClient.get<{ n: number }>("SELECT COUNT(*) AS n FROM settings WHERE key LIKE 'flush-%'");
      expect(Number(count?.n)).toBe(n);
    } finally {
      await client.close();
    }
  });

  it('commits with synchronous=NORMAL on its own connection, while TypeORM keeps FULL on its own', async () => {
    const client = new SqliteClient(db.options.dbPath);
    try {
      expect(await client.get<{ synchronous: number }>('PRAGMA synchronous')).toEqual({ synchronous: 1 });
      expect(await db.orm.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
    } finally {
      await client.close();
    }
  });
});
