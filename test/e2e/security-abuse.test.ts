// Security round 2 (issue 18): each abuse path found by probing the gateway, replayed as the
// attacker did it, now answered with its typed refusal while /health keeps answering.
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { health, imageServer, PNG } from '../helpers/attack.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { initSocket, rawSocket } from '../helpers/raw-ws.js';
import { until } from '../helpers/wait.js';

const GEN = 'subscription($input: GenerateInput!) { generate(input: $input) { type generationId delta } }';

const chatCompletion = (gw: TestGateway, secret: string, body: unknown) =>
  fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` }, body: JSON.stringify(body) });

describe('1. image amplification', () => {
  let gw: TestGateway;
  let images: Awaited<ReturnType<typeof imageServer>>;
  beforeAll(async () => {
    gw = await startGateway({ env: { IMAGE_URL_ALLOW_PRIVATE: 'true' } });
    images = await imageServer();
  });
  afterAll(async () => {
    await gw?.stop();
    await images?.close();
  });

  const imageMessages = (messages: number, perMessage: number) =>
    Array.from({ length: messages }, (_, i) => ({
      role: 'user',
      content: [{ type: 'text', text: `look ${i}` }, ...Array.from({ length: perMessage }, () => ({ type: 'image_url', image_url: { url: images.url } }))],
    }));

  it('/v1: 25 messages × 8 image URLs are refused (400, maxImagesPerRequest) before a single download', async () => {
    const { secret } = await gw.app.services.keys.create({ name: 'broke', role: 'USER', credits: 0 });
    const res = await chatCompletion(gw, secret, { model: 'llava:7b', messages: imageMessages(25, 8) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; param: string } };
    expect(body.error.message).toMatch(/At most 16 images per request \(this one has 200\)/);
    expect(images.hits()).toBe(0);
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });

  it('/v1: a key without credits gets 402 for a request within the image limits, still before any download', async () => {
    const { secret } = await gw.app.services.keys.create({ name: 'broke 2', role: 'USER', credits: 0 });
    const res = await chatCompletion(gw, secret, { model: 'llava:7b', messages: imageMessages(2, 2) });
    expect(res.status).toBe(402);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('insufficient_quota');
    expect(images.hits()).toBe(0);
    // Control: a key with credits gets the same request served, its four images downloaded.
    const ok = await chatCompletion(gw, gw.userSecret, { model: 'llava:7b', messages: imageMessages(2, 2), max_tokens: 2 });
    expect(ok.status).toBe(200);
    expect(images.hits()).toBe(4);
  });

  it('GraphQL stateless chat: 10 messages × 20 images and 3 × 8 images are refused with BAD_USER_INPUT and the limit', async () => {
    const b64 = PNG.toString('base64');
    const CHAT = 'mutation($input: ChatInput!) { chat(input: $input) { text } }';
    const messages = (n: number, per: number) => Array.from({ length: n }, () => ({ role: 'USER', content: 'see', images: Array.from({ length: per }, () => b64) }));
    const chatsBefore = gw.emulator.requests.filter((r) => r.path === '/api/chat').length;
    const perMessage = await post(gw, CHAT, { input: { model: 'llava:7b', messages: messages(10, 20) } }, gw.userSecret);
    expect(perMessage.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'maxImagesPerMessage' });
    const perRequest = await post(gw, CHAT, { input: { model: 'llava:7b', messages: messages(3, 8) } }, gw.userSecret);
    expect(perRequest.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'maxImagesPerRequest' });
    expect(gw.emulator.requests.filter((r) => r.path === '/api/chat')).toHaveLength(chatsBefore);
  });
});

describe('2, 4, 5, 6, 7: one gateway with tight limits', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { MAX_CONCURRENT_STREAMS_PER_IP: '2', MAX_SOCKETS_PER_KEY: '2', MAX_SUBSCRIPTIONS_PER_SOCKET: '5' } });
  });
  afterAll(() => gw?.stop());
  afterEach(() => gw.emulator.setTokenDelay(0));

  it('2. revoking a key closes its SSE subscription even when Accept is written Text/Event-Stream', async () => {
    const { key, secret } = await gw.app.services.keys.create({ name: 'sse', role: 'USER' });
    const controller = new AbortController();
    const res = await fetch(gw.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'Text/Event-Stream', 'x-api-key': secret },
      body: JSON.stringify({ query: 'subscription { modelEvents { type model } }' }),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const reading = (async () => {
      for await (const _chunk of res.body as unknown as AsyncIterable<Uint8Array>);
      return 'ended';
    })().catch(() => 'ended');
    await until(() => gw.app.services.connections.countFor(key.id) === 1, 5000, 'the SSE response to be registered');
    await gw.app.services.keys.revoke(key.id);
    const outcome = await Promise.race([reading, new Promise((r) => setTimeout(() => r('still open'), 5000))]);
    controller.abort();
    expect(outcome).toBe('ended');
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });

  it('4. refused requests (402, 429) leave a usage row without the prompt beyond a short excerpt and without messages', async () => {
    const { key, secret } = await gw.app.services.keys.create({ name: 'no credits', role: 'USER', credits: 0 });
    const long = 'p'.repeat(200_000);
    const refused = await post(gw, 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p }) { text } }', { p: long }, secret);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('INSUFFICIENT_CREDITS');
    const v1 = await chatCompletion(gw, secret, { model: 'llama3.2', messages: [{ role: 'system', content: long }, { role: 'user', content: long }] });
    expect(v1.status).toBe(402);
    const { key: limited, secret: limitedSecret } = await gw.app.services.keys.create({ name: 'one a minute', role: 'USER', limits: { requestsPerMinute: 1 } });
    const gen = 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p, options: { maxTokens: 2 } }) { text } }';
    expect((await post(gw, gen, { p: 'short' }, limitedSecret)).body.errors).toBeUndefined();
    expect((await post(gw, gen, { p: long }, limitedSecret)).body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');

    const rows = await gw.orm.getRepository(Generation).find({ where: [{ apiKeyId: key.id }, { apiKeyId: limited.id, status: 'ERROR' }] });
    expect(rows.map((r) => r.errorCode).sort()).toEqual(['INSUFFICIENT_CREDITS', 'INSUFFICIENT_CREDITS', 'RATE_LIMITED']);
    for (const row of rows) {
      expect(row.prompt.length).toBeLessThanOrEqual(101);
      expect(row.messages).toBeNull();
    }
  });

  it('5. generations per address hold for `... on Mutation`, named fragments and /v1 (RATE_LIMITED / 429)', async () => {
    gw.emulator.setTokenDelay(30);
    const a = wsClient(gw, gw.userSecret);
    const b = wsClient(gw, gw.adminSecret);
    try {
      const s1 = collect(a, GEN, { input: { model: 'llama3.2', prompt: 'one' } });
      const s2 = collect(b, GEN, { input: { model: 'llama3.2', prompt: 'two' } });
      await until(() => s1.results.length > 0 && s2.results.length > 0, 5000, 'two running streams');
      const inline = await post(gw, 'mutation { ... on Mutation { generate(input: { model: "llama3.2", prompt: "inline" }) { text } } }', undefined, gw.userSecret);
      expect(inline.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'maxConcurrentStreamsPerIp' });
      const named = await post(gw, 'mutation { ...G } fragment G on Mutation { generate(input: { model: "llama3.2", prompt: "named" }) { text } }', undefined, gw.adminSecret);
      expect(named.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'maxConcurrentStreamsPerIp' });
      const v1 = await chatCompletion(gw, gw.userSecret, { model: 'llama3.2', messages: [{ role: 'user', content: 'v1' }] });
      expect(v1.status).toBe(429);
      expect(((await v1.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
      expect((await health(gw, '127.0.0.1')).status).toBe(200);
      s1.cancel();
      s2.cancel();
      // Both slots come back: a request is served again.
      await until(async () => (await chatCompletion(gw, gw.userSecret, { model: 'llama3.2', messages: [{ role: 'user', content: 'after' }], max_tokens: 2 })).status === 200, 5000, 'the slots to free up');
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it('6. keyless websockets (key per operation, as GraphiQL) count against MAX_SOCKETS_PER_KEY: the third is closed 1013', async () => {
    const { secret } = await gw.app.services.keys.create({ name: 'graphiql', role: 'USER' });
    const sockets = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = rawSocket(gw);
        sockets.push(s);
        await s.opened;
        s.send({ type: 'connection_init', payload: {} });
        await s.next((m) => m.type === 'connection_ack');
        s.send({ id: 'q', type: 'subscribe', payload: { query: '{ me { name } }', extensions: { headers: { 'x-api-key': secret } } } });
      }
      await sockets[0].next((m) => m.id === 'q' && m.type === 'next');
      await sockets[1].next((m) => m.id === 'q' && m.type === 'next');
      expect(await sockets[2].closed).toMatchObject({ code: 1013, reason: expect.stringMatching(/API key/) });
      expect((await health(gw, '127.0.0.1')).status).toBe(200);
    } finally {
      for (const s of sockets) s.ws.close();
    }
  });

  it('7. operations per socket are capped: the sixth gets RATE_LIMITED (maxSubscriptionsPerSocket), the socket stays usable', async () => {
    const s = await initSocket(gw, gw.userSecret);
    try {
      for (let i = 1; i <= 6; i++) s.send({ id: String(i), type: 'subscribe', payload: { query: 'subscription { modelEvents { type } }' } });
      const refused = await s.next((m) => m.id === '6');
      expect(refused.type).toBe('error');
      expect((refused.payload as Array<{ extensions: Record<string, unknown> }>)[0].extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'maxSubscriptionsPerSocket' });
      s.send({ id: '7', type: 'subscribe', payload: { query: '{ me { id } }' } });
      expect((await s.next((m) => m.id === '7')).type).toBe('error');
      // Completing one frees a place.
      s.send({ id: '1', type: 'complete' });
      s.send({ id: '8', type: 'subscribe', payload: { query: '{ me { id } }' } });
      expect((await s.next((m) => m.id === '8')).type).toBe('next');
      expect((await health(gw, '127.0.0.1')).status).toBe(200);
    } finally {
      s.ws.close();
    }
  });
});

describe('3. denial of service without a key', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { MAX_CONNECTIONS_PER_IP: '20', HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000' } });
  });
  afterAll(() => gw?.stop());

  const open = (head: string) => {
    const { port } = new URL(gw.url);
    const socket = connect(Number(port), '127.0.0.1');
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', () => {});
    const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(data)));
    socket.write(head);
    return { socket, closed };
  };

  it('60 connections that declare a body and never send it: past 20 closed at accept, the rest cut by requestTimeout (408); /health answers throughout', async () => {
    const head = `POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\nx-api-key: ${gw.userSecret}\r\ncontent-length: 100000\r\n\r\n`;
    const conns = Array.from({ length: 60 }, () => open(head));
    let closed = 0;
    for (const c of conns) void c.closed.then(() => closed++);
    await until(() => closed >= 40, 5000, '40 connections over the cap to be closed');
    expect((await health(gw)).status).toBe(200);
    const answers = await Promise.all(conns.map((c) => c.closed));
    expect(answers.filter((a) => a.startsWith('HTTP/1.1 408'))).toHaveLength(20);
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });

  it('four keyless 14 MiB POSTs are refused with 401 before their body is read; /health answers meanwhile', async () => {
    const size = 14 * 1024 * 1024;
    const conns: Array<{ socket: Socket; closed: Promise<string> }> = [];
    for (let i = 0; i < 4; i++) {
      const c = open(`POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\n\r\n`);
      // Only the first MiB of the body: the answer must not wait for the rest.
      c.socket.write(`{"query":"{ health { status } }","variables":{"v":"${'x'.repeat(1024 * 1024)}`);
      conns.push(c);
    }
    expect((await health(gw)).status).toBe(200);
    const answers = await Promise.all(conns.map((c) => c.closed));
    for (const a of answers) {
      expect(a).toMatch(/^HTTP\/1\.1 401/);
      expect(a).toContain('"code":"UNAUTHENTICATED"');
    }
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });
});
