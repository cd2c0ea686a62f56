import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GraphQLResponse, type TestGateway, collect, startGateway, wsClient } from '../helpers/gateway.js';
import { gql, gqlError, subscribeModelEvents, waitFor } from '../helpers/models.js';

interface Progress {
  model: string;
  status: string;
  digest: string | null;
  completed: number | null;
  total: number | null;
  percent: number | null;
  done: boolean;
}
const FOLLOW = 'subscription ($name: String!) { pullModel(name: $name) { model status digest completed total percent done } }';

let gw: TestGateway;
const pullRequests = (name: string) =>
  gw.emulator.requests.filter((r) => r.path === '/api/pull' && ((r.body as { name?: string; model?: string }).name ?? (r.body as { model?: string }).model) === name);
const progressOf = (results: GraphQLResponse<{ pullModel: Progress }>[]) =>
  results.map((r) => {
    expect(r.errors).toBeUndefined();
    return r.data!.pullModel;
  });

beforeAll(async () => {
  // Slow pull steps (40 ms each) so a second subscriber arrives while the first pull runs.
  gw = await startGateway({ emulator: { pullStepDelayMs: 40 } });
});
afterAll(async () => {
  await gw?.stop();
});

describe('pull progress', () => {
  it('streams the same progress to two subscribers at once, from a single upstream /api/pull', async () => {
    const c1 = wsClient(gw, gw.adminSecret);
    const c2 = wsClient(gw, gw.adminSecret);
    const watcher = await subscribeModelEvents(wsClient(gw, gw.userSecret));
    const first = collect<{ pullModel: Progress }>(c1, FOLLOW, { name: 'smollm2:135m' });
    await waitFor(() => first.results.length >= 2, 5000, 'first progress');
    const second = collect<{ pullModel: Progress }>(c2, FOLLOW, { name: 'SmolLM2:135M' });
    const [a, b] = (await Promise.all([first.done, second.done])).map(progressOf);
    await Promise.all([c1.dispose(), c2.dispose()]);

    expect(pullRequests('smollm2:135m')).toHaveLength(1);
    for (const events of [a, b]) {
      expect(events.at(-1)).toMatchObject({ model: 'smollm2:135m', status: 'success', percent: 100, done: true });
      expect(events.filter((e) => e.done)).toHaveLength(1);
      expect(events.some((e) => e.status.startsWith('pulling ') && e.digest?.startsWith('sha256:') && e.total! > 0 && e.percent! > 0)).toBe(true);
    }
    expect(a[0].status).toBe('pulling manifest');
    // The late subscriber joined mid-way: it starts with the latest message and then sees the rest.
    expect(b.length).toBeLessThan(a.length);
    expect(a.slice(-b.length)).toEqual(b);
    const percents = a.filter((e) => e.digest === a[2].digest).map((e) => e.percent);
    expect(percents).toEqual([...percents].sort((x, y) => x! - y!));

    expect((await gql(gw, '{ model(name: "smollm2:135m") { installed sizeBytes capabilities } }')).model).toEqual({
      installed: true,
      sizeBytes: 270_898_672,
      capabilities: ['completion', 'tools'],
    });
    await waitFor(() => watcher.events.some((e) => e.type === 'PULLED'), 2000, 'PULLED event');
    expect(watcher.events.filter((e) => e.type === 'PULLED')).toMatchObject([{ model: 'smollm2:135m', reason: 'REQUEST', sizeBytes: 270_898_672 }]);
    watcher.stop();
  });

  it('pullModel starts a pull and a second pullModel joins it instead of starting another', async () => {
    const started = await gql(gw, 'mutation { pullModel(name: "phi3:mini") { model joined progress { status } } }');
    expect(started.pullModel).toMatchObject({ model: 'phi3:mini', joined: false });
    expect(started.pullModel.progress.status).not.toBe('pulling manifest');
    const again = await gql(gw, 'mutation { pullModel(name: "PHI3:mini") { model joined } }');
    expect(again.pullModel).toEqual({ model: 'phi3:mini', joined: true });
    const c = wsClient(gw, gw.adminSecret);
    const events = progressOf(await collect<{ pullModel: Progress }>(c, FOLLOW, { name: 'phi3:mini' }).done);
    await c.dispose();
    expect(events.at(-1)).toMatchObject({ status: 'success', done: true });
    expect(pullRequests('phi3:mini')).toHaveLength(1);
  });

  it('answers MODEL_NOT_FOUND for a model the registry does not have, over the mutation and the subscription', async () => {
    const { error } = await gqlError(gw, 'mutation { pullModel(name: "no-such-model:7b") { model } }');
    expect(error.extensions).toMatchObject({ code: 'MODEL_NOT_FOUND', model: 'no-such-model:7b' });
    const c = wsClient(gw, gw.adminSecret);
    const results = await collect<{ pullModel: Progress }>(c, FOLLOW, { name: 'no-such-model:7b' }).done;
    await c.dispose();
    expect(results.at(-1)!.errors?.[0]?.extensions?.code).toBe('MODEL_NOT_FOUND');
    expect(results.slice(0, -1).every((r) => r.data?.pullModel.done === false)).toBe(true);
  });

  it('answers BAD_USER_INPUT for an invalid name, and FORBIDDEN to a user key', async () => {
    expect((await gqlError(gw, 'mutation { pullModel(name: "no way") { model } }')).error.extensions?.code).toBe('BAD_USER_INPUT');
    const c = wsClient(gw, gw.userSecret);
    const results = await collect(c, FOLLOW, { name: 'smollm2:135m' }).done;
    await c.dispose();
    expect(results[0].errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await gqlError(gw, 'mutation { pullModel(name: "smollm2:135m") { model } }', undefined, gw.userSecret)).error.extensions?.code).toBe('FORBIDDEN');
  });
});
