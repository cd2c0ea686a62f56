import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type GraphQLResponse, type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id } } }`;
const GENERATE = `mutation($input: GenerateInput!) { generate(input: $input) { generationId usage { totalTokens } } }`;
const SUBSCRIPTION = `subscription($input: GenerateInput!) { generate(input: $input) { type generationId } }`;
const WINDOW_SECONDS = 2;

let gw: TestGateway;
beforeAll(async () => {
  // Short windows keep the test fast; defaults chosen so a key without its own limits is limited too.
  gw = await startGateway({
    env: { RATE_LIMIT_WINDOW_SECONDS: String(WINDOW_SECONDS), RATE_LIMIT_REQUESTS_PER_MINUTE: '2', RATE_LIMIT_TOKENS_PER_MINUTE: '0', MAX_CONCURRENT_STREAMS_PER_KEY: '0' },
  });
});
afterEach(() => gw.emulator.setTokenDelay(0));
afterAll(async () => {
  await gw?.stop();
});

async function newKey(name: string, limits?: Record<string, number | null>) {
  const { body } = await post<{ createApiKey: { secret: string; key: { id: string } } }>(gw, CREATE_KEY, { input: { name, limits } }, gw.adminSecret);
  expect(body.errors).toBeUndefined();
  return { id: body.data!.createApiKey.key.id, secret: body.data!.createApiKey.secret };
}

const generate = (secret: string, prompt = 'Hello there.') =>
  post<{ generate: { generationId: string; usage: { totalTokens: number } } }>(gw, GENERATE, { input: { model: 'llama3.2', prompt } }, secret);

const upstreamCalls = () => gw.emulator.requests.filter((r) => r.path === '/api/generate').length;

function expectLimited(body: GraphQLResponse, limit: string): number {
  const error = body.errors?.[0];
  expect(error?.extensions?.code).toBe('RATE_LIMITED');
  expect(error?.extensions?.limit).toBe(limit);
  const retry = error?.extensions?.retryAfterSeconds as number;
  expect(Number.isInteger(retry)).toBe(true);
  expect(retry).toBeGreaterThanOrEqual(1);
  expect(retry).toBeLessThanOrEqual(WINDOW_SECONDS);
  return retry;
}

describe('rate limits', () => {
  it('requests per minute: RATE_LIMITED with retryAfterSeconds, recorded in the usage log, never sent upstream, and recovers after the wait', async () => {
    const key = await newKey('rpm', { requestsPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await generate(key.secret)).body.errors).toBeUndefined();
    const before = upstreamCalls();
    const refused = await generate(key.secret, 'one too many');
    const retry = expectLimited(refused.body, 'requestsPerMinute');
    expect(upstreamCalls()).toBe(before);

    const row = await gw.orm.getRepository(Generation).findOneByOrFail({ apiKeyId: key.id, prompt: 'one too many' });
    expect(row).toMatchObject({ status: 'ERROR', errorCode: 'RATE_LIMITED', creditsCharged: 0, creditsReserved: 0, streamed: false });

    await new Promise((r) => setTimeout(r, retry * 1000 + 50));
    expect((await generate(key.secret)).body.errors).toBeUndefined();
  });

  it('reaches a websocket subscriber as a typed error with retryAfterSeconds; the configured default applies to keys without their own limit', async () => {
    const key = await newKey('defaults'); // RATE_LIMIT_REQUESTS_PER_MINUTE=2 for this gateway
    const me = await post<{ me: { limits: Record<string, number>; customLimits: Record<string, number | null> } }>(
      gw,
      '{ me { limits { requestsPerMinute tokensPerMinute maxConcurrentStreams } customLimits { requestsPerMinute tokensPerMinute maxConcurrentStreams } } }',
      undefined,
      key.secret,
    );
    expect(me.body.data?.me).toEqual({
      limits: { requestsPerMinute: 2, tokensPerMinute: 0, maxConcurrentStreams: 0 },
      customLimits: { requestsPerMinute: null, tokensPerMinute: null, maxConcurrentStreams: null },
    });
    const client = wsClient(gw, key.secret);
    const run = () => collect<{ generate: { type: string } }>(client, SUBSCRIPTION, { input: { model: 'llama3.2', prompt: 'ws' } }).done;
    expect((await run()).at(-1)?.data?.generate.type).toBe('DONE');
    expect((await run()).at(-1)?.data?.generate.type).toBe('DONE');
    const third = await run();
    expect(third).toHaveLength(1);
    expectLimited(third[0], 'requestsPerMinute');
    await client.dispose();
  });

  it('tokens per minute: refuses once the window\'s tokens are used, and recovers', async () => {
    const key = await newKey('tpm', { requestsPerMinute: 0, tokensPerMinute: 10 });
    const first = await generate(key.secret);
    expect(first.body.data?.generate.usage.totalTokens).toBeGreaterThan(10);
    const retry = expectLimited((await generate(key.secret)).body, 'tokensPerMinute');
    await new Promise((r) => setTimeout(r, retry * 1000 + 50));
    expect((await generate(key.secret)).body.errors).toBeUndefined();
  });

  it('concurrent streams: a second generation while one runs is refused, and admitted once the first ends', async () => {
    const key = await newKey('one at a time', { requestsPerMinute: 0, maxConcurrentStreams: 1 });
    gw.emulator.setTokenDelay(30);
    const client = wsClient(gw, key.secret);
    let generationId = '';
    const unsubscribe = await new Promise<() => void>((resolve) => {
      const dispose = client.subscribe<{ generate: { type: string; generationId: string } }>(
        { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'a long one' } } },
        {
          next: (r) => {
            if (r.data?.generate.type === 'TOKEN' && !generationId) {
              generationId = r.data.generate.generationId;
              resolve(dispose);
            }
          },
          error: () => {},
          complete: () => {},
        },
      );
    });
    const refused = await generate(key.secret, 'while the first runs');
    expect(expectLimited(refused.body, 'maxConcurrentStreams')).toBe(1);

    unsubscribe();
    const repo = gw.orm.getRepository(Generation);
    await until(async () => (await repo.findOneByOrFail({ id: generationId })).status !== 'STREAMING', 10_000, 'the left stream to settle');
    gw.emulator.setTokenDelay(0);
    expect((await generate(key.secret, 'after the first')).body.errors).toBeUndefined();
    await client.dispose();
  });

  it('updateApiKey changes a key\'s limits at once, and null returns a limit to the default', async () => {
    const key = await newKey('adjustable', { requestsPerMinute: 0 });
    const update = (limits: Record<string, number | null>) =>
      post<{ updateApiKey: { limits: { requestsPerMinute: number }; customLimits: { requestsPerMinute: number | null } } }>(
        gw,
        `mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { limits { requestsPerMinute } customLimits { requestsPerMinute } } }`,
        { input: { id: key.id, limits } },
        gw.adminSecret,
      );
    expect((await generate(key.secret)).body.errors).toBeUndefined();
    expect((await update({ requestsPerMinute: 1 })).body.data?.updateApiKey).toEqual({ limits: { requestsPerMinute: 1 }, customLimits: { requestsPerMinute: 1 } });
    // The request made before the change counts in the same window.
    expectLimited((await generate(key.secret)).body, 'requestsPerMinute');
    expect((await update({ requestsPerMinute: null })).body.data?.updateApiKey).toEqual({ limits: { requestsPerMinute: 2 }, customLimits: { requestsPerMinute: null } });
  });
});
