import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type TestGateway, sse, startGateway, wsClient } from '../helpers/gateway.js';
import { until as waitFor } from '../helpers/wait.js';

const SUBSCRIPTION = `subscription Gen($input: GenerateInput!) { generate(input: $input) { type generationId delta } }`;
type Event = { generate: { type: string; generationId: string; delta: string | null } };

let gw: TestGateway;
beforeAll(async () => {
  // Slow tokens, so that the client can leave mid-stream.
  gw = await startGateway({ emulator: { tokenDelayMs: 50 } });
});
afterAll(async () => {
  await gw?.stop();
});

const generationRow = (id: string) => gw.orm.getRepository(Generation).findOneByOrFail({ id });


describe('client disconnect aborts the upstream request', () => {
  it('over graphql-ws: closing the socket closes the HTTP request to Ollama and stores the partial answer as CANCELLED', async () => {
    gw.emulator.setTokenDelay(250); // slower than the file's 50 ms, so "at once" has room on a busy machine
    const client = wsClient(gw, gw.userSecret);
    const deltas: string[] = [];
    let generationId = '';
    const requestsBefore = gw.emulator.requests.length;
    await new Promise<void>((resolve) => {
      client.subscribe<Event>(
        { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'A long story, please.' } } },
        {
          next: (r) => {
            generationId = r.data!.generate.generationId;
            if (r.data!.generate.type !== 'TOKEN') return;
            deltas.push(r.data!.generate.delta ?? '');
            if (deltas.length === 2) resolve();
          },
          error: () => {},
          complete: () => {},
        },
      );
    });
    const upstream = gw.emulator.requests.slice(requestsBefore).find((r) => r.path === '/api/generate')!;
    expect(upstream.outcome).toBe('open');
    const closedAt = Date.now();
    await client.dispose(); // closes the socket

    const closed = await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 5000);
    // At once, not when the reply ends: the ~28 tokens left take ~7 s at 250 ms/token, far above
    // a bound generous enough for a busy machine.
    expect(closed.endedAt! - closedAt).toBeLessThan(3000);
    gw.emulator.setTokenDelay(50);

    const row = await waitFor(async () => {
      const r = await generationRow(generationId);
      return r.status === 'STREAMING' ? undefined : r;
    });
    expect(row.status).toBe('CANCELLED');
    expect(row.errorCode).toBe('CANCELLED');
    expect(row.response.startsWith(deltas.join(''))).toBe(true);
    expect(row.completionTokens).toBeGreaterThanOrEqual(2);
    expect(row.creditsCharged).toBe(1);
  });

  it('over graphql-ws: completing the subscription (unsubscribe) aborts the upstream request', async () => {
    const client = wsClient(gw, gw.userSecret);
    const requestsBefore = gw.emulator.requests.length;
    let generationId = '';
    const unsubscribe = await new Promise<() => void>((resolve) => {
      const dispose = client.subscribe<Event>(
        { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'Another long story.' } } },
        {
          next: (r) => {
            generationId = r.data!.generate.generationId;
            if (r.data!.generate.type === 'TOKEN') resolve(dispose);
          },
          error: () => {},
          complete: () => {},
        },
      );
    });
    unsubscribe();
    const upstream = gw.emulator.requests.slice(requestsBefore).find((r) => r.path === '/api/generate')!;
    await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
    const row = await waitFor(async () => {
      const r = await generationRow(generationId);
      return r.status === 'STREAMING' ? undefined : r;
    });
    expect(row.status).toBe('CANCELLED');
    await client.dispose();
  });

  it('over graphql-ws: leaving while the model has not sent a token yet (stalled) still aborts at once', async () => {
    gw.emulator.addFault({ fault: { kind: 'stall', afterTokens: 0 }, path: '/api/generate', times: 1 });
    const client = wsClient(gw, gw.userSecret);
    const requestsBefore = gw.emulator.requests.length;
    client.subscribe({ query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'Wait for it.' } } }, { next: () => {}, error: () => {}, complete: () => {} });
    const upstream = await gw.emulator.waitForRequest((r) => r.id > (gw.emulator.requests[requestsBefore - 1]?.id ?? 0) && r.path === '/api/generate');
    await new Promise((r) => setTimeout(r, 100));
    await client.dispose();
    const closed = await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
    expect(closed.outcome).toBe('client-closed');
    const row = await waitFor(async () => {
      const [r] = await gw.orm.getRepository(Generation).find({ order: { createdAt: 'DESC' }, take: 1 });
      return r && r.status !== 'STREAMING' ? r : undefined;
    });
    expect(row.status).toBe('CANCELLED');
    expect(row.creditsCharged).toBe(0);
  });

  it('over SSE: aborting the fetch closes the HTTP request to Ollama', async () => {
    const controller = new AbortController();
    const requestsBefore = gw.emulator.requests.length;
    let generationId = '';
    let count = 0;
    await sse<Event>(gw, SUBSCRIPTION, { input: { model: 'llama3.2', prompt: 'SSE story.' } }, gw.userSecret, {
      signal: controller.signal,
      onEvent: (e) => {
        generationId = e.data!.generate.generationId;
        if (e.data!.generate.type === 'TOKEN' && ++count === 2) controller.abort();
      },
    }).catch((e: unknown) => {
      expect((e as Error).name).toBe('AbortError');
    });
    const upstream = gw.emulator.requests.slice(requestsBefore).find((r) => r.path === '/api/generate')!;
    await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
    const row = await waitFor(async () => {
      const r = await generationRow(generationId);
      return r.status === 'STREAMING' ? undefined : r;
    });
    expect(row.status).toBe('CANCELLED');
  });
});
