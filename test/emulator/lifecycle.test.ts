// Model lifecycle and catalogue routes: load/unload, keep_alive, /api/ps, tags, show, pull, delete.
import { Ollama } from 'ollama';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultModels, startEmulator, type Emulator } from '../../src/emulator/server.js';
import { until } from '../helpers/wait.js';
import { failure, post, raw, sleep } from './helpers.js';

let emu: Emulator;
let client: Ollama;

beforeEach(async () => {
  emu = await startEmulator();
  client = new Ollama({ host: emu.url });
});
afterEach(() => emu.close());

const YEAR_MS = 365.25 * 86_400_000;
const psModels = async () => (await client.ps()).models as unknown as Array<Record<string, unknown>>;
const expiresIn = async (name: string) => {
  const m = (await psModels()).find((x) => x.name === name);
  if (!m) throw new Error(`${name} is not loaded`);
  return Date.parse(m.expires_at as string) - Date.now();
};

describe('load and unload', () => {
  it('loads on an empty prompt with one plain JSON object, even when streaming', async () => {
    const r = await post(emu.url, '/api/generate', { model: 'llama3.2', stream: true });
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('application/json; charset=utf-8');
    expect(r.objects).toEqual([{ model: 'llama3.2', created_at: expect.any(String), response: '', done: true, done_reason: 'load' }]);
    const c = await post(emu.url, '/api/chat', { model: 'llava:7b', messages: [] });
    expect(c.objects).toEqual([
      { model: 'llava:7b', created_at: expect.any(String), message: { role: 'assistant', content: '' }, done: true, done_reason: 'load' },
    ]);
    const ps = await raw(emu.url, 'GET', '/api/ps');
    const models = ps.objects[0].models as Array<Record<string, unknown>>;
    expect(models.map((m) => m.name).sort()).toEqual(['llama3.2:latest', 'llava:7b']);
    const llama = models.find((m) => m.name === 'llama3.2:latest')!;
    expect(llama).toMatchObject({
      model: 'llama3.2:latest',
      size: 2_019_393_189,
      size_vram: 2_019_393_189,
      digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72',
      context_length: 4096,
      details: { format: 'gguf', family: 'llama', parameter_size: '3.2B', quantization_level: 'Q4_K_M' },
    });
    const left = Date.parse(llama.expires_at as string) - Date.now();
    expect(left).toBeGreaterThan(295_000); // default keep_alive 5m
    expect(left).toBeLessThanOrEqual(300_000);
  });

  it('unloads with keep_alive 0 (number or "0"), 200 even when not loaded, 404 for unknown models', async () => {
    await client.generate({ model: 'llama3.2', prompt: '' });
    expect(emu.running().map((m) => m.name)).toEqual(['llama3.2:latest']);
    const r = await post(emu.url, '/api/generate', { model: 'llama3.2', keep_alive: 0 });
    expect(r.objects).toEqual([{ model: 'llama3.2', created_at: expect.any(String), response: '', done: true, done_reason: 'unload' }]);
    expect(emu.running()).toEqual([]);
    const again = await post(emu.url, '/api/chat', { model: 'llama3.2', messages: [], keep_alive: '0' });
    expect(again.status).toBe(200);
    expect(again.objects[0]).toMatchObject({ message: { role: 'assistant', content: '' }, done_reason: 'unload' });
    const unknown = await post(emu.url, '/api/generate', { model: 'ghost', keep_alive: 0 });
    expect(unknown.status).toBe(404);
  });

  it('generates then unloads for a real prompt with keep_alive 0', async () => {
    const r = await client.generate({ model: 'llama3.2', prompt: 'hello', keep_alive: 0 });
    expect(r.done_reason).toBe('stop');
    expect(await psModels()).toEqual([]);
  });

  it('keeps a model loaded while it generates, and sorts /api/ps by time remaining', async () => {
    emu.setTokenDelay(30);
    const it = await client.generate({ model: 'qwen3:0.6b', prompt: 'long', stream: true, keep_alive: '1s' });
    const iter = it[Symbol.asyncIterator]();
    await iter.next();
    await client.generate({ model: 'llama3.2', prompt: '', keep_alive: '1h' });
    expect((await psModels()).map((m) => m.name)).toEqual(['llama3.2:latest', 'qwen3:0.6b']);
    it.abort();
    await iter.next().catch(() => undefined);
  });
});

describe('keep_alive formats', () => {
  it.each([
    [300, 300_000],
    [1.5, 1_500],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2500ms', 2_500],
  ])('%j', async (keepAlive, ms) => {
    const sentAt = Date.now();
    await client.generate({ model: 'llama3.2', prompt: '', keep_alive: keepAlive });
    const left = await expiresIn('llama3.2:latest');
    expect(left).toBeLessThanOrEqual(ms);
    // The expiry counts from the end of the request, so no more than the time since it was sent has gone.
    expect(left).toBeGreaterThanOrEqual(ms - (Date.now() - sentAt) - 1);
  });

  it('negative means forever (~292 years ahead)', async () => {
    await client.generate({ model: 'llama3.2', prompt: '', keep_alive: -1 });
    expect((await expiresIn('llama3.2:latest')) / YEAR_MS).toBeCloseTo(292.3, 0);
    await client.chat({ model: 'llava:7b', messages: [], keep_alive: '-1m' });
    expect((await expiresIn('llava:7b')) / YEAR_MS).toBeGreaterThan(292);
    expect(emu.running()[0].expiresAt.getUTCFullYear()).toBeGreaterThan(new Date().getUTCFullYear() + 291);
  });

  it('rejects a bare numeric string and other types with 400', async () => {
    const err = await failure(client.generate({ model: 'llama3.2', prompt: '', keep_alive: '300' as unknown as number }));
    expect(err.name).toBe('ResponseError');
    expect(err.status_code).toBe(400);
    expect(err.message).toBe('time: missing unit in duration "300"');
    const bool = await post(emu.url, '/api/chat', { model: 'llama3.2', messages: [], keep_alive: true });
    expect(bool.objects[0]).toEqual({ error: "Unsupported type: 'bool'" });
    expect(await psModels()).toEqual([]);
  });

  it('really expires an idle model', async () => {
    const sentAt = Date.now();
    await client.generate({ model: 'llama3.2', prompt: 'hi', keep_alive: '3s' });
    expect((await psModels()).map((m) => m.name)).toEqual(['llama3.2:latest']);
    await until(async () => (await psModels()).length === 0, 15_000, 'the model to expire');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(3000); // not before its time
    expect(emu.running()).toEqual([]);
  });

  it('uses defaultKeepAliveSeconds when keep_alive is omitted, and per-request values override it', async () => {
    const short = await startEmulator({ defaultKeepAliveSeconds: 3 });
    try {
      const c = new Ollama({ host: short.url });
      const sentAt = Date.now();
      await c.generate({ model: 'llama3.2', prompt: '' });
      await c.generate({ model: 'llava:7b', prompt: '', keep_alive: '1m' });
      expect(short.running().map((m) => m.name)).toEqual(['llava:7b', 'llama3.2:latest']);
      await until(() => short.running().length === 1, 15_000, 'the default keep_alive to run out');
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(3000);
      expect(short.running().map((m) => m.name)).toEqual(['llava:7b']);
    } finally {
      await short.close();
    }
  });
});

describe('num_ctx', () => {
  it('sets the running context_length, capped at the model training context', async () => {
    await client.generate({ model: 'llama3.2', prompt: '', options: { num_ctx: 8192 } });
    await client.generate({ model: 'qwen3:0.6b', prompt: '', options: { num_ctx: 1_000_000 } });
    const byName = Object.fromEntries((await psModels()).map((m) => [m.name, m.context_length]));
    expect(byName).toEqual({ 'llama3.2:latest': 8192, 'qwen3:0.6b': 40_960 });
    expect(emu.running().find((m) => m.name === 'llama3.2:latest')?.contextLength).toBe(8192);
  });

  it('reloads (cold load_duration) when the effective num_ctx changes', async () => {
    const cold = await client.generate({ model: 'llama3.2', prompt: 'a' });
    const warm = await client.generate({ model: 'llama3.2', prompt: 'a' });
    const reload = await client.generate({ model: 'llama3.2', prompt: 'a', options: { num_ctx: 2048 } });
    expect(warm.load_duration).toBeLessThan(cold.load_duration);
    expect(reload.load_duration).toBe(cold.load_duration);
    // back to the default context: another reload, as sched.needsReload compares the effective options
    const back = await client.generate({ model: 'llama3.2', prompt: 'a' });
    expect(back.load_duration).toBe(cold.load_duration);
    expect(emu.running()[0].contextLength).toBe(4096);
  });
});

describe('catalogue routes', () => {
  it('GET|HEAD / and /api/version', async () => {
    const root = await raw(emu.url, 'GET', '/');
    expect(root).toMatchObject({ status: 200, text: 'Ollama is running', contentType: 'text/plain; charset=utf-8' });
    const head = await raw(emu.url, 'HEAD', '/');
    expect(head).toMatchObject({ status: 200, text: '' });
    expect(await client.version()).toEqual({ version: '0.12.6' });
    const custom = await startEmulator({ version: '0.13.0' });
    expect((await raw(custom.url, 'GET', '/api/version')).objects[0]).toEqual({ version: '0.13.0' });
    await custom.close();
  });

  it('unknown paths 404 and wrong methods 405, as gin answers them', async () => {
    expect(await raw(emu.url, 'GET', '/api/nope')).toMatchObject({ status: 404, text: '404 page not found', contentType: 'text/plain' });
    expect(await raw(emu.url, 'GET', '/api/generate')).toMatchObject({ status: 405, text: '405 method not allowed' });
    expect(await raw(emu.url, 'POST', '/api/tags', {})).toMatchObject({ status: 405 });
  });

  it('/api/tags lists installed models in the contract shape', async () => {
    const { models } = await client.list();
    expect(models.map((m) => m.name)).toEqual(['llama3.2:latest', 'qwen3:0.6b', 'llava:7b', 'gpt-oss:20b', 'nomic-embed-text:latest', 'llama3.2:3b-text-q4_K_M']);
    const [llama] = models as unknown as Array<Record<string, unknown>>;
    expect(Object.keys(llama)).toEqual(['name', 'model', 'modified_at', 'size', 'digest', 'details']);
    expect(llama.details).toEqual({
      parent_model: '',
      format: 'gguf',
      family: 'llama',
      families: ['llama'],
      parameter_size: '3.2B',
      quantization_level: 'Q4_K_M',
    });
    expect(String(models[1].digest)).toMatch(/^[0-9a-f]{64}$/);
    const empty = await startEmulator({ models: [] });
    expect((await raw(empty.url, 'GET', '/api/tags')).text).toBe('{"models":[]}');
    await empty.close();
  });

  it('/api/show returns details, model_info with the context length, capabilities', async () => {
    const s = await client.show({ model: 'llava:7b' });
    expect(s.details).toMatchObject({ family: 'llama', families: ['llama', 'clip'], parameter_size: '7B' });
    const info = s.model_info as unknown as Record<string, unknown>;
    expect(info['general.architecture']).toBe('llama');
    expect(info[`${info['general.architecture']}.context_length`]).toBe(32_768);
    expect(info['general.parameter_count']).toBe(7_000_000_000);
    expect(s.capabilities).toEqual(['completion', 'vision']);
    expect(s.modelfile).toContain('FROM ');
    expect(s.template).toContain('.Messages');
    expect(s.parameters).toContain('stop');
    expect(s.license.length).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(String(s.modified_at)))).toBe(false);
    // legacy `name` key, case-insensitive lookup
    const legacy = await post(emu.url, '/api/show', { name: 'Qwen3:0.6B' });
    expect(legacy.status).toBe(200);
    expect(legacy.objects[0].capabilities).toEqual(['completion', 'tools', 'thinking']);
    // unknown: 404 with the normalized name
    const err = await failure(client.show({ model: 'ghost' }));
    expect([err.status_code, err.message]).toEqual([404, "model 'ghost:latest' not found"]);
    expect(await post(emu.url, '/api/show', {})).toMatchObject({ status: 400, objects: [{ error: 'model is required' }] });
  });
});

describe('pull', () => {
  it('streams progress in Ollama order and installs the model', async () => {
    const seen: Array<Record<string, unknown>> = [];
    for await (const p of await client.pull({ model: 'smollm2:135m', stream: true })) seen.push(p as unknown as Record<string, unknown>);
    const statuses = seen.map((p) => p.status as string);
    expect(statuses[0]).toBe('pulling manifest');
    expect(statuses.slice(-3)).toEqual(['verifying sha256 digest', 'writing manifest', 'success']);
    const layerMsgs = seen.filter((p) => String(p.status).startsWith('pulling ') && p.status !== 'pulling manifest');
    expect(layerMsgs.length).toBeGreaterThan(5);
    for (const p of layerMsgs) {
      const digest = String(p.digest);
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(p.status).toBe(`pulling ${digest.slice(7, 19)}`);
      expect(typeof p.total).toBe('number');
    }
    // first message of each layer leaves `completed` out (omitempty), then it rises to total
    expect(layerMsgs[0]).not.toHaveProperty('completed');
    const first = layerMsgs.filter((p) => p.digest === layerMsgs[0].digest).map((p) => p.completed as number | undefined);
    expect(first.slice(1)).toEqual([...first.slice(1)].sort((a, b) => a! - b!));
    expect(first[first.length - 1]).toBe(layerMsgs[0].total);
    const sizes = new Map(layerMsgs.map((p) => [p.digest, p.total as number]));
    expect([...sizes.values()].reduce((a, b) => a + b, 0)).toBe(270_898_672);
    expect((await client.list()).models.map((m) => m.name)).toContain('smollm2:135m');
    expect((await client.generate({ model: 'smollm2:135m', prompt: 'hi' })).done).toBe(true);
  });

  it('stays silent while it verifies the download (pullVerifyMs), then finishes', async () => {
    emu.configure({ pullVerifyMs: 400 });
    const at: Record<string, number> = {};
    for await (const p of await client.pull({ model: 'smollm2:135m', stream: true })) at[p.status] ??= Date.now();
    expect(at['writing manifest'] - at['verifying sha256 digest']).toBeGreaterThanOrEqual(390);
    expect(at.success).toBeGreaterThanOrEqual(at['writing manifest']);
  });

  it('stream:false answers only {"status":"success"}; an installed model pulls quickly', async () => {
    const r = await post(emu.url, '/api/pull', { model: 'phi3:mini', stream: false });
    expect(r).toMatchObject({ status: 200, contentType: 'application/json; charset=utf-8', objects: [{ status: 'success' }] });
    const again = await post(emu.url, '/api/pull', { name: 'llama3.2' });
    const layers = again.objects.filter((o) => o.digest);
    expect(layers.length).toBe(5);
    for (const l of layers) expect(l.completed).toBe(l.total); // blobs already on disk
    expect(again.objects[again.objects.length - 1]).toEqual({ status: 'success' });
  });

  it('unknown model: 200 + error line when streaming (client throws), 500 with stream:false', async () => {
    const r = await post(emu.url, '/api/pull', { name: 'nope' });
    expect(r.status).toBe(200);
    expect(r.objects).toEqual([{ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' }]);
    const it = await client.pull({ model: 'nope', stream: true });
    const statuses: string[] = [];
    const err = await failure(async () => {
      for await (const p of it) statuses.push(p.status);
    });
    expect(statuses).toEqual(['pulling manifest']);
    expect(err.message).toBe('pull model manifest: file does not exist');
    expect(err.status_code).toBeUndefined();
    const flat = await failure(client.pull({ model: 'nope' }));
    expect([flat.name, flat.status_code, flat.message]).toEqual(['ResponseError', 500, 'pull model manifest: file does not exist']);
    expect(await post(emu.url, '/api/pull', { name: 'bad name!' })).toMatchObject({ status: 400, objects: [{ error: 'invalid model name' }] });
  });
});

describe('delete', () => {
  it('200 with an empty body, then 404; deleting unloads the model', async () => {
    await client.generate({ model: 'llama3.2', prompt: '' });
    const r = await raw(emu.url, 'DELETE', '/api/delete', { name: 'llama3.2' });
    expect(r).toMatchObject({ status: 200, text: '' });
    expect(emu.running()).toEqual([]);
    expect((await client.list()).models.map((m) => m.name)).toEqual(defaultModels().slice(1).map((m) => m.name));
    const missing = await raw(emu.url, 'DELETE', '/api/delete', { model: 'llama3.2' });
    expect(missing).toMatchObject({ status: 404, objects: [{ error: "model 'llama3.2' not found" }] });
    expect(await client.delete({ model: 'llava:7b' })).toEqual({ status: 'success' });
    const err = await failure(client.delete({ model: 'llava:7b' }));
    expect([err.status_code, err.message]).toEqual([404, "model 'llava:7b' not found"]);
    const gen = await failure(client.generate({ model: 'llava:7b', prompt: 'x' }));
    expect(gen.status_code).toBe(404);
  });
});
