import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiKey } from '../../src/entities/api-key.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('API keys', () => {
  it('stores only the sha256 of keys, never the secret', async () => {
    const rows = await gw.orm.getRepository(ApiKey).find();
    expect(rows.length).toBe(2);
    for (const row of rows) {
      expect(row.secretHash).toMatch(/^[0-9a-f]{64}$/);
      expect([hashSecret(gw.adminSecret), hashSecret(gw.userSecret)]).toContain(row.secretHash);
      expect(JSON.stringify(row)).not.toContain(gw.adminSecret);
      expect(JSON.stringify(row)).not.toContain(gw.userSecret);
    }
    expect(gw.adminSecret).toMatch(/^llmgw_[A-Za-z0-9_-]{43}$/);
  });

  it('accepts x-api-key and Authorization: Bearer over HTTP', async () => {
    const a = await post<{ me: { role: string } }>(gw, '{ me { role prefix } }', undefined, gw.adminSecret);
    expect(a.body.data?.me.role).toBe('ADMIN');
    const res = await fetch(gw.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.userSecret}` },
      body: JSON.stringify({ query: '{ me { role } }' }),
    });
    expect(((await res.json()) as { data: { me: { role: string } } }).data.me.role).toBe('USER');
  });

  it('answers UNAUTHENTICATED over HTTP without a key or with a bad one', async () => {
    const none = await post(gw, 'mutation { generate(input: {model: "llama3.2", prompt: "hi"}) { text } }');
    expect(none.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const bad = await post(gw, '{ me { id } }', undefined, 'llmgw_not-a-real-key');
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(bad.body.errors?.[0]?.message).toMatch(/invalid or revoked/);
  });

  it('answers UNAUTHENTICATED over SSE with a bad key', async () => {
    const { events } = await sse(gw, 'subscription { generate(input: {model: "llama3.2", prompt: "hi"}) { type } }', undefined, 'llmgw_wrong');
    expect(events).toHaveLength(1);
    expect(events[0].errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a websocket with a bad key at connection init (close 4403)', async () => {
    const closed = new Promise<number>((resolve) => {
      const client = wsClient(gw, 'llmgw_wrong', { lazy: false, on: { closed: (e) => resolve((e as { code: number }).code) } });
      client.subscribe({ query: '{ me { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    expect(await closed).toBe(4403);
  });

  it('lets /health answer without a key', async () => {
    const res = await fetch(`${gw.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', database: true, upstream: true, version: expect.any(String) });
  });
});

describe('graphql-ws protocol', () => {
  it('answers a syntax error with an error message and keeps the socket open', async () => {
    let connections = 0;
    let closes = 0;
    // Not lazy: the client would otherwise close an idle socket itself after the failed operation.
    const client = wsClient(gw, gw.userSecret, { lazy: false, on: { connected: () => connections++, closed: () => closes++ } });
    const failure = await collect(client, 'subscription { generate(input: {model: "llama3.2" prompt: ').done.then(
      () => null,
      (e: unknown) => e,
    );
    expect(Array.isArray(failure)).toBe(true);
    expect((failure as Array<{ message: string; extensions?: { code?: string } }>)[0].message).toMatch(/Syntax Error/);
    expect((failure as Array<{ extensions?: { code?: string } }>)[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');

    // The same socket still serves operations.
    const ok = await collect<{ me: { role: string } }>(client, '{ me { role } }').done;
    expect(ok[0].data?.me.role).toBe('USER');
    expect(connections).toBe(1);
    expect(closes).toBe(0);
    await client.dispose();
  });

  it('answers a validation error the same way', async () => {
    const client = wsClient(gw, gw.userSecret);
    const failure = await collect(client, '{ noSuchField }').done.then(
      () => null,
      (e: unknown) => e as Array<{ message: string; extensions?: { code?: string } }>,
    );
    expect(failure?.[0].message).toMatch(/noSuchField/);
    expect(failure?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    await client.dispose();
  });

  it('refuses a raw socket that sends a subscribe before connection_init without crashing the server', async () => {
    const ws = new WebSocket(gw.wsUrl, 'graphql-transport-ws');
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ me { id } }' } }));
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(4401);
    const health = await fetch(`${gw.url}/health`);
    expect(health.status).toBe(200);
  });

  it.each(['connection_ack', 'next', 'error'])('closes a socket that sends %s, a message only a server may send, with 4400 (not 4500)', async (type) => {
    const ws = new WebSocket(gw.wsUrl, 'graphql-transport-ws');
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'connection_init', payload: { 'x-api-key': gw.userSecret } }));
    await new Promise((r) => ws.once('message', r));
    const message = type === 'connection_ack' ? { type } : type === 'next' ? { id: '1', type, payload: { data: null } } : { id: '1', type, payload: [{ message: 'x' }] };
    ws.send(JSON.stringify(message));
    const [code, reason] = await new Promise<[number, string]>((r) => ws.once('close', (c, why) => r([c, why.toString()])));
    expect([code, reason]).toEqual([4400, 'Invalid message received']);
  });
});
