import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { toPrincipal } from '../../src/services/access/keys.js';
import type { AuthedRequest } from '../../src/transport/yoga.js';
import { type TestGateway, post, startGateway } from '../helpers/gateway.js';
import { BUSY_EVENT_INTERVAL_MS } from '../../src/services/generation/run-context.js';
import { until } from '../helpers/wait.js';

/** Tokens further apart than the relay ever holds them back. */
const APART_MS = BUSY_EVENT_INTERVAL_MS + 30;

// GraphQL subscriptions over SSE are served by src/transport/sse-subscriptions.ts, not by yoga's
// fetch layer. These tests send the same requests to the gateway and to a reference server that
// hands every request to the same app's yoga (its own SSE path), and compare what comes back.

const ORIGIN = 'https://app.example';
const GEN = `subscription Gen($input: GenerateInput!) { generate(input: $input) { type delta usage { promptTokens completionTokens } } }`;
const INPUT = { input: { model: 'llama3.2', prompt: 'Why is the sky blue?' } };
const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id } } }`;

let gw: TestGateway;
let reference: Server;
let referenceUrl: string;

beforeAll(async () => {
  gw = await startGateway({ env: { CORS_ORIGINS: `${ORIGIN},https://other.example` } });
  // Tokens further apart than the relay ever holds them back (BUSY_EVENT_INTERVAL_MS while the event
  // loop is busy): how a reply is coalesced into events depends on timing, which differs between
  // the two servers compared byte for byte here, so each token must be its own event on both.
  gw.emulator.setTokenDelay(APART_MS);
  // yoga's own path, authenticated the way the edge would have (http-router.ts sets req.auth).
  reference = createServer((req: IncomingMessage, res: ServerResponse) => {
    const secret = req.headers['x-api-key'] as string | undefined;
    void gw.app.services.keys.authenticate(secret).then((key) => {
      (req as AuthedRequest).auth = key ? { kind: 'key', key, principal: toPrincipal(key), ip: '127.0.0.1' } : { kind: 'none', ip: '127.0.0.1' };
      void gw.app.yoga.handle(req, res);
    });
  });
  await new Promise<void>((r) => reference.listen(0, '127.0.0.1', r));
  referenceUrl = `http://127.0.0.1:${(reference.address() as AddressInfo).port}/graphql`;
  // The first generation loads the model (a PHASE event the later ones do not have).
  await ask(referenceUrl, { body: { query: GEN, variables: INPUT } });
});
afterAll(async () => {
  await new Promise((r) => reference?.close(r));
  await gw?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  /** The body without its keep-alive pings (they come on a timer). */
  body: string;
  /** Streams the gateway's SSE writer began while this request was answered. */
  servedByWriter: number;
}

const HEADERS = ['content-type', 'connection', 'cache-control', 'content-encoding', 'access-control-allow-origin', 'access-control-allow-credentials', 'vary'];

async function ask(url: string, init: { method?: 'GET' | 'POST'; body?: unknown; query?: Record<string, string>; accept?: string; secret?: string; signal?: AbortSignal }): Promise<Answer> {
  const servedBefore = gw.app.sseSubscriptions.served;
  const target = new URL(url);
  for (const [k, v] of Object.entries(init.query ?? {})) target.searchParams.set(k, v);
  const res = await fetch(target, {
    method: init.method ?? 'POST',
    headers: {
      accept: init.accept ?? 'text/event-stream',
      origin: ORIGIN,
      'x-api-key': init.secret ?? gw.userSecret,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
    signal: init.signal,
  });
  const headers = Object.fromEntries(HEADERS.flatMap((h) => (res.headers.has(h) ? [[h, res.headers.get(h)!]] : [])));
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
  }
  // The first ping is part of the format; later ones come on a timer (yoga's: 300 ms under NODE_ENV=test).
  const body = text.startsWith(':\n\n') ? `:\n\n${text.slice(3).replace(/(?<=^|\n\n):\n\n/g, '')}` : text;
  return { status: res.status, headers, body, servedByWriter: gw.app.sseSubscriptions.served - servedBefore };
}

/** Observations of graphql_yoga_http_duration for POSTed subscriptions answered 200. */
const httpDurations = async () => {
  const metric = await gw.app.services.metrics.registry.getSingleMetric('graphql_yoga_http_duration')!.get();
  const count = metric.values.find(
    (v) => (v as { metricName?: string }).metricName === 'graphql_yoga_http_duration_count' && v.labels.operationType === 'subscription' && v.labels.method === 'POST' && String(v.labels.statusCode) === '200',
  );
  return count?.value ?? 0;
};

const wire = ({ status, headers, body }: Answer) => ({ status, headers, body });

/** The gateway's answer, then yoga's (one after the other: concurrent runs would queue for the model). */
const both = async (init: Parameters<typeof ask>[1]) => [await ask(gw.graphqlUrl, init), await ask(referenceUrl, init)] as const;

describe('GraphQL subscriptions over SSE on the gateway response writer', () => {
  it('streams a subscription with the same status, headers and bytes as yoga', async () => {
    const before = await httpDurations();
    const ours = await ask(gw.graphqlUrl, { body: { query: GEN, variables: INPUT } });
    const between = await httpDurations();
    const yogas = await ask(referenceUrl, { body: { query: GEN, variables: INPUT } });
    // graphql_yoga_http_duration: observed once per stream on both paths.
    expect(between - before).toBe(1);
    expect((await httpDurations()) - between).toBe(1);
    expect(ours.servedByWriter).toBe(1); // served by the SSE writer, not by yoga
    expect(yogas.servedByWriter).toBe(0);
    expect(ours.status).toBe(200);
    expect(ours.headers).toEqual(yogas.headers);
    expect(ours.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(ours.body).toMatch(/^:\n\n(event: next\ndata: \{"data":\{"generate":\{"type":"(PHASE|TOKEN)".*\n\n)+event: next\ndata: .*"DONE".*\n\nevent: complete\ndata:\n\n$/s);
    expect(ours.body).toBe(yogas.body);
    await until(() => gw.app.sseSubscriptions.open === 0, 10_000, 'the stream to close');
  });

  it('serves a subscription sent as GET with query parameters the same way', async () => {
    const [ours, yogas] = await both({ method: 'GET', query: { query: GEN, variables: JSON.stringify(INPUT), operationName: 'Gen' } });
    expect(ours.servedByWriter).toBe(1);
    expect(ours.status).toBe(200);
    expect(ours.headers).toEqual(yogas.headers);
    expect(ours.body).toContain('"DONE"');
    expect(ours.body).toBe(yogas.body);
  });

  it('answers a parse error as yoga does', async () => {
    // Balanced brackets, so it is read as a subscription, then fails to parse.
    const [ours, yogas] = await both({ body: { query: 'subscription { generate(input: { model: "llama3.2", prompt: }) { type } }' } });
    expect(wire(ours)).toEqual(wire(yogas));
    expect(ours.body).toContain('"code":"GRAPHQL_PARSE_FAILED"');
  });

  it('answers a validation error (graphql-armor aliases) as yoga does', async () => {
    const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: type`).join(' ');
    const [ours, yogas] = await both({ body: { query: `subscription { generate(input: { model: "llama3.2", prompt: "x" }) { ${aliases} } }` } });
    expect(wire(ours)).toEqual(wire(yogas));
    expect(ours.body).toContain('"code":"GRAPHQL_VALIDATION_FAILED"');
    expect(ours.body).toContain('"limit":"maxAliases"');
  });

  it('answers a subscription the resolver refuses (an unknown model) as yoga does', async () => {
    const [ours, yogas] = await both({ body: { query: GEN, variables: { input: { model: 'no-such-model', prompt: 'x' } } } });
    expect(wire(ours)).toEqual(wire(yogas));
    expect(ours.body).toMatch(/"errors":\[\{"message":/);
  });

  it('with Accept: text/event-stream and application/json, answers an error as JSON like yoga', async () => {
    const [ours, yogas] = await both({ body: { query: 'subscription { generate(input: { model: "llama3.2", prompt: 1 }) { type } }' }, accept: 'text/event-stream, application/json' });
    expect(wire(ours)).toEqual(wire(yogas));
    expect(ours.headers['content-type']).toMatch(/application\/json/);
  });

  it('leaves a query with Accept: text/event-stream to yoga', async () => {
    const query = '{ health { status } }';
    const [ours, yogas] = await both({ body: { query } });
    expect(wire(ours)).toEqual(wire(yogas));
    expect(ours.body).toMatch(/^:\n\nevent: next\ndata: \{"data":\{"health":/);
  });

  it('refuses a wrong key at the edge, before the body is read', async () => {
    const ours = await ask(gw.graphqlUrl, { body: { query: GEN, variables: INPUT }, secret: 'sk-wrong' });
    expect(ours.status).toBe(401);
    expect(ours.headers['content-type']).toMatch(/text\/event-stream/);
    expect(ours.body).toMatch(/^event: next\ndata: \{"errors":\[\{"message":"The API key is invalid or revoked\.","extensions":\{"code":"UNAUTHENTICATED"\}\}\]\}\n\nevent: complete\ndata:\n\n$/);
  });

  it('a client that leaves cancels the run: the row ends CANCELLED and the credits not spent come back', async () => {
    const { body } = await post<{ createApiKey: { secret: string; key: { id: string } } }>(
      gw,
      CREATE_KEY,
      { input: { name: 'sse-cancel', credits: 10, limits: { requestsPerMinute: 0, maxConcurrentStreams: 0 } } },
      gw.adminSecret,
    );
    const { secret, key } = body.data!.createApiKey;
    gw.emulator.setTokenDelay(100);
    try {
      const controller = new AbortController();
      const requestsBefore = gw.emulator.requests.length;
      const res = await fetch(gw.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': secret },
        body: JSON.stringify({ query: GEN, variables: { input: { model: 'llama3.2', prompt: 'A long story, please.' } } }),
        signal: controller.signal,
      });
      let tokens = 0;
      let openWhenLeaving = 0;
      await (async () => {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          tokens += (Buffer.from(chunk).toString().match(/"TOKEN"/g) ?? []).length;
          if (tokens < 2) continue;
          openWhenLeaving = gw.app.sseSubscriptions.open;
          return controller.abort();
        }
      })().catch((e: unknown) => expect((e as Error).name).toBe('AbortError'));
      expect(tokens).toBeGreaterThanOrEqual(2);
      expect(openWhenLeaving).toBe(1); // the stream ran on the SSE writer
      const upstream = gw.emulator.requests.slice(requestsBefore).find((r) => r.path === '/api/generate')!;
      await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
      const row = await until(async () => {
        const [r] = await gw.orm.getRepository(Generation).find({ where: { apiKeyId: key.id } });
        return r && r.status !== 'STREAMING' ? r : undefined;
      });
      expect(row.status).toBe('CANCELLED');
      const me = await post<{ me: { credits: number } }>(gw, '{ me { credits } }', undefined, secret);
      expect(me.body.data?.me.credits).toBe(10 - row.creditsCharged);
      await until(() => gw.app.sseSubscriptions.open === 0, 10_000, 'the stream to close');
    } finally {
      gw.emulator.setTokenDelay(APART_MS);
    }
  });
});
