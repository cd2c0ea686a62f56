import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GraphQLResponse, type TestGateway, collect, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const redisUrl = process.env.TEST_REDIS_URL;
const ADMIN = 'llmgw_redis-slots-admin-key-0000000';
const GENERATE = 'subscription($p: String!) { generate(input: { model: "llama3.2", prompt: $p, options: { maxTokens: 30 } }) { type phase queuePosition } }';
type Events = { generate: { type: string; phase: string | null; queuePosition: number | null } };

/** Two gateway instances in front of ONE Ollama host (OLLAMA_NUM_PARALLEL=1), sharing Redis. */
describe.skipIf(!redisUrl)(`slots shared through Redis${redisUrl ? '' : ' [skipped: TEST_REDIS_URL unset]'}`, () => {
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    a = await startGateway({ env: { REDIS_URL: redisUrl!, ADMIN_API_KEY: ADMIN }, emulator: { tokenDelayMs: 30 } });
    b = await startGateway({ env: { REDIS_URL: redisUrl!, ADMIN_API_KEY: ADMIN, OLLAMA_HOST: a.emulator.url } });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('never sends the host two requests for one model, and queue positions are global', async () => {
    const ca = wsClient(a, a.userSecret);
    const cb = wsClient(b, b.userSecret);
    const first = collect<Events>(ca, GENERATE, { p: 'shared one' });
    await until(() => first.results.some((r) => r.data?.generate.type === 'TOKEN'), 10_000, 'the first stream');
    const second = collect<Events>(cb, GENERATE, { p: 'shared two' });
    await until(() => second.results.length > 0, 10_000, 'b to answer');
    const third = collect<Events>(ca, GENERATE, { p: 'shared three' });
    await until(() => third.results.length > 0, 10_000, 'the third to answer');
    const phase = (r: GraphQLResponse<Events>[]) => [r[0].data?.generate.phase, r[0].data?.generate.queuePosition];
    expect(phase(second.results)).toEqual(['QUEUED', 1]);
    expect(phase(third.results)).toEqual(['QUEUED', 2]);
    for (const r of await Promise.all([first.done, second.done, third.done])) expect(r.at(-1)?.data?.generate.type).toBe('DONE');
    const asked = a.emulator.requests.filter((r) => r.path === '/api/generate' && /shared (one|two|three)/.test(JSON.stringify(r.body)));
    expect(asked).toHaveLength(3);
    asked.sort((x, y) => x.receivedAt - y.receivedAt);
    for (let i = 1; i < asked.length; i++) expect(asked[i].receivedAt).toBeGreaterThanOrEqual(asked[i - 1].endedAt!);
    await Promise.all([ca.dispose(), cb.dispose()]);
  });
});
