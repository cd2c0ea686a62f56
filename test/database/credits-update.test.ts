import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { createTestDatabase, describeEachDatabase } from '../helpers/database.js';
import type { TestDatabase } from '../helpers/database.js';

/** The shape credit reservation will take: a conditional atomic debit, judged by rows affected. */
const debitQuery = (ds: DataSource, id: string, n: number) =>
  ds
    .createQueryBuilder()
    .update(ApiKey)
    .set({ credits: () => 'credits - :n' })
    .where('id = :id AND credits >= :n', { id, n });
const debit = (ds: DataSource, id: string, n: number) => debitQuery(ds, id, n).execute();

describeEachDatabase('conditional credit update', (kind) => {
  let db: TestDatabase;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    ds = db.orm;
  });
  afterAll(() => db?.cleanup());

  const newKey = (credits: number) =>
    ds.getRepository(ApiKey).save(
      ds.getRepository(ApiKey).create({
        name: 'credits',
        prefix: 'gw_c',
        secretHash: randomBytes(32).toString('hex'),
        role: 'USER',
        credits,
      }),
    );
  const balance = async (id: string) => (await ds.getRepository(ApiKey).findOneByOrFail({ id })).credits;

  it('reports 1 affected row when the balance covers the debit and 0 when it does not', async () => {
    const key = await newKey(10);
    expect((await debit(ds, key.id, 4)).affected).toBe(1);
    expect(await balance(key.id)).toBe(6);
    expect((await debit(ds, key.id, 7)).affected).toBe(0);
    expect(await balance(key.id)).toBe(6);
    expect((await debit(ds, key.id, 6)).affected).toBe(1);
    expect(await balance(key.id)).toBe(0);
    expect((await debit(ds, key.id, 1)).affected).toBe(0);
    expect((await debit(ds, '00000000-0000-4000-8000-000000000000', 0)).affected).toBe(0);
  });

  it('never overspends under concurrent debits', async () => {
    const key = await newKey(100);
    const results = await Promise.all(Array.from({ length: 60 }, () => debit(ds, key.id, 3)));
    expect(results.filter((r) => r.affected === 1)).toHaveLength(33);
    expect(results.filter((r) => r.affected === 0)).toHaveLength(27);
    expect(await balance(key.id)).toBe(1);
  });

  it('driver quirk: RETURNING is refused by TypeORM on better-sqlite3 and works on pg', async () => {
    const key = await newKey(5);
    const returning = () => debitQuery(ds, key.id, 1).returning(['credits']).execute();
    if (kind === 'sqlite') {
      expect(returning).toThrow(/RETURNING clause only supported/);
    } else {
      const result = await returning();
      expect(result.affected).toBe(1);
      expect(result.raw).toEqual([{ credits: 4 }]);
    }
  });

  it('driver quirk: raw DataSource.query does not return rows affected', async () => {
    const key = await newKey(5);
    const sql = `UPDATE api_keys SET credits = credits - 1 WHERE id = ${kind === 'sqlite' ? '?' : '$1'} AND credits >= 100`;
    const raw: unknown = await ds.query(sql, [key.id]);
    // better-sqlite3 answers lastInsertRowid, pg answers [rows, rowCount]: use the query builder
    // (or queryRunner.query(sql, params, true).affected), which both report the same way.
    if (kind === 'sqlite') expect(typeof raw).toBe('number');
    else expect(raw).toEqual([[], 0]);
    const queryRunner = ds.createQueryRunner();
    try {
      expect((await queryRunner.query(sql, [key.id], true)).affected).toBe(0);
    } finally {
      await queryRunner.release();
    }
  });
});
