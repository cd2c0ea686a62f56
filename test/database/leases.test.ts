import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { CreditLedger } from '../../src/services/access/credits.js';
import { recoverInterrupted } from '../../src/services/generation/recovery.js';
import { KeyService } from '../../src/services/access/keys.js';
import { LeaseStore } from '../../src/services/platform/leases.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';
import { until } from '../helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachDatabase('leases and orphan recovery', (kind) => {
  let db: TestDatabase;
  let leases: LeaseStore;
  beforeEach(async () => {
    db = await createTestDatabase(kind);
    leases = new LeaseStore(db.database);
  });
  afterEach(async () => {
    await db.cleanup();
  });

  it('gives a lease to one owner at a time, renews it for its holder, and hands it over when it expires or is released', async () => {
    // Long TTLs where a lease must hold (a busy machine cannot outlast them), a short one where it must run out.
    expect(await leases.acquire('job', 'a', 60_000)).toBe(true);
    expect(await leases.acquire('job', 'b', 60_000)).toBe(false);
    expect(await leases.acquire('job', 'a', 60_000)).toBe(true); // renewal
    expect(await leases.acquire('job', 'b', 60_000)).toBe(false);
    const renewedAt = Date.now();
    expect(await leases.acquire('job', 'a', 100)).toBe(true); // a renewal sets the new expiry
    await until(() => leases.acquire('job', 'b', 60_000), 10_000, "b taking a's lease once it ran out", 20);
    expect(Date.now() - renewedAt).toBeGreaterThanOrEqual(100); // not before
    expect(await leases.acquire('job', 'a', 60_000)).toBe(false);
    await leases.release('job', 'a'); // not the holder: nothing happens
    expect(await leases.acquire('job', 'a', 60_000)).toBe(false);
    await leases.release('job', 'b');
    expect(await leases.acquire('job', 'a', 60_000)).toBe(true);
    expect(await leases.acquire('other-job', 'b', 60_000)).toBe(true); // leases are independent
  });

  it('lets exactly one of many concurrent contenders take a free lease', async () => {
    const won = await Promise.all(Array.from({ length: 12 }, (_, i) => leases.acquire('contended', `owner-${i}`, 60_000)));
    expect(won.filter(Boolean)).toHaveLength(1);
  });

  it('lists the live holders of leases under a prefix', async () => {
    await leases.acquire('instance:a', 'a', 60_000);
    await leases.acquire('instance:b', 'b', 100);
    await leases.acquire('idle-reaper:x', 'a', 60_000);
    await sleep(150);
    expect([...(await leases.liveOwners('instance:')).values()]).toEqual(['a']);
  });

  it('settles only the STREAMING rows of dead instances (and its own previous life at start-up), refunding once', async () => {
    const keys = new KeyService(db.database, 0);
    const { key } = await keys.create({ name: 'recovery', role: 'USER', credits: 0 });
    const insert = async (instanceId: string | null) => {
      const id = randomUUID();
      await db.orm.getRepository(Generation).insert({
        id,
        apiKeyId: key.id,
        model: 'llama3.2',
        kind: 'generate',
        streamed: true,
        prompt: 'p',
        status: 'STREAMING',
        creditsReserved: 10,
        creditsCharged: 2,
        instanceId,
        createdAt: new Date(),
      });
      return id;
    };
    const live = await insert('live');
    const dead = await insert('dead');
    const legacy = await insert(null);
    const mine = await insert('me');
    const credits = new CreditLedger();

    // Two sweeps at once (two instances): each orphan is settled once.
    const filter = { instanceId: 'me', liveInstances: new Set(['live', 'me']), includeOwn: false };
    const reports = await Promise.all([recoverInterrupted(db.database, credits, filter), recoverInterrupted(db.database, credits, filter)]);
    expect(reports.reduce((n, r) => n + r.generations, 0)).toBe(2);
    expect(reports.reduce((n, r) => n + r.creditsRefunded, 0)).toBe(16);
    const status = async (id: string) => (await db.orm.getRepository(Generation).findOneByOrFail({ id })).status;
    expect(await status(live)).toBe('STREAMING');
    expect(await status(mine)).toBe('STREAMING');
    expect(await status(dead)).toBe('INTERRUPTED');
    expect(await status(legacy)).toBe('INTERRUPTED');

    // At start-up, an instance settles what its previous life left (same id), never a live instance's rows.
    const atStart = await recoverInterrupted(db.database, credits, { ...filter, includeOwn: true });
    expect(atStart.generations).toBe(1);
    expect(await status(mine)).toBe('INTERRUPTED');
    expect(await status(live)).toBe('STREAMING');
    expect((await db.orm.getRepository(ApiKey).findOneByOrFail({ id: key.id })).credits).toBe(24);
  });
});
