import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalOllamaSlots, type OllamaSlots, capacityOf } from '../../src/services/ollama/slots.js';
import { RedisOllamaSlots } from '../../src/services/ollama/redis-slots.js';
import { createLogger } from '../../src/services/platform/logger.js';

const A = { url: 'http://a:11434' };
const B = { url: 'http://b:11434' };

describe('capacityOf', () => {
  it('takes one value for every host, or one per host in order', () => {
    expect(capacityOf([A.url, B.url], [2])(B.url)).toBe(2);
    const each = capacityOf([A.url, B.url], [1, 3]);
    expect([each(A.url), each(B.url)]).toEqual([1, 3]);
  });
});

/** The behaviour both implementations share. */
function contract(name: string, make: (capacity: (host: string) => number) => OllamaSlots) {
  describe(name, () => {
    const model = `m-${Math.random().toString(36).slice(2)}`;
    it('grants up to the capacity of the best host, then the next host, then queues in order', async () => {
      const slots = make((h) => (h === A.url ? 1 : 2));
      const t1 = await slots.enter(model, [A, B]);
      const t2 = await slots.enter(model, [A, B]);
      const t3 = await slots.enter(model, [A, B]);
      expect(await Promise.all([t1.granted, t2.granted, t3.granted])).toEqual([A, B, B]);
      const t4 = await slots.enter(model, [A, B]);
      const t5 = await slots.enter(model, [A, B]);
      expect([t4.position, t5.position]).toEqual([1, 2]);
      const moved = t5.moved();
      t2.release(); // a slot of B frees: the first in line takes it
      expect(await t4.granted).toBe(B);
      await moved;
      expect(t5.position).toBe(1);
      t1.release();
      expect(await t5.granted).toBe(A);
      for (const t of [t3, t4, t5]) t.release();
      await slots.close();
    });

    it('cancels a queued request when its signal aborts, and the line moves up', async () => {
      const slots = make(() => 1);
      const holder = await slots.enter(`${model}-c`, [A]);
      const abort = new AbortController();
      const first = await slots.enter(`${model}-c`, [A], abort.signal);
      const second = await slots.enter(`${model}-c`, [A]);
      expect([first.position, second.position]).toEqual([1, 2]);
      const moved = second.moved();
      abort.abort();
      await expect(first.granted).rejects.toMatchObject({ code: 'CANCELLED' });
      await moved;
      expect(second.position).toBe(1);
      holder.release();
      expect(await second.granted).toBe(A);
      second.release();
      await slots.close();
    });
  });
}

contract('LocalOllamaSlots', (capacity) => new LocalOllamaSlots(capacity));

const redisUrl = process.env.TEST_REDIS_URL;
describe.skipIf(!redisUrl)(`RedisOllamaSlots${redisUrl ? '' : ' [skipped: TEST_REDIS_URL unset]'}`, () => {
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
    clients.push(c);
    return c;
  };
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.quit()));
  });
  const log = createLogger('silent');

  contract('shared by instances', (capacity) => new RedisOllamaSlots(client(), capacity, 15_000, log));

  it('shares one queue between two instances', async () => {
    const model = `shared-${Math.random().toString(36).slice(2)}`;
    const one = new RedisOllamaSlots(client(), () => 1, 15_000, log);
    const two = new RedisOllamaSlots(client(), () => 1, 15_000, log);
    const held = await one.enter(model, [A]);
    const waiting = await two.enter(model, [A]);
    const third = await one.enter(model, [A]);
    expect([held.position, waiting.position, third.position]).toEqual([0, 1, 2]);
    held.release();
    expect(await waiting.granted).toBe(A);
    waiting.release();
    expect(await third.granted).toBe(A);
    third.release();
    await Promise.all([one.close(), two.close()]);
  });

  it("gives a crashed instance's slot back once its holder expires", async () => {
    const model = `crash-${Math.random().toString(36).slice(2)}`;
    const crashing = client();
    const one = new RedisOllamaSlots(crashing, () => 1, 600, log);
    const two = new RedisOllamaSlots(client(), () => 1, 600, log);
    await (await one.enter(model, [A])).granted;
    const waiting = await two.enter(model, [A]);
    expect(waiting.position).toBe(1);
    crashing.disconnect(); // no renewal, no release: as after kill -9
    const got = await Promise.race([waiting.granted, new Promise((_, reject) => setTimeout(() => reject(new Error('slot never came back')), 15_000))]);
    expect(got).toBe(A);
    waiting.release();
    await Promise.all([one.close(), two.close()]);
  });
});
