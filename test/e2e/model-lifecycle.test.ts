import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestGateway, startGateway, wsClient } from '../helpers/gateway.js';
import { type ModelEventPayload, gql, gqlError, residencyRequests, subscribeModelEvents, waitFor } from '../helpers/models.js';

const VRAM = 3_000_000_000;
const QWEN = 522_653_767;
const LLAMA = 2_019_393_189;
const LLAVA = 4_733_363_377;

const LOAD = `mutation ($name: String!, $numCtx: Int, $force: Boolean) {
  loadModel(name: $name, numCtx: $numCtx, force: $force) {
    neededBytes freeBytes keepAliveSeconds warnings
    model { name loaded runtime { vramBytes contextLength busy lastActiveAt expiresAt } }
  }
}`;

let gw: TestGateway;
let watcher: Awaited<ReturnType<typeof subscribeModelEvents>>;
const client = () => wsClient(gw, gw.userSecret);
let ws: ReturnType<typeof client>;
const running = () => gw.emulator.running().map((r) => r.name).sort();
const eventsFor = (model: string): Array<Pick<ModelEventPayload, 'type' | 'reason'>> =>
  watcher.events.filter((e) => e.model === model).map(({ type, reason }) => ({ type, reason }));

beforeAll(async () => {
  gw = await startGateway({ env: { GPU_VRAM_BYTES: String(VRAM), NVIDIA_SMI_PATH: 'off' } });
  ws = client();
  // A user key may watch events.
  watcher = await subscribeModelEvents(ws);
});
afterAll(async () => {
  watcher?.stop();
  await ws?.dispose();
  await gw?.stop();
});

describe('loadModel', () => {
  it('loads a model that fits, through an empty-prompt generate, and reports it loaded', async () => {
    const { loadModel } = await gql(gw, LOAD, { name: 'Qwen3:0.6B' });
    expect(loadModel).toMatchObject({ neededBytes: QWEN, freeBytes: VRAM, keepAliveSeconds: null, warnings: [] });
    expect(loadModel.model).toMatchObject({ name: 'qwen3:0.6b', loaded: true, runtime: { vramBytes: QWEN, busy: false } });
    expect(loadModel.model.runtime.lastActiveAt).toBeTruthy();
    expect(running()).toEqual(['qwen3:0.6b']);
    // keep_alive is never left out: with no threshold, OLLAMA_KEEP_ALIVE (5m).
    expect(residencyRequests(gw, 'qwen3:0.6b').at(-1)!.body).toEqual({ model: 'qwen3:0.6b', prompt: '', stream: false, keep_alive: '5m' });
    await waitFor(() => eventsFor('qwen3:0.6b').length === 1, 2000, 'LOADED event');
    expect(eventsFor('qwen3:0.6b')).toEqual([{ type: 'LOADED', reason: 'REQUEST' }]);
  });

  it('refuses a model larger than the free VRAM with INSUFFICIENT_VRAM, needed and free bytes', async () => {
    const before = residencyRequests(gw, 'llava:7b').length;
    const { error } = await gqlError(gw, LOAD, { name: 'llava:7b' });
    expect(error.extensions).toMatchObject({ code: 'INSUFFICIENT_VRAM', neededBytes: LLAVA, freeBytes: VRAM - QWEN, model: 'llava:7b' });
    expect(error.message).toMatch(/force/);
    expect(residencyRequests(gw, 'llava:7b').length).toBe(before);
    expect(running()).toEqual(['qwen3:0.6b']);
  });

  it('loads it anyway with force, with a warning', async () => {
    const { loadModel } = await gql(gw, LOAD, { name: 'llava:7b', force: true });
    expect(loadModel.warnings).toHaveLength(1);
    expect(loadModel.warnings[0]).toMatch(/Forced/);
    expect(running()).toEqual(['llava:7b', 'qwen3:0.6b']);
    const { gpu } = await gql(gw, '{ gpu { source totalBytes usedBytes freeBytes gpus { index } warning } }');
    expect(gpu).toEqual({ source: 'CONFIGURED', totalBytes: VRAM, usedBytes: QWEN + LLAVA, freeBytes: 0, gpus: [], warning: null });
  });

  it('passes numCtx to Ollama and refuses an out-of-range one', async () => {
    const { loadModel } = await gql(gw, LOAD, { name: 'qwen3:0.6b', numCtx: 8192 });
    expect(loadModel.model.runtime.contextLength).toBe(8192);
    // Reloading a model counts its own memory as free.
    expect(loadModel.freeBytes).toBe(QWEN);
    expect(residencyRequests(gw, 'qwen3:0.6b').at(-1)!.body.options).toEqual({ num_ctx: 8192 });
    const { error } = await gqlError(gw, LOAD, { name: 'qwen3:0.6b', numCtx: 10 });
    expect(error.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/numCtx/);
  });

  it('answers MODEL_NOT_FOUND for a model the host does not have and BAD_USER_INPUT for an invalid name', async () => {
    const missing = await gqlError(gw, LOAD, { name: 'no-such-model' });
    expect(missing.error.extensions).toMatchObject({ code: 'MODEL_NOT_FOUND', model: 'no-such-model' });
    const invalid = await gqlError(gw, LOAD, { name: 'bad name!' });
    expect(invalid.error.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await gql(gw, '{ health { status } }')).health.status).toBe('ok');
  });

  it('lists loaded models in runningModels', async () => {
    const { runningModels } = await gql(gw, '{ runningModels { name runtime { vramBytes expiresAt } } }', undefined, gw.userSecret);
    expect(runningModels.map((m: { name: string }) => m.name).sort()).toEqual(['llava:7b', 'qwen3:0.6b']);
    for (const m of runningModels) expect(new Date(m.runtime.expiresAt).getTime()).toBeGreaterThan(Date.now());
  });
});

describe('unloadModel', () => {
  it('unloads with keep_alive 0 and says whether it was loaded', async () => {
    const { unloadModel } = await gql(gw, 'mutation { unloadModel(name: "llava:7b") { model wasLoaded } }');
    expect(unloadModel).toEqual({ model: 'llava:7b', wasLoaded: true });
    expect(running()).toEqual(['qwen3:0.6b']);
    expect(residencyRequests(gw, 'llava:7b').at(-1)!.body).toMatchObject({ prompt: '', keep_alive: 0 });
    const again = await gql(gw, 'mutation { unloadModel(name: "llava:7b") { wasLoaded } }');
    expect(again.unloadModel.wasLoaded).toBe(false);
    await waitFor(() => eventsFor('llava:7b').length === 2, 2000, 'llava events');
    expect(eventsFor('llava:7b')).toEqual([
      { type: 'LOADED', reason: 'REQUEST' },
      { type: 'UNLOADED', reason: 'REQUEST' },
    ]);
  });

  it('answers MODEL_NOT_FOUND for an unknown model', async () => {
    const { error } = await gqlError(gw, 'mutation { unloadModel(name: "ghost:1b") { wasLoaded } }');
    expect(error.extensions?.code).toBe('MODEL_NOT_FOUND');
  });
});

describe('changeModel', () => {
  const CHANGE = `mutation ($to: String!, $force: Boolean) {
    changeModel(to: $to, force: $force) { sizeGb previous previousUnloaded warnings neededBytes freeBytes model { name isDefault loaded sizeBytes } }
  }`;

  it('loads the new default, makes it the default and reports its size in GB', async () => {
    const { changeModel } = await gql(gw, CHANGE, { to: 'llama3.2' });
    expect(changeModel).toEqual({
      sizeGb: 2.02,
      previous: null,
      previousUnloaded: false,
      warnings: [],
      neededBytes: LLAMA,
      freeBytes: VRAM - QWEN,
      model: { name: 'llama3.2:latest', isDefault: true, loaded: true, sizeBytes: LLAMA },
    });
    expect(running()).toEqual(['llama3.2:latest', 'qwen3:0.6b']);
    expect((await gql(gw, '{ settings { defaultModel } }')).settings.defaultModel).toBe('llama3.2:latest');
  });

  it('checks VRAM first, counting what the current default frees, and changes nothing when it does not fit', async () => {
    const { error } = await gqlError(gw, CHANGE, { to: 'llava:7b' });
    expect(error.extensions).toMatchObject({ code: 'INSUFFICIENT_VRAM', neededBytes: LLAVA, freeBytes: VRAM - QWEN });
    expect(running()).toEqual(['llama3.2:latest', 'qwen3:0.6b']);
    expect((await gql(gw, '{ settings { defaultModel } }')).settings.defaultModel).toBe('llama3.2:latest');
    const missing = await gqlError(gw, CHANGE, { to: 'phi3:mini' });
    expect(missing.error.extensions?.code).toBe('MODEL_NOT_FOUND');
  });

  it('unloads the current default (reason CHANGED) and loads the new one', async () => {
    const { changeModel } = await gql(gw, CHANGE, { to: 'QWEN3:0.6b' });
    expect(changeModel).toMatchObject({ previous: 'llama3.2:latest', previousUnloaded: true, sizeGb: 0.52, model: { name: 'qwen3:0.6b', isDefault: true } });
    expect(running()).toEqual(['qwen3:0.6b']);
    await waitFor(() => eventsFor('llama3.2:latest').length === 2, 2000, 'llama events');
    expect(eventsFor('llama3.2:latest')).toEqual([
      { type: 'LOADED', reason: 'CHANGED' },
      { type: 'UNLOADED', reason: 'CHANGED' },
    ]);
    const { models } = await gql(gw, '{ models { name isDefault } }');
    expect(models.filter((m: { isDefault: boolean }) => m.isDefault).map((m: { name: string }) => m.name)).toEqual(['qwen3:0.6b']);
  });
});

describe('deleteModel', () => {
  it('refuses to delete a loaded model with a clear error, and leaves it installed and loaded', async () => {
    const { error } = await gqlError(gw, 'mutation { deleteModel(name: "qwen3:0.6b") { model wasLoaded } }');
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'MODEL_LOADED', model: 'qwen3:0.6b' });
    expect(error.message).toMatch(/loaded.*force: true/);
    expect(running()).toEqual(['qwen3:0.6b']);
    expect((await gql(gw, '{ model(name: "qwen3:0.6b") { installed } }')).model.installed).toBe(true);
  });

  it('with force, unloads then deletes it', async () => {
    const { deleteModel } = await gql(gw, 'mutation { deleteModel(name: "qwen3:0.6b", force: true) { model wasLoaded } }');
    expect(deleteModel).toEqual({ model: 'qwen3:0.6b', wasLoaded: true });
    expect(running()).toEqual([]);
    expect(gw.emulator.requests.filter((r) => r.path === '/api/delete').at(-1)!.body).toMatchObject({ name: 'qwen3:0.6b' });
    // Its catalog entry (it is the default model) stays; the host no longer has it.
    expect((await gql(gw, '{ model(name: "qwen3:0.6b") { installed inCatalog isDefault } }')).model).toEqual({ installed: false, inCatalog: true, isDefault: true });
    const { error } = await gqlError(gw, LOAD, { name: 'qwen3:0.6b' });
    expect(error.extensions?.code).toBe('MODEL_NOT_FOUND');
    await waitFor(() => eventsFor('qwen3:0.6b').some((e) => e.type === 'DELETED'), 2000, 'DELETED event');
    expect(eventsFor('qwen3:0.6b').slice(-2)).toEqual([
      { type: 'UNLOADED', reason: 'REQUEST' },
      { type: 'DELETED', reason: 'REQUEST' },
    ]);
  });

  it('deletes an unloaded model without force, and MODEL_NOT_FOUND once it is gone', async () => {
    const { deleteModel } = await gql(gw, 'mutation { deleteModel(name: "llava:7b") { wasLoaded } }');
    expect(deleteModel.wasLoaded).toBe(false);
    const { error } = await gqlError(gw, 'mutation { deleteModel(name: "llava:7b") { wasLoaded } }');
    expect(error.extensions?.code).toBe('MODEL_NOT_FOUND');
  });
});

it('keeps serving after all of the above', async () => {
  expect((await gql(gw, '{ health { status } }')).health.status).toBe('ok');
  expect(watcher.errors).toEqual([]);
});
