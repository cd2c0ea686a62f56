import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const redisUrl = process.env.TEST_REDIS_URL;
const ADMIN = 'llmgw_two-instances-admin-key-000000';

/** Two gateway instances on one database and one Redis, each with its own emulator. */
describe.skipIf(!redisUrl)(`two gateway instances sharing Redis${redisUrl ? '' : ' [skipped: TEST_REDIS_URL unset]'}`, () => {
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    a = await startGateway({ env: { REDIS_URL: redisUrl!, ADMIN_API_KEY: ADMIN, RATE_LIMIT_WINDOW_SECONDS: '30' }, emulator: { tokenDelayMs: 30 } });
    b = await startGateway({ env: { REDIS_URL: redisUrl!, ADMIN_API_KEY: ADMIN, RATE_LIMIT_WINDOW_SECONDS: '30', DB_PATH: join(a.dir, 'gateway.sqlite') }, emulator: { tokenDelayMs: 30 } });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('delivers a model event published on instance A to a subscriber on instance B', async () => {
    const client = wsClient(b, ADMIN, { lazy: false });
    const events: Array<{ type: string; model: string; host: string | null }> = [];
    client.subscribe<{ modelEvents: { type: string; model: string; host: string | null } }>(
      { query: 'subscription { modelEvents { type model host } }' },
      { next: (r) => r.data && events.push(r.data.modelEvents), error: () => {}, complete: () => {} },
    );
    // B subscribes to Redis some time after it accepted the subscription, and nothing says when: A
    // loads (and unloads) the model until B hears a LOADED from A's Ollama. The bound only stops a hang.
    const fromA = () => events.find((e) => e.type === 'LOADED' && e.model === 'llama3.2:latest' && e.host === a.emulator.url);
    await until(
      async () => {
        if (fromA()) return true;
        await post(a, 'mutation { unloadModel(name: "llama3.2") { model } }', undefined, ADMIN);
        const loaded = await post(a, 'mutation { loadModel(name: "llama3.2") { model { name } } }', undefined, ADMIN);
        expect(loaded.body.errors, JSON.stringify(loaded.body.errors)).toBeUndefined();
        return until(fromA, 500).catch(() => false); // or try again
      },
      15_000,
      'a LOADED event from A on B',
    );
    expect(fromA()).toMatchObject({ type: 'LOADED', model: 'llama3.2:latest', host: a.emulator.url });
    await client.dispose();
  });

  it('ends a stream on instance B within a second when its key is revoked on instance A', async () => {
    const created = await post<{ createApiKey: { secret: string; key: { id: string } } }>(
      a,
      'mutation { createApiKey(input: { name: "cross", role: USER }) { secret key { id } } }',
      undefined,
      ADMIN,
    );
    const { secret, key } = created.body.data!.createApiKey;
    const client = wsClient(b, secret);
    const sub = collect<{ generate: { type: string } }>(client, 'subscription { generate(input: { model: "llama3.2", prompt: "a long one" }) { type } }');
    const start = Date.now();
    while (!sub.results.some((r) => r.data?.generate.type === 'TOKEN')) {
      if (Date.now() - start > 3000) throw new Error('no token');
      await new Promise((r) => setTimeout(r, 10));
    }
    const revokedAt = Date.now();
    await post(a, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: key.id }, ADMIN);
    const ended = await sub.done.then(
      (r) => r,
      () => sub.results,
    );
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    expect(ended.at(-1)?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(ended.some((r) => r.data?.generate.type === 'DONE')).toBe(false);
    await client.dispose();
  });

  it('shares rate-limit windows: requests on A and B count against one limit', async () => {
    const created = await post<{ createApiKey: { secret: string } }>(
      a,
      'mutation { createApiKey(input: { name: "limited", role: USER, limits: { requestsPerMinute: 2 } }) { secret } }',
      undefined,
      ADMIN,
    );
    const secret = created.body.data!.createApiKey.secret;
    const ask = (gw: TestGateway) => post<{ generate: { text: string } }>(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "x", options: { maxTokens: 1 } }) { text } }', undefined, secret);
    expect((await ask(a)).body.errors).toBeUndefined();
    expect((await ask(b)).body.errors).toBeUndefined();
    const third = await ask(a);
    expect(third.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
  });
});
