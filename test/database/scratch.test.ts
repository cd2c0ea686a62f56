import { test } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { createTestDatabase } from '../helpers/database.js';

test.each(['sqlite', 'postgres'] as const)('probe %s', async (kind) => {
  const db = await createTestDatabase(kind);
  const ds = db.dataSource;
  const key = await ds.getRepository(ApiKey).save(ds.getRepository(ApiKey).create({ name: 'k', prefix: 'p', secretHash: 'h', role: 'USER', credits: 10 }));
  const upd = (n: number) => ds.createQueryBuilder().update(ApiKey).set({ credits: () => 'credits - :n' }).where('id = :id AND credits >= :n', { id: key.id, n });
  const r1 = await upd(4).execute();
  console.log(kind, 'r1', r1.affected, r1.raw, upd(4).getQueryAndParameters());
  const r2 = await upd(100).execute();
  console.log(kind, 'r2', r2.affected, r2.raw);
  let r3: any; try { r3 = await upd(1).returning(['credits']).execute(); } catch (e) { r3 = (e as Error).message; }
  console.log(kind, 'r3', typeof r3 === 'string' ? r3 : [r3.affected, r3.raw]);
  const raw = await ds.query('UPDATE api_keys SET credits = credits - 1 WHERE id = $1'.replace('$1', kind === 'sqlite' ? '?' : '$1'), [key.id]);
  console.log(kind, 'raw query', raw);
  const qr = ds.createQueryRunner();
  const rawS = await qr.query(`UPDATE api_keys SET credits = credits - 1 WHERE id = ${kind === 'sqlite' ? '?' : '$1'}`, [key.id], true);
  await qr.release();
  console.log(kind, 'structured', rawS.affected);
  console.log(kind, await ds.getRepository(ApiKey).findOneByOrFail({ id: key.id }));
  await db.cleanup();
});
