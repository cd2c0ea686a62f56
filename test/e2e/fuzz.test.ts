import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestGateway, collect, startGateway, wsClient } from '../helpers/gateway.js';
import { rawSocket } from '../helpers/raw-ws.js';

/**
 * Hostile input, generated: malformed documents, variables of the wrong types, huge and deeply
 * nested inputs, invalid UTF-8, random JSON and binary frames on the websocket, messages before
 * connection_init. Every answer must be typed (a JSON error with `extensions.code`, a documented
 * 4xx, or a documented websocket close code), the server must keep serving, and memory must stay
 * bounded. Seeded by FUZZ_SEED when set (fast-check prints the seed of a failing run).
 */
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const RUNS = { http: 160, variables: 80, ws: 120, wsOperations: 80 };
/** 4xx statuses the README documents for HTTP requests. */
const HTTP_STATUSES = new Set([200, 400, 404, 405, 406, 413, 415, 429]);
/** Close codes the README documents for websockets. */
const WS_CLOSES = new Set([1000, 1008, 1009, 1013, 4400, 4401, 4403, 4406, 4408, 4409, 4429]);
const RSS_GROWTH_BOUND = 192 * 1024 * 1024;
const HEAP_GROWTH_BOUND = 48 * 1024 * 1024;

// A real collection before each measurement, so what is compared is memory still held.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const memory = () => {
  gc();
  gc();
  return process.memoryUsage();
};

let gw: TestGateway;
const stats = { http: 0, ws: 0, statuses: new Map<number, number>(), closes: new Map<number, number>(), wsReplies: new Map<string, number>() };
beforeAll(async () => {
  gw = await startGateway({ env: { RATE_LIMIT_REQUESTS_PER_MINUTE: '0', DEFAULT_CREDITS: '1000000', MAX_BODY_BYTES: String(4 * 1024 * 1024) } });
});
afterAll(async () => {
  await gw?.stop();
  console.info('fuzz', { http: stats.http, ws: stats.ws, statuses: Object.fromEntries(stats.statuses), closes: Object.fromEntries(stats.closes), wsReplies: Object.fromEntries(stats.wsReplies) });
});

const count = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);

/** Sends raw bytes to /graphql and returns the status and body. */
function send(body: Buffer, headers: Record<string, string>): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(gw.graphqlUrl, { method: 'POST', headers: { 'x-api-key': gw.userSecret, 'content-length': String(body.length), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Every HTTP answer: a documented status, and a JSON body whose errors all carry a code. */
function expectTypedHttp(res: { status: number; type: string; text: string }) {
  stats.http++;
  count(stats.statuses, res.status);
  expect(HTTP_STATUSES.has(res.status), `status ${res.status}: ${res.text.slice(0, 300)}`).toBe(true);
  if (res.status === 404 || res.status === 405 || res.status === 406 || res.status === 415) return;
  expect(res.type, res.text.slice(0, 200)).toMatch(/json|event-stream/);
  if (!/json/.test(res.type)) return;
  const body = JSON.parse(res.text) as { errors?: Array<{ message: unknown; extensions?: { code?: unknown } }> };
  for (const e of body.errors ?? []) {
    expect(typeof e.message).toBe('string');
    expect(typeof e.extensions?.code, JSON.stringify(e)).toBe('string');
    expect(e.extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
  }
}

const VALID = [
  '{ me { id role } }',
  'mutation($input: GenerateInput!) { generate(input: $input) { text } }',
  'query Q($first: Int) { sessions(first: $first) { nodes { id messages { content } } } }',
  'subscription($input: GenerateInput!) { generate(input: $input) { type delta } }',
];

/** Documents: valid ones cut and spliced, random text, deep nesting, many tokens. */
const documentArb = fc.oneof(
  fc.tuple(fc.constantFrom(...VALID), fc.nat(), fc.nat(), fc.string({ maxLength: 20 })).map(([q, a, b, junk]) => q.slice(0, a % (q.length + 1)) + junk + q.slice(b % (q.length + 1))),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: fc.constantFrom('{', '}', '(', ')', '[', ']', '$', ':', '!', '@', '...', 'me', ' ', '"', '#', '\n', 'query', 'fragment', 'on', '1', 'e') , maxLength: 400 }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => `${'{ me '.repeat(n)}${'}'.repeat(n)}`),
  fc.integer({ min: 1, max: 5000 }).map((n) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { id }`).join(' ')} }`),
  fc.integer({ min: 1, max: 3000 }).map((n) => `{ me ${'@skip(if: false) '.repeat(n)} { id } }`),
);

/** JSON texts (sent as they are): random values, deep nesting, large strings. */
const jsonArb = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc.integer({ min: 1, max: 100_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 1, max: 20_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.integer({ min: 1, max: 2_000_000 }).map((n) => `"${'x'.repeat(n)}"`),
);
describe('fuzz: HTTP', () => {
  it('malformed documents, wrong content types, invalid UTF-8 and random bodies all get typed answers', async () => {
    const bodyArb = fc.oneof(
      fc.tuple(documentArb, fc.option(jsonArb)).map(([query, variables]) => ({
        body: Buffer.from(`{"query":${JSON.stringify(query)}${variables === null ? '' : `,"variables":${variables}`}}`),
        type: 'application/json',
      })),
      fc.uint8Array({ maxLength: 2000 }).map((bytes) => ({ body: Buffer.from(bytes), type: 'application/json' })),
      fc.tuple(fc.constantFrom(...VALID), fc.uint8Array({ minLength: 1, maxLength: 50 })).map(([q, bytes]) => ({
        // A valid request with invalid UTF-8 spliced into the query string.
        body: Buffer.concat([Buffer.from(`{"query":"${q.replaceAll('"', '\\"')}`), Buffer.from(bytes.map((b) => (b | 0x80) & 0xbf)), Buffer.from('"}')]),
        type: 'application/json; charset=utf-8',
      })),
      fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('application/json', 'text/plain', 'application/graphql', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', ''))
        .map(([v, type]) => ({ body: Buffer.from(JSON.stringify(v)), type })),
    );
    await fc.assert(
      fc.asyncProperty(bodyArb, fc.constantFrom('application/json', 'application/graphql-response+json', 'text/event-stream', '*/*'), async ({ body, type }, accept) => {
        const res = await send(body, { ...(type ? { 'content-type': type } : {}), accept });
        expectTypedHttp(res);
      }),
      { numRuns: RUNS.http, seed, endOnFailure: true },
    );
  });

  it('variables of the wrong types for a generation are refused with typed errors before reaching the model', async () => {
    const generationsBefore = gw.emulator.requests.filter((r) => r.path === '/api/generate').length;
    const inputArb = fc.oneof(
      jsonArb,
      fc.tuple(jsonArb, jsonArb).map(([model, prompt]) => `{"model":${model},"prompt":${prompt}}`),
      fc
        .tuple(jsonArb, fc.constantFrom('temperature', 'maxTokens', 'topK', 'topP', 'seed', 'stop', 'numCtx', 'bogus'), jsonArb)
        .map(([prompt, option, value]) => `{"model":"llama3.2","prompt":${prompt},"options":{"${option}":${value}}}`),
    );
    await fc.assert(
      fc.asyncProperty(inputArb, async (input) => {
        const res = await send(Buffer.from(`{"query":${JSON.stringify(VALID[1])},"variables":{"input":${input}}}`), { 'content-type': 'application/json', accept: 'application/json' });
        expectTypedHttp(res);
        const body = JSON.parse(res.text) as { data?: { generate?: { text: string } } };
        if (body.data?.generate) expect(typeof body.data.generate.text).toBe('string');
      }),
      { numRuns: RUNS.variables, seed, endOnFailure: true },
    );
    // Only inputs that were valid after all (model and prompt strings) may have reached Ollama.
    const reached = gw.emulator.requests.filter((r) => r.path === '/api/generate').slice(generationsBefore);
    for (const r of reached) expect(typeof (r.body as { prompt?: unknown }).prompt).toBe('string');
  });
});

describe('fuzz: websockets', () => {
  type Outcome = { closed?: number; messages: Array<Record<string, unknown>> };

  // Only stops an exchange that hangs; a busy machine answers a ~1 MB variable well within it.
  const EXCHANGE_BOUND_MS = 20_000;

  /**
   * Sends the frames, then waits for events, not a clock: a ping sent after them (its pong echoes a
   * unique payload, so it is answered after they were read), then until `answered(messages)` holds.
   * A close by the server ends the wait; otherwise the client closes.
   */
  async function exchange(frames: Array<string | Buffer>, init: boolean, answered: (messages: Array<Record<string, unknown>>) => boolean = () => true): Promise<Outcome> {
    const s = rawSocket(gw);
    await s.opened;
    if (init) {
      s.send({ type: 'connection_init', payload: { 'x-api-key': gw.userSecret } });
      await s.next((m) => m.type === 'connection_ack');
    }
    for (const f of frames) if (s.ws.readyState === s.ws.OPEN) s.ws.send(f);
    const barrier = `barrier-${randomUUID()}`;
    const isBarrier = (m: Record<string, unknown>) => m.type === 'pong' && (m.payload as { barrier?: unknown } | undefined)?.barrier === barrier;
    if (s.ws.readyState === s.ws.OPEN) s.send({ type: 'ping', payload: { barrier } });
    const settled = (async () => {
      await s.next(isBarrier, EXCHANGE_BOUND_MS);
      await s.next(() => answered(s.messages.filter((m) => !isBarrier(m))), EXCHANGE_BOUND_MS);
    })().then(
      () => undefined,
      () => undefined,
    );
    const closed = await Promise.race([s.closed.then((c) => c.code), settled]);
    const messages = s.messages.filter((m) => m.type !== 'connection_ack' && !isBarrier(m));
    if (closed === undefined) {
      s.ws.close();
      await s.closed;
    }
    return { closed, messages };
  }

  function expectTypedWs(o: Outcome) {
    stats.ws++;
    if (o.closed !== undefined) {
      count(stats.closes, o.closed);
      expect(WS_CLOSES.has(o.closed), `close ${o.closed}`).toBe(true);
    }
    for (const m of o.messages) {
      count(stats.wsReplies, String(m.type));
      if (m.type === 'error') for (const e of m.payload as Array<{ extensions?: { code?: unknown } }>) expect(typeof e.extensions?.code, JSON.stringify(m)).toBe('string');
      if (m.type === 'next') for (const e of ((m.payload as { errors?: Array<{ extensions?: { code?: unknown } }> }).errors ?? [])) expect(typeof e.extensions?.code).toBe('string');
      expect(JSON.stringify(m)).not.toMatch(/INTERNAL_SERVER_ERROR/);
    }
  }

  const messageArb = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
    // Well-formed envelopes around fuzzed documents and variables: answered as error/next messages.
    fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), documentArb, fc.option(jsonArb)).map(
      ([id, query, variables]) => `{"id":${JSON.stringify(id)},"type":"subscribe","payload":{"query":${JSON.stringify(query)}${variables === null ? '' : `,"variables":${variables}`}}}`,
    ),
    fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), jsonArb).map(([id, input]) => `{"id":${JSON.stringify(id)},"type":"subscribe","payload":{"query":"subscription($input: GenerateInput!) { generate(input: $input) { type } }","variables":{"input":${input}}}}`),
    fc.record({
      type: fc.constantFrom('subscribe', 'complete', 'ping', 'pong', 'connection_init', 'next', 'error', 'connection_ack', 'bogus'),
      id: fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(undefined)),
      payload: fc.jsonValue({ maxDepth: 3 }),
    }).map((m) => JSON.stringify(m)),
    fc.uint8Array({ maxLength: 500 }).map((b) => Buffer.from(b)),
    fc.string({ maxLength: 100 }),
  );

  it('random JSON, binary frames and random protocol messages, before and after connection_init, get typed answers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(messageArb, { minLength: 1, maxLength: 3 }), fc.boolean(), async (frames, init) => {
        expectTypedWs(await exchange(frames, init));
      }),
      { numRuns: RUNS.ws, seed, endOnFailure: true },
    );
  });

  it('fuzzed documents and variables in well-formed subscribe messages are answered with typed errors; the socket stays open', async () => {
    // `protocolValid`: variables are an object or absent; anything else is a protocol violation (4400).
    const operationArb = fc.oneof(
      fc.tuple(documentArb, fc.option(jsonArb)).map(([query, variables]) => ({
        payload: `{"query":${JSON.stringify(query)}${variables === null ? '' : `,"variables":${variables}`}}`,
        protocolValid: variables === null || variables.startsWith('{') || variables === 'null',
      })),
      jsonArb.map((input) => ({ payload: `{"query":${JSON.stringify(VALID[3])},"variables":{"input":${input}}}`, protocolValid: true })),
    );
    await fc.assert(
      fc.asyncProperty(operationArb, async ({ payload, protocolValid }) => {
        const o = await exchange([`{"id":"op","type":"subscribe","payload":${payload}}`], true, (messages) => messages.some((m) => m.id === 'op' && (m.type === 'error' || m.type === 'next')));
        expectTypedWs(o);
        if (protocolValid && Buffer.byteLength(payload) < 4 * 1024 * 1024) {
          expect(o.closed).toBeUndefined();
          expect(o.messages.some((m) => m.id === 'op' && (m.type === 'error' || m.type === 'next')), JSON.stringify(o.messages).slice(0, 300)).toBe(true);
        }
      }),
      { numRuns: RUNS.wsOperations, seed, endOnFailure: true },
    );
  });

  it('a subscribe before connection_init closes with 4401', async () => {
    const o = await exchange([JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ me { id } }' } })], false);
    expect(o.closed).toBe(4401);
  });
});

describe('after the fuzzing', () => {
  it('still serves /health and a real generation, with no stream left running and memory bounded', async () => {
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    const client = wsClient(gw, gw.userSecret);
    const results = await collect<{ generate: { type: string } }>(client, VALID[3], { input: { model: 'llama3.2', prompt: 'still alive?' } }).done;
    await client.dispose();
    expect(results.at(-1)?.data?.generate.type).toBe('DONE');
    expect(gw.app.services.activeStreams.size).toBe(0);
    expect(gw.emulator.requests.filter((r) => r.outcome === 'open')).toEqual([]);
  });
});

// Memory: measured around the whole file (gateway and clients share this process), after a GC.
let start: NodeJS.MemoryUsage;
beforeAll(() => {
  start = memory();
});
afterAll(() => {
  const end = memory();
  const rss = end.rss - start.rss;
  const heap = end.heapUsed - start.heapUsed;
  console.info('fuzz memory growth MiB', { rss: Math.round(rss / 2 ** 20), heapUsed: Math.round(heap / 2 ** 20) });
  expect(rss).toBeLessThan(RSS_GROWTH_BOUND);
  expect(heap).toBeLessThan(HEAP_GROWTH_BOUND);
});
