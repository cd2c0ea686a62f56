import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Setting } from '../../src/entities/setting.js';
import { inTransaction } from '../../src/services/db/transactions.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

describeEachDatabase('inTransaction: concurrent transactions', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  it('commits each one that succeeds and rolls back each one that throws, alone, even when they commit together', async () => {
    const begins: string[] = [];
    const runner = db.dataSource.createQueryRunner();
    const original = runner.constructor.prototype.query as (...args: unknown[]) => Promise<unknown>;
    // Count real transactions (not savepoints) started while the burst runs.
    const spy = function (this: unknown, ...args: unknown[]) {
      if (typeof args[0] === 'string' && /^(BEGIN|START TRANSACTION)/i.test(args[0])) begins.push(args[0]);
      return original.apply(this, args);
    };
    runner.constructor.prototype.query = spy;
    await runner.release();
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 40 }, (_, i) =>
          inTransaction(db.dataSource, async (tx) => {
            await tx.getRepository(Setting).save({ key: `group-${i}`, value: i, updatedAt: new Date() });
            if (i % 3 === 0) throw new Error(`no ${i}`);
            // A second write in the same transaction: undone with the first when the work throws later.
            await tx.getRepository(Setting).save({ key: `group-${i}-b`, value: i, updatedAt: new Date() });
            return i;
          }),
        ),
      );
      outcomes.forEach((o, i) => {
        if (i % 3 === 0) expect(o).toMatchObject({ status: 'rejected', reason: { message: `no ${i}` } });
        else expect(o).toEqual({ status: 'fulfilled', value: i });
      });
    } finally {
      runner.constructor.prototype.query = original;
    }
    const stored = (await db.dataSource.getRepository(Setting).find()).map((s) => s.key).filter((k) => k.startsWith('group-'));
    const expected = Array.from({ length: 40 }, (_, i) => i)
      .filter((i) => i % 3 !== 0)
      .flatMap((i) => [`group-${i}`, `group-${i}-b`]);
    expect(stored.sort()).toEqual(expected.sort());
    // SQLite: the burst shares one BEGIN … COMMIT (savepoints inside); PostgreSQL: one transaction each.
    if (kind === 'sqlite') expect(begins.length).toBeLessThan(5);
    else expect(begins.length).toBe(40);
  });

  it('keeps serving after a transaction fails on its own', async () => {
    await expect(inTransaction(db.dataSource, async () => Promise.reject(new Error('alone')))).rejects.toThrow('alone');
    await expect(inTransaction(db.dataSource, async (tx) => (await tx.getRepository(Setting).count()) >= 0)).resolves.toBe(true);
  });
  // PostgreSQL commits over the network: I/O started by the work goes out while it waits anyway.
  it.skipIf(kind !== 'sqlite')('yieldBeforeCommit (SQLite): I/O the work started runs before the COMMIT, alone and in a group; without it, after', async () => {
    // A second connection sees only committed rows (WAL): it tells whether the COMMIT came first.
    const other = new BetterSqlite3(db.options.dbPath!, { readonly: true });
    try {
      const committedAtIo = (n: number, yieldBeforeCommit: boolean) =>
        Promise.all(
          Array.from({ length: n }, async (_, i) => {
            const key = `yield-${yieldBeforeCommit}-${n}-${i}`;
            let io!: Promise<boolean>;
            await inTransaction(
              db.dataSource,
              async (tx) => {
                await tx.getRepository(Setting).save({ key, value: i, updatedAt: new Date() });
                // Stands for a request whose bytes are written on the next turn of the event loop.
                io = new Promise((resolve) => setImmediate(() => resolve(other.prepare('SELECT 1 FROM settings WHERE key = ?').get(key) !== undefined)));
              },
              { yieldBeforeCommit },
            );
            return io;
          }),
        );
      expect(await committedAtIo(1, true)).toEqual([false]);
      expect(await committedAtIo(6, true)).toEqual(Array(6).fill(false));
      expect(await committedAtIo(1, false)).toEqual([true]);
      // Every one was committed in the end.
      expect(other.prepare("SELECT count(*) AS n FROM settings WHERE key LIKE 'yield-%'").get()).toEqual({ n: 8 });
    } finally {
      other.close();
    }
  });
});
