import { afterAll, beforeAll, expect, it } from 'vitest';
import { Setting } from '../../src/entities/setting.js';
import type { SqlTx } from '../../src/services/db/sql-client.js';
import { SqliteClient } from '../../src/services/db/sqlite-client.js';
import { inTransaction } from '../../src/services/db/transactions.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

const saveSetting = (tx: SqlTx, key: string, value: number) => tx.run('INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)', [key, JSON.stringify(value), new Date()]);

describeEachDatabase('SqlClient transactions: concurrent transactions', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  /** The gateway's client, or (SQLite) a second one on the same file that reports every statement. */
  const traced = (statements: string[]) => (kind === 'sqlite' ? new SqliteClient(db.options.dbPath, (sql) => statements.push(sql)) : db.database.sqlClient);

  it('commits each one that succeeds and rolls back each one that throws, alone, even when they commit together', async () => {
    const statements: string[] = [];
    const client = traced(statements);
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 40 }, (_, i) =>
          client.transaction(async (tx) => {
            await saveSetting(tx, `group-${i}`, i);
            if (i % 3 === 0) throw new Error(`no ${i}`);
            // A second write in the same transaction: undone with the first when the work throws later.
            await saveSetting(tx, `group-${i}-b`, i);
            return i;
          }),
        ),
      );
      outcomes.forEach((o, i) => {
        if (i % 3 === 0) expect(o).toMatchObject({ status: 'rejected', reason: { message: `no ${i}` } });
        else expect(o).toEqual({ status: 'fulfilled', value: i });
      });
    } finally {
      if (client !== db.database.sqlClient) await client.close();
    }
    // Read back through TypeORM: rows written as plain SQL read the same (JSON value, date).
    const stored = (await db.orm.getRepository(Setting).find()).filter((s) => s.key.startsWith('group-'));
    const expected = Array.from({ length: 40 }, (_, i) => i)
      .filter((i) => i % 3 !== 0)
      .flatMap((i) => [`group-${i}`, `group-${i}-b`]);
    expect(stored.map((s) => s.key).sort()).toEqual(expected.sort());
    for (const s of stored) {
      expect(s.value).toBe(Number(s.key.split('-')[1]));
      expect(Math.abs(s.updatedAt.getTime() - Date.now())).toBeLessThan(60_000);
    }
    // SQLite: the burst shares one BEGIN … COMMIT (savepoints inside).
    if (kind === 'sqlite') {
      expect(statements.filter((s) => s.startsWith('BEGIN')).length).toBeLessThan(5);
      expect(statements.filter((s) => s.startsWith('SAVEPOINT')).length).toBe(40);
    }
  });

  it('keeps serving after a transaction fails on its own', async () => {
    const client = db.database.sqlClient;
    await expect(client.transaction(async () => Promise.reject(new Error('alone')))).rejects.toThrow('alone');
    await expect(client.transaction(async (tx) => Number((await tx.get('SELECT COUNT(*) AS n FROM settings'))?.n) >= 0)).resolves.toBe(true);
  });

  it('TypeORM transactions and plain-SQL transactions interleave without blocking each other', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2
          ? db.database.sqlClient.transaction((tx) => saveSetting(tx, `mixed-${i}`, i))
          : inTransaction(db.database, async (tx) => {
              await tx.getRepository(Setting).save({ key: `mixed-${i}`, value: i, updatedAt: new Date() });
            }),
      ),
    );
    expect(outcomes).toHaveLength(20);
    const rows = await db.database.sqlClient.all<{ key: string; value: string }>("SELECT key, value FROM settings WHERE key LIKE 'mixed-%'");
    expect(rows.map((r) => [r.key, JSON.parse(r.value)]).sort()).toEqual(Array.from({ length: 20 }, (_, i) => [`mixed-${i}`, i]).sort());
  });
});
