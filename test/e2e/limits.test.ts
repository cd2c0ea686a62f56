import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type GraphQLResponse, type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';
import { type RawSocket, initSocket, rawSocket } from '../helpers/raw-ws.js';
import { until } from '../helpers/wait.js';

const GEN = 'subscription($input: GenerateInput!) { generate(input: $input) { type generationId delta } }';
type GenEvent = { generate: { type: string; generationId: string; delta: string | null } };


describe('query limits (graphql-armor) over HTTP, SSE and websockets', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({
      env: { GRAPHQL_MAX_DEPTH: '3', GRAPHQL_MAX_ALIASES: '3', GRAPHQL_MAX_DIRECTIVES: '3', GRAPHQL_MAX_COST: '200', GRAPHQL_MAX_TOKENS: '120' },
    });
  });
  afterAll(() => gw?.stop());

  const tooMany = Array.from({ length: 130 }, () => 'id').join(' ');
  const queries = [
    { limit: 'maxDepth', code: 'GRAPHQL_VALIDATION_FAILED', query: '{ sessions { nodes { messages { content } } } }' },
    { limit: 'maxAliases', code: 'GRAPHQL_VALIDATION_FAILED', query: '{ a: me { id } b: me { id } c: me { id } d: me { id } }' },
    { limit: 'maxDirectives', code: 'GRAPHQL_VALIDATION_FAILED', query: '{ me @skip(if: false) { id @skip(if: false) prefix @skip(if: false) name @skip(if: false) } }' },
    { limit: 'maxCost', code: 'GRAPHQL_VALIDATION_FAILED', query: '{ apiKeys(first: 50) { nodes { id name prefix } } }' },
    { limit: 'maxTokens', code: 'GRAPHQL_PARSE_FAILED', query: `{ me { ${tooMany} } }` },
  ];

  it('accepts a query within every limit', async () => {
    const { body } = await post<{ a: { id: string } }>(gw, '{ a: me { id } sessions { nodes { id } } }', undefined, gw.userSecret);
    expect(body.errors).toBeUndefined();
    expect(body.data?.a.id).toBeTruthy();
  });

  it.each(queries)('HTTP: $limit is refused with $code before anything runs', async ({ query, code, limit }) => {
    const res = await post(gw, query, undefined, gw.adminSecret);
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(500);
    const error = res.body.errors?.[0];
    expect(error?.extensions?.code).toBe(code);
    if (code === 'GRAPHQL_VALIDATION_FAILED') expect(error?.extensions?.limit).toBe(limit);
    expect(res.body.data ?? null).toBeNull();
  });

  it.each(queries)('websocket: $limit is answered with an error message and the socket stays open', async ({ query, code, limit }) => {
    const s = await initSocket(gw, gw.adminSecret);
    s.send({ id: '1', type: 'subscribe', payload: { query } });
    const reply = await s.next((m) => m.id === '1');
    expect(reply.type).toBe('error');
    const [error] = reply.payload as Array<{ extensions?: { code?: string; limit?: string } }>;
    expect(error.extensions?.code).toBe(code);
    if (code === 'GRAPHQL_VALIDATION_FAILED') expect(error.extensions?.limit).toBe(limit);
    // Still usable afterwards.
    s.send({ id: '2', type: 'subscribe', payload: { query: '{ me { id } }' } });
    expect((await s.next((m) => m.id === '2' && m.type === 'next')).payload).toMatchObject({ data: { me: { id: expect.any(String) } } });
    s.ws.close();
  });

  it('SSE: a subscription over the alias limit is refused with a typed error', async () => {
    const { status, events } = await sse(
      gw,
      'subscription { generate(input: { model: "llama3.2", prompt: "hi" }) { a: type b: type c: type d: type } }',
      undefined,
      gw.userSecret,
    );
    expect(status).toBeLessThan(500);
    expect(events.at(-1)?.errors?.[0]?.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxAliases' });
    expect(gw.emulator.requests.some((r) => r.path === '/api/generate')).toBe(false);
  });
});

describe('transport limits', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({
      env: {
        MAX_BODY_BYTES: '4096',
        MAX_WS_PAYLOAD_BYTES: '4096',
        WS_CONNECTION_INIT_TIMEOUT_MS: '300',
        WS_KEEPALIVE_MS: '150',
        MAX_SOCKETS_PER_IP: '6',
        MAX_SOCKETS_PER_KEY: '3',
        MAX_CONCURRENT_STREAMS_PER_IP: '2',
        MAX_PROMPT_CHARS: '100',
        CORS_ORIGINS: 'https://app.example',
      },
    });
  });
  afterAll(() => gw?.stop());

  /** A raw HTTP POST to /graphql; `chunks` are sent with chunked transfer encoding (no content-length). */
  function rawPost(chunks: Buffer[], headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${gw.graphqlUrl}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': gw.userSecret, ...headers } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (const c of chunks) req.write(c);
      req.end();
    });
  }

  it('refuses a body over MAX_BODY_BYTES with a declared content-length: 413 with a JSON error', async () => {
    const res = await fetch(gw.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': gw.userSecret },
      body: JSON.stringify({ query: `{ me { id } }`, variables: { pad: 'x'.repeat(5000) } }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('counts the bytes of a chunked body (no content-length) and refuses it past the limit with 413', async () => {
    const body = Buffer.from(JSON.stringify({ query: '{ me { id } }', variables: { pad: 'x'.repeat(6000) } }));
    const chunks = [body.subarray(0, 2000), body.subarray(2000, 4000), body.subarray(4000)];
    const res = await rawPost(chunks);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ errors: [{ extensions: { code: 'BAD_USER_INPUT', limit: 'maxBodyBytes' } }] });
  });

  it('serves a chunked body under the limit normally', async () => {
    const body = Buffer.from(JSON.stringify({ query: '{ me { role } }' }));
    const res = await rawPost([body.subarray(0, 5), body.subarray(5)]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ data: { me: { role: 'USER' } } });
  });

  it('closes a websocket that sends a message over MAX_WS_PAYLOAD_BYTES (1009)', async () => {
    const s = await initSocket(gw, gw.userSecret);
    s.send({ id: '1', type: 'subscribe', payload: { query: '{ me { id } }', variables: { pad: 'x'.repeat(5000) } } });
    expect((await s.closed).code).toBe(1009);
    // A message under the limit on a new socket is fine.
    const ok = await initSocket(gw, gw.userSecret);
    ok.send({ id: '1', type: 'subscribe', payload: { query: '{ me { id } }', variables: { pad: 'x'.repeat(3000) } } });
    expect((await ok.next((m) => m.id === '1')).type).toBe('next');
    ok.ws.close();
  });

  it('closes a websocket that never sends connection_init (4408) after WS_CONNECTION_INIT_TIMEOUT_MS', async () => {
    const started = Date.now();
    const s = rawSocket(gw);
    await s.opened;
    const { code } = await s.closed;
    expect(code).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('pings sockets: a peer that answers stays, one that never answers pings is dropped', async () => {
    const alive = await initSocket(gw, gw.userSecret);
    const deaf = await initSocket(gw, gw.adminSecret, { autoPong: false });
    let pings = 0;
    alive.ws.on('ping', () => pings++);
    const { code } = await deaf.closed;
    expect(code).toBe(1006); // terminated: no close frame
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(alive.ws.readyState).toBe(alive.ws.OPEN);
    alive.ws.close();
  });

  it('limits websockets per API key (1013 at init) and per address (429 at the upgrade)', async () => {
    const open: RawSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) open.push(await initSocket(gw, gw.userSecret));
      const fourth = rawSocket(gw);
      await fourth.opened;
      fourth.send({ type: 'connection_init', payload: { 'x-api-key': gw.userSecret } });
      expect(await fourth.closed).toMatchObject({ code: 1013, reason: expect.stringMatching(/API key/) });
      // Another key from the same address still gets in, up to the per-address limit of 6.
      for (let i = 0; i < 3; i++) open.push(await initSocket(gw, gw.adminSecret));
      const seventh = rawSocket(gw);
      expect(await seventh.refused).toBe(429);
      // Closing one frees a place.
      const first = open.shift()!;
      first.ws.close();
      await first.closed;
      await until(async () => {
        const s = rawSocket(gw);
        const ok = await Promise.race([s.opened.then(() => true), s.refused.then(() => false)]);
        if (ok) open.push(s);
        return ok;
      }, 3000, 'a free socket place');
    } finally {
      for (const s of open) s.ws.close();
      await Promise.all(open.map((s) => s.closed));
    }
  });

  it('limits generations running at once per address (RATE_LIMITED, limit maxConcurrentStreamsPerIp), whatever the key', async () => {
    gw.emulator.setTokenDelay(30);
    const userClient = wsClient(gw, gw.userSecret);
    const adminClient = wsClient(gw, gw.adminSecret);
    try {
      const a = collect<GenEvent>(userClient, GEN, { input: { model: 'llama3.2', prompt: 'first of two' } });
      const b = collect<GenEvent>(adminClient, GEN, { input: { model: 'llama3.2', prompt: 'second of two' } });
      await until(() => a.results.length > 0 && b.results.length > 0, 5000, 'two streams');
      const third = await post(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "third" }) { text } }', undefined, gw.adminSecret);
      expect(third.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'maxConcurrentStreamsPerIp', retryAfterSeconds: expect.any(Number) });
      const viaSse = await sse(gw, GEN, { input: { model: 'llama3.2', prompt: 'fourth' } }, gw.userSecret);
      expect(viaSse.events.at(-1)?.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      a.cancel();
      await until(async () => {
        const r = await post(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "after", options: { maxTokens: 2 } }) { text } }', undefined, gw.userSecret);
        return !r.body.errors;
      }, 5000, 'a slot to free up');
      b.cancel();
    } finally {
      gw.emulator.setTokenDelay(0);
      await userClient.dispose();
      await adminClient.dispose();
    }
  });

  it('refuses a prompt over MAX_PROMPT_CHARS with BAD_USER_INPUT before anything reaches the model', async () => {
    const before = gw.emulator.requests.filter((r) => r.path === '/api/generate').length;
    const http = await post(gw, 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p }) { text } }', { p: 'x'.repeat(101) }, gw.userSecret);
    expect(http.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'prompt' });
    const client = wsClient(gw, gw.userSecret);
    const ws = await collect<GenEvent>(client, GEN, { input: { model: 'llama3.2', prompt: 'y'.repeat(101) } }).done;
    await client.dispose();
    expect(ws.at(-1)?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(gw.emulator.requests.filter((r) => r.path === '/api/generate').length).toBe(before);
    const ok = await post(gw, 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p, options: { maxTokens: 2 } }) { text } }', { p: 'x'.repeat(100) }, gw.userSecret);
    expect(ok.body.errors).toBeUndefined();
  });

  it('answers a CORS preflight for a configured origin, and not for another', async () => {
    const preflight = (origin: string) =>
      fetch(gw.graphqlUrl, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' },
      });
    const allowed = await preflight('https://app.example');
    expect(allowed.status).toBeLessThan(300);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(allowed.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-api-key');
    const other = await preflight('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).not.toBe('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).not.toBe('*');
    // A request refused at the auth edge (before yoga) is still readable by an allowed origin.
    const refused = await fetch(gw.graphqlUrl, { method: 'POST', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body: '{"query":"{ me { id } }"}' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const refusedOther = await fetch(gw.graphqlUrl, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body: '{"query":"{ me { id } }"}' });
    expect(refusedOther.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('failed-authentication throttling per address', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_SECONDS: '2' } });
  });
  afterAll(() => gw?.stop());

  it('after N bad keys the address gets RATE_LIMITED with retryAfterSeconds (HTTP and websocket) without a key lookup, then recovers', async () => {
    const keys = gw.app.services.keys;
    const authenticate = keys.authenticate.bind(keys);
    let lookups = 0;
    keys.authenticate = (secret) => {
      lookups++;
      return authenticate(secret);
    };
    for (let i = 0; i < 2; i++) expect((await post(gw, '{ me { id } }', undefined, `llmgw_guess-${i}`)).body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    // The third bad key, over a websocket: refused (4403) and counted.
    const third = rawSocket(gw);
    await third.opened;
    third.send({ type: 'connection_init', payload: { 'x-api-key': 'llmgw_guess-ws' } });
    expect((await third.closed).code).toBe(4403);
    expect(lookups).toBe(3);

    // Now even the right key is refused, and nothing is looked up.
    const blocked = await fetch(gw.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': gw.userSecret },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await blocked.json()) as GraphQLResponse;
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'authFailures', retryAfterSeconds: expect.any(Number) });
    const sseBlocked = await sse(gw, GEN, { input: { model: 'llama3.2', prompt: 'hi' } }, gw.userSecret);
    expect(sseBlocked.status).toBe(429);
    const ws = rawSocket(gw);
    expect(await ws.refused).toBe(429);
    expect(lookups).toBe(3);
    // Requests without a key (health) are not affected.
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);

    // After the window the right key works again.
    await until(async () => (await post(gw, '{ me { role } }', undefined, gw.userSecret)).status === 200, 10_000, 'the window to end');
    expect((await post<{ me: { role: string } }>(gw, '{ me { role } }', undefined, gw.userSecret)).body.data?.me.role).toBe('USER');
    expect(await gw.orm.getRepository(Generation).count()).toBe(0);
  });
});
