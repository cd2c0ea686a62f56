// Fault injection, client aborts, request recording, stop/start and the HTTP control surface.
import { Ollama } from 'ollama';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultModels, startEmulator, type Emulator } from '../../src/emulator/server.js';
import { until } from '../helpers/wait.js';
import { failure, post, raw, sleep } from './helpers.js';

const BUSY = 'server busy, please try again.  maximum pending requests exceeded';

let emu: Emulator;
let client: Ollama;

beforeEach(async () => {
  emu = await startEmulator();
  client = new Ollama({ host: emu.url });
});
afterEach(() => emu.close());

const chatStream = (model = 'llama3.2') =>
  client.chat({ model, messages: [{ role: 'user', content: 'hello' }], stream: true });

describe('faults as the ollama client sees them', () => {
  it('status 503: ResponseError with the exact busy message, before iteration starts', async () => {
    emu.addFault({ fault: { kind: 'status', status: 503 }, path: '/api/chat', times: 1 });
    const err = await failure(chatStream());
    expect(err.name).toBe('ResponseError');
    expect(err.status_code).toBe(503);
    expect(err.message).toBe(BUSY);
    // times: 1 -> the next request is served normally
    const parts: string[] = [];
    for await (const p of await chatStream()) parts.push(p.message.content);
    expect(parts.length).toBeGreaterThan(5);
  });

  it('status 404 with the default message, and a custom error text; matches by normalized model', async () => {
    emu.addFault({ fault: { kind: 'status', status: 404 }, model: 'llava:7b' });
    const err = await failure(client.generate({ model: 'LLaVA:7b', prompt: 'x' }));
    expect([err.status_code, err.message]).toEqual([404, "model 'LLaVA:7b' not found"]);
    expect((await client.generate({ model: 'llama3.2', prompt: 'x' })).done).toBe(true); // other model unaffected
    emu.clearFaults();
    emu.addFault({ fault: { kind: 'status', status: 500, error: 'boom' } });
    const boom = await failure(client.list());
    expect([boom.status_code, boom.message]).toEqual([500, 'boom']);
    const wire = await raw(emu.url, 'GET', '/api/ps');
    expect(wire).toMatchObject({ status: 500, contentType: 'application/json; charset=utf-8', text: '{"error":"boom"}' });
  });

  it('errorAfter: 200 stream, N tokens, then an {"error"} line; the client throws a plain Error', async () => {
    emu.addFault({ fault: { kind: 'errorAfter', tokens: 3 } });
    const wire = await post(emu.url, '/api/generate', { model: 'llama3.2', prompt: 'x' });
    expect(wire.status).toBe(200);
    expect(wire.objects.map((o) => o.response ?? o.error)).toEqual(['Hello', ' from', ' llama3', 'an error was encountered while running the model']);

    emu.clearFaults();
    emu.addFault({ fault: { kind: 'errorAfter', tokens: 2, error: 'runner crashed' }, times: 1 });
    const got: string[] = [];
    const err = await failure(async () => {
      for await (const p of await chatStream()) got.push(p.message.content);
    });
    expect(got).toEqual(['Hello', ' from']);
    expect(err.constructor).toBe(Error);
    expect(err.name).toBe('Error');
    expect(err.message).toBe('runner crashed');
    expect(err.status_code).toBeUndefined();
    const rec = emu.requests[emu.requests.length - 1];
    expect(rec.outcome).toBe('error');
  });

  it('errorAfter on stream:false: 500 with the error body', async () => {
    emu.addFault({ fault: { kind: 'errorAfter', tokens: 1, error: 'oom' } });
    const err = await failure(client.generate({ model: 'llama3.2', prompt: 'x' }));
    expect([err.name, err.status_code, err.message]).toEqual(['ResponseError', 500, 'oom']);
  });

  it('truncate: the stream ends without done:true', async () => {
    emu.addFault({ fault: { kind: 'truncate', afterTokens: 4 } });
    const got: string[] = [];
    const err = await failure(async () => {
      for await (const p of await client.generate({ model: 'llama3.2', prompt: 'x', stream: true })) got.push(String(p.response));
    });
    expect(got).toHaveLength(4);
    expect(err.message).toBe('Did not receive done or success response in stream.');
    // beyond the reply length, the done line is still withheld
    emu.clearFaults();
    emu.addFault({ fault: { kind: 'truncate', afterTokens: 10_000 } });
    const wire = await post(emu.url, '/api/generate', { model: 'llama3.2', prompt: 'x' });
    expect(wire.objects.length).toBeGreaterThan(10);
    expect(wire.objects.some((o) => o.done === true)).toBe(false);
    // a truncated non-stream reply: headers, then a dropped connection
    const flat = await failure(client.generate({ model: 'llama3.2', prompt: 'x' }));
    expect(flat.name).not.toBe('ResponseError');
  });

  it('stall: tokens stop arriving; the client can abort and the emulator records client-closed', async () => {
    emu.addFault({ fault: { kind: 'stall', afterTokens: 2 } });
    const it = await chatStream();
    const got: string[] = [];
    // Aborted 150 ms after the second token (so a busy machine cannot abort before the tokens came):
    // a stream that kept going would deliver a third token first.
    let abortAt: NodeJS.Timeout | undefined;
    const err = await failure(async () => {
      for await (const p of it) {
        got.push(p.message.content);
        if (got.length === 2) abortAt = setTimeout(() => it.abort(), 150);
      }
    });
    clearTimeout(abortAt);
    expect(got).toEqual(['Hello', ' from']);
    expect(err.name).toBe('AbortError');
    const rec = await emu.waitForRequest((r) => r.path === '/api/chat');
    const closed = await emu.waitForOutcome(rec.id, 'client-closed', 10_000);
    expect(closed.endedAt! - closed.receivedAt).toBeGreaterThanOrEqual(140);
  });

  it('refuse: the socket is destroyed without an HTTP response (fetch fails)', async () => {
    emu.addFault({ fault: { kind: 'refuse' }, path: '/api/tags', times: 2 });
    const err = await failure(client.list());
    expect(err.name).toBe('TypeError');
    expect(err.message).toBe('fetch failed');
    await failure(fetch(`${emu.url}/api/tags`));
    expect((await client.list()).models.length).toBe(defaultModels().length); // times exhausted
    expect(emu.requests.filter((r) => r.path === '/api/tags').map((r) => r.outcome)).toEqual(['refused', 'refused', 'completed']);
  });

  it('applies rules in order and only to their path', async () => {
    emu.addFault({ fault: { kind: 'status', status: 503 }, path: 'api/generate' });
    emu.addFault({ fault: { kind: 'status', status: 400, error: 'second' } });
    expect((await failure(client.generate({ model: 'llama3.2', prompt: 'x' }))).status_code).toBe(503);
    expect((await failure(client.list())).message).toBe('second');
  });

  it('rejects malformed rules', () => {
    expect(() => emu.addFault({ fault: { kind: 'nope' } } as never)).toThrow(/fault.kind/);
    expect(() => emu.addFault({ fault: { kind: 'stall', afterTokens: -1 } })).toThrow(/afterTokens/);
  });
});

describe('client aborts', () => {
  it('records client-closed promptly and stops producing', async () => {
    emu.setTokenDelay(400); // the ~28 tokens after the abort would take over 11 s: far from every bound below
    const it = await client.generate({ model: 'llama3.2', prompt: 'abort me', stream: true, keep_alive: 0 });
    const got: string[] = [];
    let abortedAt = 0;
    const err = await failure(async () => {
      for await (const p of it) {
        got.push(String(p.response));
        if (got.length === 2) {
          abortedAt = Date.now();
          it.abort();
        }
      }
    });
    expect(err.name).toBe('AbortError');
    expect(got).toEqual(['Hello', ' from']);
    const rec = await emu.waitForRequest((r) => r.path === '/api/generate');
    const closed = await emu.waitForOutcome(rec.id, 'client-closed', 5000);
    expect(closed.endedAt! - abortedAt).toBeLessThan(3000);
    // keep_alive 0 unloads when the generation loop ends: proof that it stopped right away,
    // not after the remaining ~28 tokens x 400 ms.
    await until(() => emu.running().length === 0, 3000, 'the model unloaded');
    expect(Date.now() - abortedAt).toBeLessThan(5000);
  });

  it('a client disconnect during a stream:false generation is recorded too', async () => {
    emu.setTokenDelay(20);
    const ac = new AbortController();
    const p = fetch(`${emu.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2', prompt: 'x', stream: false }),
      signal: ac.signal,
    });
    const rec = await emu.waitForRequest((r) => r.path === '/api/generate' && r.body !== undefined);
    ac.abort();
    await p.catch(() => undefined);
    expect((await emu.waitForOutcome(rec.id, 'client-closed', 10_000)).body).toMatchObject({ model: 'llama3.2', stream: false });
  });
});

describe('recording', () => {
  it('records method, path, parsed body, times and outcomes', async () => {
    await client.generate({ model: 'llama3.2', prompt: 'hi' });
    await post(emu.url, '/api/generate', { model: 'ghost', prompt: 'x' });
    await raw(emu.url, 'POST', '/api/chat', 'not json');
    const [a, b, c] = emu.requests;
    expect(a).toMatchObject({ id: 1, method: 'POST', path: '/api/generate', body: { model: 'llama3.2', prompt: 'hi', stream: false }, outcome: 'completed' });
    expect(a.endedAt!).toBeGreaterThanOrEqual(a.receivedAt);
    expect(b).toMatchObject({ id: 2, outcome: 'error' });
    expect(c).toMatchObject({ id: 3, path: '/api/chat', body: undefined, outcome: 'error' });
  });

  it('waitForRequest times out with a clear error', async () => {
    await expect(emu.waitForRequest((r) => r.path === '/never', 50)).rejects.toThrow(/timed out after 50 ms/);
  });
});

describe('stop() and start()', () => {
  it('refuses connections while stopped, then serves again on the same port', async () => {
    const port = emu.port;
    expect((await client.list()).models.length).toBe(defaultModels().length);
    await emu.stop();
    const down = await failure(fetch(`${emu.url}/`));
    expect(down.message).toBe('fetch failed');
    expect((down.cause as { code?: string }).code).toBe('ECONNREFUSED');
    await emu.start();
    expect(emu.port).toBe(port);
    expect((await raw(emu.url, 'GET', '/')).text).toBe('Ollama is running');
  });

  it('stop() cuts open streams (recorded as error)', async () => {
    emu.setTokenDelay(30);
    const it = await chatStream();
    const iter = it[Symbol.asyncIterator]();
    await iter.next();
    await emu.stop();
    await expect(iter.next()).rejects.toThrow();
    const rec = emu.requests.find((r) => r.path === '/api/chat')!;
    await emu.waitForOutcome(rec.id, 'error', 10_000);
    await emu.start();
  });
});

describe('HTTP control surface', () => {
  it('adds and clears faults, lists requests, sets the token delay', async () => {
    const add = await post(emu.url, '/__emulator/faults', { fault: { kind: 'status', status: 503 }, path: '/api/generate' });
    expect(add.status).toBe(200);
    expect((await failure(client.generate({ model: 'llama3.2', prompt: 'x' }))).status_code).toBe(503);
    expect(await raw(emu.url, 'DELETE', '/__emulator/faults')).toMatchObject({ status: 200 });
    expect((await client.generate({ model: 'llama3.2', prompt: 'x' })).done).toBe(true);
    expect(await post(emu.url, '/__emulator/faults', { fault: { kind: 'bogus' } })).toMatchObject({ status: 400 });

    const list = await raw(emu.url, 'GET', '/__emulator/requests');
    const recs = JSON.parse(list.text) as Array<{ path: string; outcome: string }>;
    expect(recs.map((r) => [r.path, r.outcome])).toEqual([
      ['/api/generate', 'error'],
      ['/api/generate', 'completed'],
    ]); // control calls are not recorded

    expect(await post(emu.url, '/__emulator/token-delay', { ms: 25 })).toMatchObject({ status: 200 });
    const t0 = Date.now();
    await client.generate({ model: 'llama3.2', prompt: 'y', options: { num_predict: 4 } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    expect(await post(emu.url, '/__emulator/token-delay', { ms: -1 })).toMatchObject({ status: 400 });
    const running = JSON.parse((await raw(emu.url, 'GET', '/__emulator/running')).text);
    expect(running).toEqual([
      { name: 'llama3.2:latest', expiresAt: expect.any(String), size: 2_019_393_189, sizeVram: 2_019_393_189, contextLength: 4096 },
    ]);
  });
});
