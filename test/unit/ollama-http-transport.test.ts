import { type AddressInfo } from 'node:net';
import http from 'node:http';
import { Ollama } from 'ollama';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../src/emulator/server.js';
import { mapUpstreamError } from '../../src/services/ollama/errors.js';
import { type ClientInit, OllamaHttpTransport } from '../../src/services/ollama/http-fetch.js';

const clientOn = (host: string, transport: OllamaHttpTransport, signal?: AbortSignal) =>
  new Ollama({ host, fetch: (input, init) => transport.fetch(input as string, init as ClientInit, signal) });

/** A raw HTTP server for what the emulator does not do on purpose (counting sockets, endless bodies). */
async function rawServer(handler: http.RequestListener): Promise<{ url: string; server: http.Server; sockets: () => number; close(): Promise<void> }> {
  let sockets = 0;
  const server = http.createServer(handler);
  server.on('connection', () => sockets++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    sockets: () => sockets,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('OllamaHttpTransport: the ollama client over undici dispatch', () => {
  let emulator: Emulator;
  const transport = new OllamaHttpTransport();
  beforeAll(async () => {
    emulator = await startEmulator({ tokenDelayMs: 0 });
  });
  afterEach(() => emulator.setTokenDelay(0));
  afterAll(async () => {
    transport.close();
    await emulator?.close();
  });

  it('streams generate and chat chunks, and answers non-streaming calls, exactly as over fetch', async () => {
    const ours = clientOn(emulator.url, transport);
    const stock = new Ollama({ host: emulator.url });
    const collect = async (client: Ollama) => {
      let text = '';
      let final: { done: boolean; eval_count?: number } | undefined;
      for await (const c of await client.generate({ model: 'llama3.2', prompt: 'Same answer twice', stream: true, options: { seed: 7, num_predict: 12 } })) {
        text += c.response;
        if (c.done) final = c;
      }
      return { text, evalCount: final?.eval_count };
    };
    const [a, b] = [await collect(ours), await collect(stock)];
    expect(a.text.length).toBeGreaterThan(0);
    expect(a).toEqual(b);
    let chat = '';
    for await (const c of await ours.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'Hi' }], stream: true, options: { num_predict: 5 } })) chat += c.message.content;
    expect(chat.length).toBeGreaterThan(0);
    expect((await ours.list()).models.map((m) => m.name)).toEqual((await stock.list()).models.map((m) => m.name));
    expect((await ours.generate({ model: 'llama3.2', prompt: 'once', stream: false, options: { num_predict: 3 } })).done).toBe(true);
  });

  it("gives Ollama's error bodies to the client (404, 400), so they map as before", async () => {
    const ours = clientOn(emulator.url, transport);
    const missing = await ours.generate({ model: 'no-such-model:1b', prompt: 'x', stream: true }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'ResponseError', status_code: 404 });
    expect(mapUpstreamError(missing, 'no-such-model:1b').code).toBe('MODEL_NOT_FOUND');
  });

  it('a host that refuses connections fails like fetch does (fetch failed, with the system error as cause)', async () => {
    const closed = await rawServer(() => {});
    const url = closed.url;
    await closed.close();
    const e = await clientOn(url, transport).list().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe('fetch failed');
    expect(((e as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(mapUpstreamError(e, undefined).code).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('a body cut short fails the read (terminated), mapped as a lost connection', async () => {
    const server = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ model: 'm', response: 'half', done: false })}\n`);
      setTimeout(() => res.socket?.destroy(), 20);
    });
    try {
      const seen: string[] = [];
      const e = await (async () => {
        for await (const c of await clientOn(server.url, transport).generate({ model: 'm', prompt: 'x', stream: true })) seen.push(c.response ?? '');
      })().catch((err: unknown) => err);
      expect(seen).toEqual(['half']);
      expect(e).toBeInstanceOf(TypeError);
      expect((e as Error).message).toBe('terminated');
      expect(mapUpstreamError(e, 'm').code).toBe('UPSTREAM_UNAVAILABLE');
    } finally {
      await server.close();
    }
  });

  it('an abort mid-stream closes the connection to Ollama at once', async () => {
    emulator.setTokenDelay(50);
    const controller = new AbortController();
    const stream = await clientOn(emulator.url, transport, controller.signal).generate({ model: 'llama3.2', prompt: 'abort me', stream: true });
    const upstream = emulator.requests.filter((r) => r.path === '/api/generate').at(-1)!;
    const reading = (async () => {
      for await (const c of stream) if (c.response) controller.abort();
    })().catch((err: unknown) => err);
    expect(((await reading) as Error).name).toMatch(/AbortError|TypeError/);
    const closed = await emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
    expect(closed.outcome).toBe('client-closed');
  });

  // undici (and so Node's fetch) takes a connection back into its pool a moment after the response
  // has ended, so a request made at once may take a second one; never more for sequential calls.
  it('an abort before Ollama answers rejects with the AbortError and closes the connection', async () => {
    let closed!: () => void;
    const socketClosed = new Promise<void>((resolve) => (closed = resolve));
    const server = await rawServer((req) => req.socket.once('close', closed)); // never answers
    try {
      const controller = new AbortController();
      const pending = clientOn(server.url, transport, controller.signal).list().catch((err: unknown) => err);
      await new Promise((r) => setTimeout(r, 50));
      controller.abort();
      expect(((await pending) as Error).name).toBe('AbortError');
      await socketClosed; // the test times out if the request is left open
    } finally {
      await server.close();
    }
  });

  it('keeps connections alive between requests (at most two sockets for 20 sequential calls, as fetch)', async () => {
    const server = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: '0.0.0' }));
    });
    const own = new OllamaHttpTransport();
    try {
      const client = clientOn(server.url, own);
      for (let i = 0; i < 20; i++) expect((await client.version()).version).toBe('0.0.0');
      expect(server.sockets()).toBeGreaterThanOrEqual(1);
      expect(server.sockets()).toBeLessThanOrEqual(2);
    } finally {
      own.close();
      await server.close();
    }
  });

  it('a reader that stops reading stops the socket: Ollama sees backpressure instead of the gateway buffering', async () => {
    let written = 0;
    let blocked = false;
    const server = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const line = `${JSON.stringify({ model: 'm', response: 'x'.repeat(1000), done: false })}\n`;
      const pump = () => {
        while (written < 200_000_000) {
          written += line.length;
          if (!res.write(line)) {
            blocked = true;
            return void res.once('drain', pump);
          }
        }
      };
      pump();
    });
    try {
      const stream = await clientOn(server.url, transport).generate({ model: 'm', prompt: 'x', stream: true });
      const it = stream[Symbol.asyncIterator]();
      await it.next(); // read one chunk, then stop
      await new Promise((r) => setTimeout(r, 300));
      const stalledAt = written;
      await new Promise((r) => setTimeout(r, 300));
      expect(blocked).toBe(true);
      expect(written).toBe(stalledAt); // nothing more was accepted while nobody read
      expect(written).toBeLessThan(50_000_000);
      await it.return?.();
    } finally {
      await server.close();
    }
  });
});
