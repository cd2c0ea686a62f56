import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { defaultModels } from '../../src/emulator/server.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';
import { captureLog } from '../helpers/log-capture.js';
import { initSocket } from '../helpers/raw-ws.js';
import { until } from '../helpers/wait.js';

// A model whose answer is far larger than any socket buffer: 4,000 tokens of 8 KiB (32 MiB).
const TOKENS = 4000;
const longModel = { ...defaultModels()[0], name: 'long:latest', digest: undefined, reply: Array.from({ length: TOKENS }, () => ` ${'a'.repeat(8192)}`).join('') };
const GEN = 'subscription($input: GenerateInput!) { generate(input: $input) { type generationId delta } }';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function start(env: Record<string, string>) {
  const capture = captureLog('warn');
  // An Ollama with OLLAMA_NUM_PARALLEL=4, and the gateway told so: several streams of one model run at once.
  gw = await startGateway({ env: { OLLAMA_NUM_PARALLEL: '4', ...env }, emulator: { models: [...defaultModels(), longModel], numParallel: 4 }, log: capture.log });
  return { gw, capture };
}


const settledRow = (g: TestGateway) => async () => {
  const [row] = await g.orm.getRepository(Generation).find({ order: { createdAt: 'DESC' }, take: 1 });
  return row && row.status !== 'STREAMING' ? row : undefined;
};

/** The stream must have been cut: cancelled, partial text kept, upstream aborted, most of the answer never produced. */
async function expectCutShort(g: TestGateway) {
  const row = await until(settledRow(g), 10_000, 'the stream to be cancelled');
  expect(row.status).toBe('CANCELLED');
  expect(row.errorCode).toBe('CANCELLED');
  expect(row.completionTokens).toBeGreaterThan(0);
  expect(row.completionTokens).toBeLessThan(TOKENS / 2);
  expect(row.response.length).toBe(row.completionTokens * 8193);
  expect(row.creditsCharged).toBe(1);
  const upstream = g.emulator.requests.find((r) => r.path === '/api/generate')!;
  await g.emulator.waitForOutcome(upstream.id, 'client-closed', 5000);
  // The row is visible once committed; the run lets go of the stream once that commit is on disk
  // (SQLite's WAL flush, a PostgreSQL round trip): a moment later.
  await until(() => (g.app.services.activeStreams.size === 0 ? true : undefined), 5000, 'the stream to leave the active list');
  return row;
}

/** After a cut the gateway serves a normal generation. */
async function expectStillServing(g: TestGateway) {
  const res = await fetch(g.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': g.userSecret },
    body: JSON.stringify({ query: 'mutation { generate(input: { model: "llama3.2", prompt: "still there?" }) { text } }' }),
  });
  expect(((await res.json()) as { data: { generate: { text: string } } }).data.generate.text.length).toBeGreaterThan(0);
}

describe('backpressure: a client that stops reading', () => {
  it('websocket, time bound: its stream is cancelled (upstream aborted, partial stored) and the socket closed', async () => {
    const { gw: g, capture } = await start({ SLOW_CLIENT_TIMEOUT_MS: '500', MAX_CLIENT_BUFFERED_BYTES: String(256 * 1024 * 1024), WS_KEEPALIVE_MS: '0' });
    const s = await initSocket(g, g.userSecret);
    s.send({ id: '1', type: 'subscribe', payload: { query: GEN, variables: { input: { model: 'long', prompt: 'everything' } } } });
    await s.next((m) => m.id === '1' && (m.payload as { data?: { generate?: { type?: string } } }).data?.generate?.type === 'TOKEN');
    const tcp = (s.ws as unknown as { _socket: Socket })._socket;
    tcp.pause(); // stop reading: the kernel buffers fill, then the gateway's

    await expectCutShort(g);
    expect(capture.lines().some((l) => /not reading/.test(String(l.msg)) && l.reason === 'timeout')).toBe(true);
    tcp.resume();
    const closed = await Promise.race([s.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(closed).not.toBeNull(); // the gateway closed the socket
    await expectStillServing(g);
  });

  it('websocket, byte bound: past MAX_CLIENT_BUFFERED_BYTES queued, its streams are cancelled and the socket closed', async () => {
    const { gw: g, capture } = await start({ SLOW_CLIENT_TIMEOUT_MS: '600000', MAX_CLIENT_BUFFERED_BYTES: String(12 * 1024), WS_KEEPALIVE_MS: '0' });
    const s = await initSocket(g, g.userSecret);
    // Three streams on one socket: once the kernel buffers are full, their 8 KiB events queue up
    // in the gateway until one more would exceed 12 KiB.
    for (const id of ['1', '2', '3']) s.send({ id, type: 'subscribe', payload: { query: GEN, variables: { input: { model: 'long', prompt: `everything ${id}` } } } });
    await s.next((m) => m.id === '3' && (m.payload as { data?: { generate?: { type?: string } } }).data?.generate?.type === 'TOKEN');
    const tcp = (s.ws as unknown as { _socket: Socket })._socket;
    tcp.pause();

    const rows = await until(
      async () => {
        const all = await g.orm.getRepository(Generation).find();
        return all.length === 3 && all.every((r) => r.status !== 'STREAMING') ? all : undefined;
      },
      10_000,
      'the three streams to end',
    );
    for (const row of rows) {
      expect(row.status).toBe('CANCELLED');
      expect(row.completionTokens).toBeLessThan(TOKENS / 2);
    }
    expect(capture.lines().some((l) => /not reading/.test(String(l.msg)) && l.reason === 'buffer')).toBe(true);
    tcp.resume();
    await s.closed;
    await expectStillServing(g);
  });

  it('SSE: a response that does not drain is destroyed, which cancels its stream the same way', async () => {
    const { gw: g, capture } = await start({ SLOW_CLIENT_TIMEOUT_MS: '500', MAX_CLIENT_BUFFERED_BYTES: String(256 * 1024 * 1024) });
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(g.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': g.userSecret },
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.end(JSON.stringify({ query: GEN, variables: { input: { model: 'long', prompt: 'everything' } } }));
    });
    expect(response.headers['content-type']).toMatch(/text\/event-stream/);
    const ended = new Promise<void>((resolve) => {
      response.on('close', () => resolve());
      response.on('error', () => resolve());
    });
    // Read a little, then stop reading altogether.
    await new Promise<void>((resolve) => {
      let seen = 0;
      const onData = (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > 20_000) {
          response.off('data', onData);
          response.pause();
          response.socket.pause();
          resolve();
        }
      };
      response.on('data', onData);
    });

    await expectCutShort(g);
    expect(capture.lines().some((l) => /HTTP client is not reading/.test(String(l.msg)))).toBe(true);
    response.socket.resume();
    response.resume();
    const closed = await Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    expect(closed).toBe(true);
    await expectStillServing(g);
  });

  it('shutdown (or any cancellation) does not wait on a client that stopped reading', async () => {
    const { gw: g } = await start({ SLOW_CLIENT_TIMEOUT_MS: '600000', MAX_CLIENT_BUFFERED_BYTES: String(256 * 1024 * 1024), WS_KEEPALIVE_MS: '0' });
    const s = await initSocket(g, g.userSecret);
    s.send({ id: '1', type: 'subscribe', payload: { query: GEN, variables: { input: { model: 'long', prompt: 'everything' } } } });
    await s.next((m) => m.id === '1' && (m.payload as { data?: { generate?: { type?: string } } }).data?.generate?.type === 'TOKEN');
    const tcp = (s.ws as unknown as { _socket: Socket })._socket;
    tcp.pause();
    // Let the buffers fill so the stream is parked on an unread send.
    const upstream = g.emulator.requests.find((r) => r.path === '/api/generate')!;
    await new Promise((r) => setTimeout(r, 500));
    expect(upstream.outcome).toBe('open');

    const db = g.app.services.db;
    const stopped = Date.now();
    await g.app.stop();
    expect(Date.now() - stopped).toBeLessThan(5000);
    await g.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
    expect(db.isOpen).toBe(false);
    tcp.resume();
  });
});
