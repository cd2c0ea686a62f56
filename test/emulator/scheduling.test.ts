// Ollama's scheduler as the emulator ports it (server/sched.go, the runner semaphore): one request
// per model at a time by default with no headers for the others, the 503 of a full queue, sticky
// keep_alive, eviction and partial offload.
import { Ollama } from 'ollama';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startEmulator, type Emulator, type RecordedRequest } from '../../src/emulator/server.js';
import { post, raw } from './helpers.js';

let emu: Emulator;
let client: Ollama;

beforeEach(async () => {
  emu = await startEmulator();
  client = new Ollama({ host: emu.url });
});
afterEach(() => emu.close());

const YEAR_MS = 365.25 * 86_400_000;
const BUSY = 'server busy, please try again.  maximum pending requests exceeded';
const until = (check: () => void) => vi.waitFor(check, { timeout: 10_000, interval: 10 });

/** A request whose headers have (or have not yet) arrived, observable without awaiting it. */
function pendingFetch(path: string, body: unknown, signal?: AbortSignal) {
  const state: { headersAt?: number; status?: number } = {};
  const response = fetch(`${emu.url}${path}`, { method: 'POST', body: JSON.stringify(body), signal }).then((res) => {
    state.headersAt = Date.now();
    state.status = res.status;
    return res;
  });
  response.catch(() => undefined);
  return { state, response };
}

const recordOf = (pred: (r: RecordedRequest) => boolean) => emu.waitForRequest((r) => r.body !== undefined && pred(r), 10_000);
const promptIs = (p: string) => (r: RecordedRequest) => (r.body as { prompt?: string }).prompt === p;

describe('OLLAMA_NUM_PARALLEL (default 1)', () => {
  it('runs one request per model at a time; the next gets no headers until the first has finished', async () => {
    expect(emu.configure({}).numParallel).toBe(1);
    emu.setTokenDelay(30);
    const first = await client.generate({ model: 'llama3.2', prompt: 'first', stream: true });
    const iter = first[Symbol.asyncIterator]();
    await iter.next();
    const second = pendingFetch('/api/generate', { model: 'llama3.2', prompt: 'second' });
    const secondRec = await recordOf(promptIs('second'));
    await until(() => expect(emu.queued('llama3.2')).toBe(1));
    for (let i = 0; i < 3; i++) expect((await iter.next()).done).toBe(false); // the first keeps streaming
    expect(second.state.headersAt).toBeUndefined();
    expect(secondRec.scheduledAt).toBeUndefined();

    let parts = 1;
    let last: { done: boolean; created_at: Date } | undefined;
    for (;;) {
      const step = await iter.next();
      if (step.done) break;
      parts += 1;
      last = step.value;
    }
    expect(parts).toBeGreaterThan(4);
    expect(last?.done).toBe(true);
    const res = await second.response;
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { done: boolean });
    expect(lines[lines.length - 1].done).toBe(true);
    expect(emu.requests.find(promptIs('first'))!.outcome).toBe('completed');
    // Scheduled only once the first had produced its final chunk (created_at is the server's clock).
    expect(secondRec.scheduledAt).toBeGreaterThanOrEqual(Date.parse(String(last!.created_at)));
    expect(emu.queued()).toBe(0);
  });

  it('with numParallel 2 two requests stream side by side; other models never wait for it', async () => {
    emu.configure({ numParallel: 2 });
    emu.setTokenDelay(30);
    const a = await client.generate({ model: 'llama3.2', prompt: 'a', stream: true });
    const b = await client.generate({ model: 'llama3.2', prompt: 'b', stream: true });
    const [ia, ib] = [a[Symbol.asyncIterator](), b[Symbol.asyncIterator]()];
    expect((await ia.next()).done).toBe(false);
    expect((await ib.next()).done).toBe(false);
    expect(emu.queued('llama3.2')).toBe(0);
    const c = pendingFetch('/api/generate', { model: 'llama3.2', prompt: 'c', stream: false });
    await recordOf(promptIs('c'));
    await until(() => expect(emu.queued('llama3.2')).toBe(1));
    const other = await client.generate({ model: 'qwen3:0.6b', prompt: 'meanwhile', think: false, options: { num_predict: 2 } });
    expect(other.done_reason).toBe('length');
    expect(c.state.headersAt).toBeUndefined();
    // Raising the limit at run time lets the waiting request start.
    emu.configure({ numParallel: 3 });
    expect((await c.response).status).toBe(200);
    a.abort();
    b.abort();
  });

  it('drops a queued request whose client goes away, and serves the next one', async () => {
    emu.setTokenDelay(30);
    const first = await client.generate({ model: 'llama3.2', prompt: 'first', stream: true });
    const iter = first[Symbol.asyncIterator]();
    await iter.next();
    const aborter = new AbortController();
    const gone = pendingFetch('/api/generate', { model: 'llama3.2', prompt: 'gone' }, aborter.signal);
    const goneRec = await recordOf(promptIs('gone'));
    await until(() => expect(emu.queued('llama3.2')).toBe(1));
    aborter.abort();
    await expect(gone.response).rejects.toThrow();
    await emu.waitForOutcome(goneRec.id, 'client-closed', 10_000);
    expect(emu.queued('llama3.2')).toBe(0);
    first.abort();
    emu.setTokenDelay(0);
    const next = await client.generate({ model: 'llama3.2', prompt: 'next' });
    expect(next.done_reason).toBe('stop');
    expect(goneRec.scheduledAt).toBeUndefined();
  });
});

describe('OLLAMA_MAX_QUEUE', () => {
  it('answers 503 once the pending queue is full; requests for a loaded model are not counted', async () => {
    emu.configure({ maxLoadedModels: 1, maxQueue: 1 });
    emu.setTokenDelay(30);
    const busy = await client.generate({ model: 'llama3.2', prompt: 'busy', stream: true });
    const iter = busy[Symbol.asyncIterator]();
    await iter.next();
    // qwen3 must evict llama3.2, which is in use: the scheduler works on it and waits.
    const qwen = pendingFetch('/api/generate', { model: 'qwen3:0.6b' });
    await until(() => expect(emu.queued('qwen3:0.6b')).toBe(1));
    // llava takes the one place in the queue.
    const llava = pendingFetch('/api/generate', { model: 'llava:7b' });
    await until(() => expect(emu.queued('llava:7b')).toBe(1));
    const refused = await post(emu.url, '/api/generate', { model: 'gpt-oss:20b', prompt: 'x' });
    expect(refused).toMatchObject({ status: 503, contentType: 'application/json; charset=utf-8', objects: [{ error: BUSY }] });
    const err = await client.chat({ model: 'gpt-oss:20b', messages: [] }).catch((e: unknown) => e as { name: string; status_code: number });
    expect(err).toMatchObject({ name: 'ResponseError', status_code: 503 });
    // A request for the loaded model waits behind NUM_PARALLEL instead, however full the queue is.
    const same = pendingFetch('/api/generate', { model: 'llama3.2', prompt: 'same', stream: false, options: { num_predict: 1 } });
    await until(() => expect(emu.queued('llama3.2')).toBe(1));
    expect(same.state.headersAt).toBeUndefined();

    busy.abort();
    expect((await same.response).status).toBe(200);
    expect((await qwen.response).status).toBe(200);
    expect((await llava.response).status).toBe(200);
    expect(emu.running().map((m) => m.name)).toEqual(['llava:7b']);
  });
});

describe('keep_alive is sticky (sched.go useLoadedRunner)', () => {
  const expiresIn = async (name: string) => {
    const { models } = await client.ps();
    const m = models.find((x) => x.name === name);
    if (!m) throw new Error(`${name} is not loaded`);
    return new Date(m.expires_at).getTime() - Date.now();
  };

  it('a request without keep_alive keeps the loaded model\'s duration; a stated one replaces it', async () => {
    await client.generate({ model: 'llama3.2', prompt: 'pin', keep_alive: -1 });
    expect((await expiresIn('llama3.2:latest')) / YEAR_MS).toBeGreaterThan(292);
    await client.generate({ model: 'llama3.2', prompt: 'no keep_alive' });
    expect((await expiresIn('llama3.2:latest')) / YEAR_MS).toBeGreaterThan(292);
    await client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'still none' }] });
    expect((await expiresIn('llama3.2:latest')) / YEAR_MS).toBeGreaterThan(292);
    await client.generate({ model: 'llama3.2', prompt: 'thirty', keep_alive: 30 });
    const left = await expiresIn('llama3.2:latest');
    expect(left).toBeLessThanOrEqual(30_000);
    expect(left).toBeGreaterThan(25_000);
  });

  it('a fresh load without keep_alive gets the default (5 minutes), not the last unloaded value', async () => {
    await client.generate({ model: 'llama3.2', prompt: '', keep_alive: '1h' });
    await client.generate({ model: 'llama3.2', prompt: '', keep_alive: 0 });
    expect(emu.running()).toEqual([]);
    await client.generate({ model: 'llama3.2', prompt: 'again' });
    const left = await expiresIn('llama3.2:latest');
    expect(left).toBeLessThanOrEqual(300_000);
    expect(left).toBeGreaterThan(295_000);
  });
});

describe('eviction (OLLAMA_MAX_LOADED_MODELS, VRAM) and partial offload', () => {
  const names = () => emu.running().map((m) => m.name).sort();

  it('unloads an idle model to make room: shortest keep_alive first, a busy one only when it is done', async () => {
    emu.configure({ maxLoadedModels: 2 });
    await client.generate({ model: 'llama3.2', prompt: '', keep_alive: '10m' });
    await client.generate({ model: 'qwen3:0.6b', prompt: '', keep_alive: '2m' });
    await client.generate({ model: 'llava:7b', prompt: '', keep_alive: '1m' });
    expect(names()).toEqual(['llama3.2:latest', 'llava:7b']); // qwen3 had the shortest keep_alive

    emu.setTokenDelay(30);
    const stream = await client.generate({ model: 'llava:7b', prompt: 'busy', stream: true });
    const iter = stream[Symbol.asyncIterator]();
    await iter.next();
    // llava has the shorter keep_alive but is in use: the idle llama3.2 goes.
    await client.generate({ model: 'qwen3:0.6b', prompt: '', keep_alive: '5m' });
    expect(names()).toEqual(['llava:7b', 'qwen3:0.6b']);

    // Now nothing is idle except qwen3... make it busy too, then ask for a third model.
    const qwen = await client.generate({ model: 'qwen3:0.6b', prompt: 'busy too', stream: true });
    const qiter = qwen[Symbol.asyncIterator]();
    await qiter.next();
    const gpt = pendingFetch('/api/generate', { model: 'gpt-oss:20b', keep_alive: '1h' });
    await until(() => expect(emu.queued('gpt-oss:20b')).toBe(1));
    expect(gpt.state.headersAt).toBeUndefined();
    while (!(await iter.next()).done); // llava (shortest keep_alive) finishes and is unloaded
    expect((await gpt.response).status).toBe(200);
    expect(names()).toEqual(['gpt-oss:20b', 'qwen3:0.6b']);
    qwen.abort();
  });

  it('evicts when the new model does not fit in VRAM next to the loaded ones', async () => {
    emu.configure({ vramBytes: 6_000_000_000 });
    await client.generate({ model: 'llama3.2', prompt: '' });
    await client.generate({ model: 'qwen3:0.6b', prompt: '' });
    expect(names()).toEqual(['llama3.2:latest', 'qwen3:0.6b']);
    await client.generate({ model: 'llava:7b', prompt: '' }); // 4.7 GB: one of the two must go
    expect(names()).toContain('llava:7b');
    const used = emu.running().reduce((sum, m) => sum + m.sizeVram, 0);
    expect(used).toBeLessThanOrEqual(6_000_000_000);
    expect(emu.running().every((m) => m.sizeVram === m.size)).toBe(true);
  });

  it('loads a model bigger than the whole GPU partly: size_vram < size in /api/ps and running()', async () => {
    emu.configure({ vramBytes: 8_000_000_000 });
    await client.generate({ model: 'llama3.2', prompt: '' });
    await client.generate({ model: 'gpt-oss:20b', prompt: '' });
    // It could not fit next to llama3.2, so llama3.2 was unloaded first; alone it still does not fit.
    const ps = (await raw(emu.url, 'GET', '/api/ps')).objects[0].models as Array<Record<string, unknown>>;
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ name: 'gpt-oss:20b', size: 13_780_173_839, size_vram: 8_000_000_000 });
    expect(emu.running()).toEqual([expect.objectContaining({ name: 'gpt-oss:20b', size: 13_780_173_839, sizeVram: 8_000_000_000 })]);
    const control = JSON.parse((await raw(emu.url, 'GET', '/__emulator/running')).text) as Array<Record<string, unknown>>;
    expect(control[0]).toMatchObject({ size: 13_780_173_839, sizeVram: 8_000_000_000 });
  });

  it('CPU only (vramBytes 0): size_vram 0', async () => {
    emu.configure({ vramBytes: 0 });
    await client.generate({ model: 'llama3.2', prompt: '' });
    const ps = (await raw(emu.url, 'GET', '/api/ps')).objects[0].models as Array<Record<string, unknown>>;
    expect(ps[0]).toMatchObject({ size: 2_019_393_189, size_vram: 0 });
  });
});

describe('configuration', () => {
  it('has Ollama\'s defaults and changes over the control route', async () => {
    const defaults = JSON.parse((await raw(emu.url, 'GET', '/__emulator/config')).text);
    expect(defaults).toEqual({
      numParallel: 1,
      maxQueue: 512,
      vramBytes: 24 * 1024 ** 3,
      maxLoadedModels: 3,
      defaultKeepAliveSeconds: 300,
      tokenDelayMs: 0,
      pullVerifyMs: 5,
    });
    const changed = await post(emu.url, '/__emulator/config', { numParallel: 4, maxQueue: 8 });
    expect(changed.objects[0]).toMatchObject({ numParallel: 4, maxQueue: 8, maxLoadedModels: 3 });
    expect(emu.configure({})).toMatchObject({ numParallel: 4, maxQueue: 8 });
    const bad = await post(emu.url, '/__emulator/config', { numParallel: 0 });
    expect(bad).toMatchObject({ status: 400, objects: [{ error: 'numParallel must be an integer >= 1' }] });
    const unknown = await post(emu.url, '/__emulator/config', { parallel: 2 });
    expect(unknown.status).toBe(400);
    expect(() => emu.configure({ maxQueue: -1 })).toThrow('maxQueue must be an integer >= 0');
    expect(JSON.parse((await raw(emu.url, 'GET', '/__emulator/queue?model=llama3.2')).text)).toEqual({ queued: 0 });
    await expect(startEmulator({ numParallel: 0 })).rejects.toThrow('numParallel must be an integer >= 1');
  });
});
