// Ollama's own API on the gateway's port, the model side: embeddings, /api/tags, /api/ps, /api/show,
// /api/version and the admin-only routes, driven by the `ollama` npm client (generation is in
// ollama-api.test.ts).
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let user: Ollama;
let admin: Ollama;
/** The emulator asked directly: what Ollama itself answers. */
let direct: Ollama;

beforeAll(async () => {
  gw = await startGateway();
  user = new Ollama({ host: gw.url, headers: { Authorization: `Bearer ${gw.userSecret}` } });
  admin = new Ollama({ host: gw.url, headers: { Authorization: `Bearer ${gw.adminSecret}` } });
  direct = new Ollama({ host: gw.emulator.url });
});
afterAll(async () => {
  await gw?.stop();
});

const rows = () => gw.orm.getRepository(Generation);
const credits = async (secret: string) => (await gw.orm.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(secret) })).credits;
const lastRequest = (path: string) => [...gw.emulator.requests].reverse().find((r) => r.path === path)!;

/** What the client threw: ollama-js's ResponseError is not exported, so it is told apart by name and status_code. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status_code?: number; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as { name: string; status_code?: number; message: string },
  );
  if (!e) throw new Error('expected the call to fail');
  return e;
}

describe('POST /api/embed and /api/embeddings', () => {
  it("answers Ollama's vectors, paid from the key's credits and logged as kind embed", async () => {
    const input = ['The sky is blue.', 'Grass is green.'];
    const expected = await direct.embed({ model: 'nomic-embed-text', input });
    const before = await credits(gw.userSecret);
    const r = await user.embed({ model: 'nomic-embed-text', input });
    expect(r.model).toBe('nomic-embed-text');
    expect(r.embeddings).toEqual(expected.embeddings);
    expect(r.embeddings).toHaveLength(2);
    expect(r.prompt_eval_count).toBe(expected.prompt_eval_count);
    const row = await rows().findOneByOrFail({ id: await lastRowId() });
    expect(row).toMatchObject({ kind: 'embed', status: 'COMPLETE', promptTokens: expected.prompt_eval_count });
    expect(row.creditsCharged).toBeGreaterThan(0);
    expect(await credits(gw.userSecret)).toBe(before - row.creditsCharged);

    const one = await user.embed({ model: 'nomic-embed-text', input: 'The sky is blue.', dimensions: 64 });
    expect(one.embeddings).toHaveLength(1);
    expect(one.embeddings[0]).toHaveLength(64);
    const legacy = await user.embeddings({ model: 'nomic-embed-text', prompt: 'The sky is blue.' });
    expect(legacy.embedding).toHaveLength(768);
    expect((await failure(user.embed({ model: 'llama3.2', input: 'hi' }))).status_code).toBe(400);
    expect((await failure(user.embed({ model: 'no-such-model', input: 'hi' }))).status_code).toBe(404);
  });
});

describe('models: /api/tags, /api/ps, /api/show, /api/version', () => {
  it('lists installed models plus catalog aliases; an alias works for chat and is echoed back', async () => {
    await gw.app.services.models.importCsv('llama3.2,fast,Small and quick\n');
    const listed = (await user.list()).models;
    const installed = (await direct.list()).models;
    expect(listed.map((m) => m.name).sort()).toEqual([...installed.map((m) => m.name), 'fast'].sort());
    const llama = installed.find((m) => m.name === 'llama3.2:latest')!;
    expect(listed.find((m) => m.name === 'llama3.2:latest')).toMatchObject({ model: 'llama3.2:latest', size: llama.size, digest: llama.digest, details: { family: 'llama', parameter_size: '3.2B', quantization_level: 'Q4_K_M' } });
    expect(listed.find((m) => m.name === 'fast')).toMatchObject({ size: llama.size, digest: llama.digest });

    const r = await user.chat({ model: 'fast', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 3 } });
    expect(r.model).toBe('fast');
    expect(r.eval_count).toBe(3);
    expect(lastRequest('/api/chat').body).toMatchObject({ model: 'llama3.2:latest' });
    const shown = await user.show({ model: 'fast' });
    expect(shown.capabilities).toEqual(expect.arrayContaining(['completion', 'tools']));
    expect(shown.details.family).toBe('llama');
    expect((await failure(user.show({ model: 'no-such-model' }))).status_code).toBe(404);
    // The catalog's system prompt is the one that applies, so show reports it.
    await gw.app.services.models.catalog.update('llama3.2', { systemPrompt: 'You are a lighthouse keeper.' });
    expect((await user.show({ model: 'fast' })).system).toBe('You are a lighthouse keeper.');
    await gw.app.services.models.catalog.update('llama3.2', { systemPrompt: null });
  });

  it('/api/ps lists what Ollama has loaded; /api/version is the Ollama host version', async () => {
    await user.generate({ model: 'llama3.2', prompt: 'hi', options: { num_predict: 2 } });
    const ps = (await user.ps()).models;
    const upstream = (await direct.ps()).models;
    expect(ps.map((m) => m.name).sort()).toEqual(upstream.map((m) => m.name).sort());
    expect(ps.find((m) => m.name === 'llama3.2:latest')).toMatchObject({ size: upstream.find((m) => m.name === 'llama3.2:latest')!.size });
    expect(await user.version()).toEqual(await direct.version());
  });
});

describe('admin-only routes', () => {
  it('refuse USER keys with 403 before anything reaches Ollama', async () => {
    const requestsBefore = gw.emulator.requests.length;
    const calls = [
      () => user.pull({ model: 'smollm2:135m' }),
      () => user.delete({ model: 'llama3.2' }),
      () => user.copy({ source: 'llama3.2', destination: 'mine' }),
      () => user.create({ model: 'mine', from: 'llama3.2' }),
      () => user.push({ model: 'llama3.2' }),
    ];
    for (const call of calls) expect(await failure(call())).toMatchObject({ name: 'ResponseError', status_code: 403 });
    expect(gw.emulator.requests.slice(requestsBefore).filter((r) => /pull|delete|copy|create|push/.test(r.path))).toEqual([]);
  });

  it('pull streams progress through the gateway pulls and ends with success; delete removes the model', async () => {
    const statuses: string[] = [];
    for await (const p of await admin.pull({ model: 'smollm2:135m', stream: true })) statuses.push(p.status);
    expect(statuses[0]).toBe('pulling manifest');
    expect(statuses.at(-1)).toBe('success');
    expect(statuses.filter((s) => s === 'success')).toHaveLength(1);
    expect((await direct.list()).models.map((m) => m.name)).toContain('smollm2:135m');
    expect((await admin.list()).models.map((m) => m.name)).toContain('smollm2:135m');

    expect(await admin.delete({ model: 'smollm2:135m' })).toEqual({ status: 'success' });
    expect((await direct.list()).models.map((m) => m.name)).not.toContain('smollm2:135m');
    expect((await failure(admin.delete({ model: 'smollm2:135m' }))).status_code).toBe(404);
    expect((await failure(admin.pull({ model: 'not-in-registry:1b' }))).status_code).toBe(404);
    // stream: false (ollama-js's default) answers only the last line.
    expect(await admin.pull({ model: 'phi3:mini' })).toEqual({ status: 'success' });
    expect((await direct.list()).models.map((m) => m.name)).toContain('phi3:mini');
  });

  it('copy is forwarded to the Ollama host that has the source, under its Ollama name', async () => {
    const requestsBefore = gw.emulator.requests.length;
    // The emulator has no /api/copy (it answers 404), so only the forwarding is checked here.
    await admin.copy({ source: 'fast', destination: 'my-llama' }).catch(() => undefined);
    const forwarded = gw.emulator.requests.slice(requestsBefore).find((r) => r.path === '/api/copy');
    expect(forwarded?.body).toEqual({ source: 'llama3.2:latest', destination: 'my-llama' });
  });
});

/** Id of the newest usage-log row. */
async function lastRowId(): Promise<string> {
  const [row] = await rows().find({ order: { createdAt: 'DESC' }, take: 1 });
  return row.id;
}
