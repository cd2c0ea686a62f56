import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { type GraphQLResponse, type TestGateway, post, sse, startGateway, wsClient } from '../helpers/gateway.js';
import { until as waitFor } from '../helpers/wait.js';

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id } } }`;
const REVOKE = `mutation($id: ID!) { revokeApiKey(id: $id) { id active revokedAt } }`;
const SUBSCRIPTION = `subscription($input: GenerateInput!) { generate(input: $input) { type generationId delta } }`;
type Event = { generate: { type: string; generationId: string; delta: string | null } };

let gw: TestGateway;
beforeAll(async () => {
  // An Ollama with OLLAMA_NUM_PARALLEL=4, and the gateway told so: a key's streams run at once.
  gw = await startGateway({ env: { OLLAMA_NUM_PARALLEL: '4' }, emulator: { numParallel: 4 } });
});
afterEach(() => gw.emulator.setTokenDelay(0));
afterAll(async () => {
  await gw?.stop();
});

async function newKey(name: string): Promise<{ id: string; secret: string }> {
  const { body } = await post<{ createApiKey: { secret: string; key: { id: string } } }>(gw, CREATE_KEY, { input: { name } }, gw.adminSecret);
  expect(body.errors).toBeUndefined();
  return { id: body.data!.createApiKey.key.id, secret: body.data!.createApiKey.secret };
}

const code = (r: GraphQLResponse | undefined) => r?.errors?.[0]?.extensions?.code;


/** A websocket whose close code is recorded, with one long generation running on it. */
function runningWsStream(secret: string) {
  let closeCode: number | undefined;
  let closedAt = 0;
  // Not lazy: a lazy client would close its own socket (1000) once its only operation ended.
  const client = wsClient(gw, secret, {
    lazy: false,
    onNonLazyError: () => {}, // the server closing the socket (4403) is what these tests wait for
    on: {
      closed: (e) => {
        closeCode = (e as { code: number }).code;
        closedAt = Date.now();
      },
    },
  });
  const events: Array<GraphQLResponse<Event>> = [];
  let endedAt = 0;
  let firstToken!: () => void;
  const started = new Promise<void>((r) => (firstToken = r));
  const ended = new Promise<void>((resolve) => {
    client.subscribe<Event>(
      { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'A very long story about revocation.' } } },
      {
        next: (r) => {
          events.push(r as GraphQLResponse<Event>);
          if (r.data?.generate.type === 'TOKEN') firstToken();
        },
        error: () => {
          endedAt = Date.now();
          resolve();
        },
        complete: () => {
          endedAt = Date.now();
          resolve();
        },
      },
    );
  });
  return { client, events, started, ended, endedAt: () => endedAt, closeCode: () => closeCode, closedAt: () => closedAt };
}

describe('revoking a key', () => {
  it('ends its running websocket and SSE streams with UNAUTHENTICATED within a second and closes its sockets with 4403', async () => {
    const key = await newKey('to be revoked');
    gw.emulator.setTokenDelay(100); // ~30 tokens: each stream would run for seconds

    const ws = runningWsStream(key.secret);
    const sseEvents: Array<GraphQLResponse<Event>> = [];
    let sseFirst!: () => void;
    const sseStarted = new Promise<void>((r) => (sseFirst = r));
    let sseEndedAt = 0;
    const sseDone = sse<Event>(gw, SUBSCRIPTION, { input: { model: 'llama3.2', prompt: 'Another long story, over SSE.' } }, key.secret, {
      onEvent: (e) => {
        sseEvents.push(e);
        if (e.data?.generate.type === 'TOKEN') sseFirst();
      },
    }).then(
      (r) => ((sseEndedAt = Date.now()), r),
      (e: unknown) => ((sseEndedAt = Date.now()), e),
    );
    // An idle socket of the same key (one finished operation on it).
    let idleClose: number | undefined;
    const idle = wsClient(gw, key.secret, { lazy: false, onNonLazyError: () => {}, on: { closed: (e) => (idleClose = (e as { code: number }).code) } });
    await new Promise<void>((resolve, reject) => idle.subscribe({ query: '{ me { id } }' }, { next: () => {}, error: reject, complete: resolve }));

    await Promise.all([ws.started, sseStarted]);
    expect(gw.app.services.activeStreams.countFor(key.id)).toBe(2);
    expect(gw.app.services.connections.countFor(key.id)).toBe(3); // the streaming socket, the SSE response, the idle socket

    const revokedAt = Date.now();
    const revoked = await post<{ revokeApiKey: { id: string; active: boolean; revokedAt: string } }>(gw, REVOKE, { id: key.id }, gw.adminSecret);
    expect(revoked.body.data?.revokeApiKey).toMatchObject({ id: key.id, active: false, revokedAt: expect.any(String) });
    await Promise.all([ws.ended, sseDone]);

    // websocket: a typed UNAUTHENTICATED error as the last result, within a second; then the socket closes with 4403.
    const wsLast = ws.events.at(-1);
    expect(code(wsLast)).toBe('UNAUTHENTICATED');
    expect(ws.events.filter((e) => e.data?.generate.type === 'DONE')).toHaveLength(0);
    expect(ws.endedAt() - revokedAt).toBeLessThan(1000);
    await waitFor(async () => ws.closeCode(), 1000);
    expect(ws.closeCode()).toBe(4403);
    expect(ws.closedAt() - revokedAt).toBeLessThan(1000);
    expect(idleClose).toBe(4403);

    // SSE: the same error as its last event, within a second.
    expect(code(sseEvents.at(-1))).toBe('UNAUTHENTICATED');
    expect(sseEndedAt - revokedAt).toBeLessThan(1000);

    // Both rows: CANCELLED with the UNAUTHENTICATED code, partial text kept; the upstream requests were closed.
    const ids = [ws.events[0], sseEvents[0]].map((e) => e.data!.generate.generationId);
    for (const id of ids) {
      const row = await gw.orm.getRepository(Generation).findOneByOrFail({ id });
      expect(row).toMatchObject({ status: 'CANCELLED', errorCode: 'UNAUTHENTICATED' });
      expect(row.response.length).toBeGreaterThan(0);
    }
    const upstream = gw.emulator.requests.filter((r) => r.path === '/api/generate').slice(-2);
    for (const r of upstream) expect((await gw.emulator.waitForOutcome(r.id, 'client-closed', 10_000)).outcome).toBe('client-closed');
    expect(gw.app.services.connections.countFor(key.id)).toBe(0);
    await ws.client.dispose();
    await idle.dispose();
  });

  it('makes the key fail everywhere afterwards: HTTP, SSE and new websockets', async () => {
    const key = await newKey('revoked before use');
    expect((await post(gw, '{ me { id } }', undefined, key.secret)).body.errors).toBeUndefined();
    await post(gw, REVOKE, { id: key.id }, gw.adminSecret);

    const http = await post(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "hi" }) { text } }', undefined, key.secret);
    expect(code(http.body)).toBe('UNAUTHENTICATED');
    expect(code((await post(gw, '{ me { id } }', undefined, key.secret)).body)).toBe('UNAUTHENTICATED');

    const viaSse = await sse(gw, SUBSCRIPTION, { input: { model: 'llama3.2', prompt: 'hi' } }, key.secret);
    expect(viaSse.events).toHaveLength(1);
    expect(code(viaSse.events[0])).toBe('UNAUTHENTICATED');

    const closed = new Promise<number>((resolve) => {
      const client = wsClient(gw, key.secret, { lazy: false, onNonLazyError: () => {}, on: { closed: (e) => resolve((e as { code: number }).code) } });
      client.subscribe({ query: '{ me { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    expect(await closed).toBe(4403);
    // No usage was recorded for the revoked key after revocation.
    expect(await gw.orm.getRepository(Generation).countBy({ apiKeyId: key.id })).toBe(0);
  });

  it('re-checks the key for every operation on an open socket (e.g. revoked by another instance)', async () => {
    const key = await newKey('revoked elsewhere');
    let closeCode: number | undefined;
    const client = wsClient(gw, key.secret, { lazy: false, onNonLazyError: () => {}, on: { closed: (e) => (closeCode = (e as { code: number }).code) } });
    const run = (query: string) =>
      new Promise<{ results: GraphQLResponse[]; error?: unknown }>((resolve) => {
        const results: GraphQLResponse[] = [];
        client.subscribe({ query }, { next: (r) => results.push(r as GraphQLResponse), error: (error) => resolve({ results, error }), complete: () => resolve({ results }) });
      });
    expect((await run('{ me { name } }')).results[0].data).toEqual({ me: { name: 'revoked elsewhere' } });

    // Revoked in the database only: no event reaches this instance, so only the per-operation check can stop it.
    await gw.orm.getRepository(ApiKey).update({ id: key.id }, { revokedAt: new Date() });
    const upstreamBefore = gw.emulator.requests.length;
    const refused = await run('subscription { generate(input: { model: "llama3.2", prompt: "sneaky" }) { type } }');
    const errors = refused.error as Array<{ extensions?: { code?: string } }>;
    expect(errors[0].extensions?.code).toBe('UNAUTHENTICATED');
    expect(gw.emulator.requests.length).toBe(upstreamBefore);
    await waitFor(async () => closeCode, 1000);
    expect(closeCode).toBe(4403);
    await client.dispose();
  });

  it('answers quickly and changes nothing when revoking an already revoked key', async () => {
    const key = await newKey('twice');
    const first = await post<{ revokeApiKey: { revokedAt: string } }>(gw, REVOKE, { id: key.id }, gw.adminSecret);
    const second = await post<{ revokeApiKey: { revokedAt: string } }>(gw, REVOKE, { id: key.id }, gw.adminSecret);
    expect(second.body.data?.revokeApiKey.revokedAt).toBe(first.body.data?.revokeApiKey.revokedAt);
    const missing = await post(gw, REVOKE, { id: '00000000-0000-4000-8000-000000000000' }, gw.adminSecret);
    expect(code(missing.body)).toBe('NOT_FOUND');
  });
});
