import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';
import { type GraphQLResponse, type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id credits } } }`;
const MUTATION = `mutation($input: GenerateInput!) { generate(input: $input) { generationId creditsCharged } }`;
const SUBSCRIPTION = `subscription($input: GenerateInput!) { generate(input: $input) { type generationId creditsCharged } }`;

type Outcome = { via: 'http' | 'ws'; code: string; generationId?: string; charged?: number };

const codeOf = (r: GraphQLResponse | undefined) => String(r?.errors?.[0]?.extensions?.code ?? 'NO_RESULT');

describeEachDatabase('credits under concurrency', (kind) => {
  let db: TestDatabase;
  let gw: TestGateway;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    // All 200 requests come from one address: lift the per-address stream limit (the test is about credits).
    gw = await startGateway({ db: db.database, env: { MAX_CONCURRENT_STREAMS_PER_IP: '0' } });
  });
  afterAll(async () => {
    await gw?.stop();
    await db?.cleanup();
  });

  it('200 concurrent requests (HTTP and websocket) from a key with credits for 100: exactly 100 succeed and the balance adds up', async () => {
    const created = await post<{ createApiKey: { secret: string; key: { id: string; credits: number } } }>(
      gw,
      CREATE_KEY,
      // Limits lifted for this key: the test is about credits, not rate limits.
      { input: { name: `burst ${kind}`, credits: 100, limits: { requestsPerMinute: 0, tokensPerMinute: 0, maxConcurrentStreams: 0 } } },
      gw.adminSecret,
    );
    expect(created.body.errors).toBeUndefined();
    const { secret, key } = created.body.data!.createApiKey;
    expect(key.credits).toBe(100);
    const upstreamBefore = gw.emulator.requests.filter((r) => r.path === '/api/generate').length;

    const input = (i: number) => ({ input: { model: 'llama3.2', prompt: `request number ${i}` } });
    const http = Array.from({ length: 100 }, async (_, i): Promise<Outcome> => {
      const { body } = await post<{ generate: { generationId: string; creditsCharged: number } }>(gw, MUTATION, input(i), secret);
      return body.data?.generate
        ? { via: 'http', code: 'OK', generationId: body.data.generate.generationId, charged: body.data.generate.creditsCharged }
        : { via: 'http', code: codeOf(body) };
    });
    const clients = Array.from({ length: 4 }, () => wsClient(gw, secret));
    const ws = Array.from({ length: 100 }, async (_, i): Promise<Outcome> => {
      const results = await collect<{ generate: { type: string; generationId: string; creditsCharged: number | null } }>(clients[i % 4], SUBSCRIPTION, input(100 + i)).done;
      const last = results.at(-1);
      return last?.data?.generate.type === 'DONE'
        ? { via: 'ws', code: 'OK', generationId: last.data.generate.generationId, charged: last.data.generate.creditsCharged ?? undefined }
        : { via: 'ws', code: codeOf(last) };
    });
    const outcomes = await Promise.all([...http, ...ws]);
    await Promise.all(clients.map((c) => c.dispose()));

    const tally = (code: string) => outcomes.filter((o) => o.code === code).length;
    expect({ OK: tally('OK'), INSUFFICIENT_CREDITS: tally('INSUFFICIENT_CREDITS') }).toEqual({ OK: 100, INSUFFICIENT_CREDITS: 100 });
    // No REQUEST_COST pricing beyond 1 credit, so each success costs exactly 1.
    expect(outcomes.filter((o) => o.code === 'OK').every((o) => o.charged === 1)).toBe(true);

    // Refused requests never reached the model.
    const upstream = gw.emulator.requests.filter((r) => r.path === '/api/generate').length - upstreamBefore;
    expect(upstream).toBe(100);

    // The balance equals the start minus what the usage log says was charged, and never went below zero.
    const rows = await gw.orm.getRepository(Generation).find({ where: { apiKeyId: key.id } });
    expect(rows).toHaveLength(200);
    const charged = rows.reduce((n, r) => n + r.creditsCharged, 0);
    const balance = (await gw.orm.getRepository(ApiKey).findOneByOrFail({ id: key.id })).credits;
    expect(balance).toBe(100 - charged);
    expect(balance).toBeGreaterThanOrEqual(0);
    expect(charged).toBe(100);
    expect(rows.filter((r) => r.status === 'COMPLETE')).toHaveLength(100);
    const refused = rows.filter((r) => r.status === 'ERROR');
    expect(refused).toHaveLength(100);
    expect(refused.every((r) => r.errorCode === 'INSUFFICIENT_CREDITS' && r.creditsCharged === 0 && r.creditsReserved === 0)).toBe(true);
    // Every successful client answer matches a COMPLETE row with the same charge.
    const complete = new Map(rows.filter((r) => r.status === 'COMPLETE').map((r) => [r.id, r.creditsCharged]));
    for (const o of outcomes.filter((x) => x.code === 'OK')) expect(complete.get(o.generationId!)).toBe(o.charged);

    // `me` reports the same balance.
    const me = await post<{ me: { credits: number } }>(gw, '{ me { credits } }', undefined, secret);
    expect(me.body.data?.me.credits).toBe(balance);
    // 200 requests at once on a 2-core machine that may be busy: a bound on a hang, not a speed check.
  }, 90_000);
});
