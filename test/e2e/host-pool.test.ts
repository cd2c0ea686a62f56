import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { defaultModels, defaultRegistry } from '../../src/emulator/models.js';
import { type Emulator, startEmulator } from '../../src/emulator/server.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { gql, gqlError } from '../helpers/models.js';
import { until } from '../helpers/wait.js';

const GB = 1_000_000_000;
const phi3 = defaultRegistry().find((m) => m.name === 'phi3:mini')!;

/** Prompts the emulator received on /api/generate (not loads or unloads, which have an empty prompt). */
const prompts = (e: Emulator) =>
  e.requests.filter((r) => r.path === '/api/generate' && (r.body as { prompt?: string }).prompt).map((r) => (r.body as { prompt: string }).prompt);

/** One gateway in front of two Ollama hosts: its own emulator (host 1) and a second one that also has phi3:mini. */
describe('a pool of two Ollama hosts', () => {
  let gw: TestGateway;
  let second: Emulator;
  let one: string;
  let two: string;
  beforeAll(async () => {
    second = await startEmulator({ tokenDelayMs: 0, models: [...defaultModels(), phi3], numParallel: 1024 });
    gw = await startGateway({
      moreOllamaHosts: [second.url],
      emulator: { numParallel: 1024 },
      env: { GPU_VRAM_BYTES: `${8 * GB},${24 * GB}`, NVIDIA_SMI_PATH: 'off', OLLAMA_HEALTH_CHECK_INTERVAL_MS: '200', OLLAMA_NUM_PARALLEL: '1024' },
    });
    one = gw.emulator.url;
    two = second.url;
  });
  afterAll(async () => {
    await gw?.stop();
    await second?.close();
  });

  const generate = (model: string, prompt: string) =>
    post<{ generate: { text: string } }>(gw, 'mutation($m: String!, $p: String!) { generate(input: { model: $m, prompt: $p }) { text } }', { m: model, p: prompt }, gw.userSecret);

  it('lists both hosts with their health, loaded models and GPU memory (one GPU_VRAM_BYTES value per host)', async () => {
    const data = await gql(gw, '{ ollamaHosts { url healthy error activeRequests loadedModels gpu { host source totalBytes } } }');
    expect(data.ollamaHosts).toEqual([
      { url: one, healthy: true, error: null, activeRequests: 0, loadedModels: [], gpu: { host: one, source: 'CONFIGURED', totalBytes: 8 * GB } },
      { url: two, healthy: true, error: null, activeRequests: 0, loadedModels: [], gpu: { host: two, source: 'CONFIGURED', totalBytes: 24 * GB } },
    ]);
    const gpu = await gql(gw, 'query($h: String) { gpu(host: $h) { host totalBytes } }', { h: two });
    expect(gpu.gpu).toEqual({ host: two, totalBytes: 24 * GB });
    const bad = await gqlError(gw, '{ gpu(host: "http://127.0.0.1:1") { host } }');
    expect(bad.error.extensions?.code).toBe('BAD_USER_INPUT');
    // Host URLs are for admins.
    const denied = await post(gw, '{ ollamaHosts { url } }', undefined, gw.userSecret);
    expect(denied.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('routes a request to the host that has the model loaded, and logs that host', async () => {
    const loaded = await gql(gw, 'mutation($h: String) { loadModel(name: "qwen3:0.6b", host: $h) { host model { name hosts { host loaded } } } }', { h: two });
    expect(loaded.loadModel.host).toBe(two);
    expect(loaded.loadModel.model.hosts).toEqual([
      { host: one, loaded: false },
      { host: two, loaded: true },
    ]);
    expect(gw.emulator.running().map((m) => m.name)).not.toContain('qwen3:0.6b');

    for (let i = 0; i < 4; i++) {
      const r = await generate('qwen3:0.6b', `routed ${i}`);
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
    }
    expect(prompts(second).filter((p) => p.startsWith('routed'))).toHaveLength(4);
    expect(prompts(gw.emulator).filter((p) => p.startsWith('routed'))).toHaveLength(0);
    const rows = await gw.orm.getRepository(Generation).findBy({ model: 'qwen3:0.6b', status: 'COMPLETE' });
    expect(rows.map((r) => r.host)).toEqual([two, two, two, two]);

    const running = await gql(gw, 'query($h: String) { runningModels(host: $h) { name } }', { h: one });
    expect(running.runningModels).toEqual([]);
    const everywhere = await gql(gw, '{ runningModels { name hosts { host loaded vramBytes } } }');
    expect(everywhere.runningModels).toContainEqual({ name: 'qwen3:0.6b', hosts: [{ host: one, loaded: false, vramBytes: null }, { host: two, loaded: true, vramBytes: expect.any(Number) }] });
  });

  it('routes a model only one host has installed to that host', async () => {
    const r = await generate('phi3:mini', 'only on two');
    expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
    expect(prompts(second)).toContain('only on two');
    expect(prompts(gw.emulator)).not.toContain('only on two');
  });

  it('spreads requests for a model loaded nowhere over the hosts that have it', async () => {
    const before = [prompts(gw.emulator).length, prompts(second).length];
    const client = wsClient(gw, gw.userSecret);
    // Concurrent streams: the least busy host takes the next one.
    gw.emulator.setTokenDelay(20);
    second.setTokenDelay(20);
    const runs = Array.from({ length: 6 }, (_, i) => collect(client, 'subscription($p: String!) { generate(input: { model: "llava:7b", prompt: $p }) { type } }', { p: `spread ${i}` }));
    // While they stream, each host shows the requests this gateway has open on it.
    await until(() => runs.every((r) => r.results.some((e) => (e.data as { generate: { type: string } } | undefined)?.generate.type === 'TOKEN')), 10_000, 'tokens on every stream');
    const open = await gql(gw, '{ ollamaHosts { activeRequests } }');
    expect(open.ollamaHosts.map((h: { activeRequests: number }) => h.activeRequests).sort()).toEqual([3, 3]);
    await Promise.all(runs.map((r) => r.done));
    gw.emulator.setTokenDelay(0);
    second.setTokenDelay(0);
    const idle = await gql(gw, '{ ollamaHosts { activeRequests } }');
    expect(idle.ollamaHosts.map((h: { activeRequests: number }) => h.activeRequests)).toEqual([0, 0]);
    await client.dispose();
    const served = [prompts(gw.emulator).length - before[0], prompts(second).length - before[1]];
    expect(served[0] + served[1]).toBe(6);
    expect(served).toEqual([3, 3]); // fewest open requests first, ties taking turns
  });

  it('moves new requests to the other host when one stops, with no error for the client, and takes it back when it returns', async () => {
    // Loaded on host 1, so requests prefer it until it fails.
    await gql(gw, 'mutation($h: String) { loadModel(name: "llama3.2", host: $h) { host } }', { h: one });
    const served = prompts(gw.emulator).length;
    await generate('llama3.2', 'before the stop');
    expect(prompts(gw.emulator)).toHaveLength(served + 1);
    await gw.emulator.stop();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await generate('llama3.2', `failover ${i}`);
        expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
        expect(r.body.data!.generate.text.length).toBeGreaterThan(0);
      }
      expect(prompts(second).filter((p) => p.startsWith('failover'))).toHaveLength(3);
      const hosts = await gql(gw, '{ ollamaHosts { url healthy error } }');
      expect(hosts.ollamaHosts[0]).toMatchObject({ url: one, healthy: false, error: expect.stringMatching(/unreachable|lost/i) });
      expect(hosts.ollamaHosts[1]).toMatchObject({ url: two, healthy: true });
      // Reads still answer, from the host that is up; the host that is down says what it cannot tell.
      const gpus = await gql(gw, '{ ollamaHosts { url gpu { source totalBytes freeBytes warning } } }');
      expect(gpus.ollamaHosts[0].gpu).toMatchObject({ source: 'CONFIGURED', totalBytes: 8 * GB, freeBytes: null, warning: expect.stringMatching(/free VRAM is unknown/) });
      expect(gpus.ollamaHosts[1].gpu).toMatchObject({ source: 'CONFIGURED', totalBytes: 24 * GB, freeBytes: expect.any(Number), warning: null });
      const models = await gql(gw, '{ models { name hosts { host } } }');
      expect(models.models.find((m: { name: string }) => m.name === 'llama3.2:latest').hosts).toEqual([{ host: two }]);
      const health = await gql(gw, '{ health { status upstream } }');
      expect(health.health).toEqual({ status: 'ok', upstream: true });
    } finally {
      await gw.emulator.start();
    }
    await until(async () => (await gql(gw, '{ ollamaHosts { healthy } }')).ollamaHosts.every((h: { healthy: boolean }) => h.healthy), 10_000, 'host 1 to count as healthy again');
  });

  it('without a host: unloads a model everywhere it is loaded, deletes it everywhere it is installed', async () => {
    await gql(gw, 'mutation($h: String) { loadModel(name: "llava:7b", host: $h) { host } }', { h: one });
    await gql(gw, 'mutation($h: String) { loadModel(name: "llava:7b", host: $h) { host } }', { h: two });
    const unloaded = await gql(gw, 'mutation { unloadModel(name: "llava:7b") { model wasLoaded hosts } }');
    expect(unloaded.unloadModel).toEqual({ model: 'llava:7b', wasLoaded: true, hosts: [one, two] });
    expect([...gw.emulator.running(), ...second.running()].map((m) => m.name)).not.toContain('llava:7b');

    // Loaded on one host: without force nothing is deleted anywhere.
    await gql(gw, 'mutation($h: String) { loadModel(name: "llava:7b", host: $h) { host } }', { h: two });
    const refused = await gqlError(gw, 'mutation { deleteModel(name: "llava:7b") { hosts } }');
    expect(refused.error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'MODEL_LOADED', host: two });
    const still = await gql(gw, '{ model(name: "llava:7b") { hosts { host installed } } }');
    expect(still.model.hosts).toEqual([
      { host: one, installed: true },
      { host: two, installed: true },
    ]);
    const onlyOne = await gql(gw, 'mutation($h: String) { deleteModel(name: "llava:7b", host: $h) { hosts wasLoaded } }', { h: one });
    expect(onlyOne.deleteModel).toEqual({ hosts: [one], wasLoaded: false });
    const rest = await gql(gw, 'mutation { deleteModel(name: "llava:7b", force: true) { hosts wasLoaded } }');
    expect(rest.deleteModel).toEqual({ hosts: [two], wasLoaded: true });
    const gone = await gqlError(gw, '{ model(name: "llava:7b") { name } }');
    expect(gone.error.extensions?.code).toBe('MODEL_NOT_FOUND');
  });

  it('pulls onto every healthy host, each progress message naming its host; or onto one host', async () => {
    const client = wsClient(gw, gw.adminSecret);
    const progress = await collect<{ pullModel: { host: string; status: string; done: boolean } }>(client, 'subscription { pullModel(name: "smollm2:135m") { host status done } }').done;
    await client.dispose();
    const last = progress.filter((p) => p.data?.pullModel.done).map((p) => p.data!.pullModel.host);
    expect(last.sort()).toEqual([one, two].sort());
    expect(new Set(progress.map((p) => p.data?.pullModel.host))).toEqual(new Set([one, two]));
    const model = await gql(gw, '{ model(name: "smollm2:135m") { hosts { host installed } } }');
    expect(model.model.hosts).toEqual([
      { host: one, installed: true },
      { host: two, installed: true },
    ]);

    const single = await gql(gw, 'mutation($h: String) { pullModel(name: "phi3:mini", host: $h) { model hosts } }', { h: one });
    expect(single.pullModel).toEqual({ model: 'phi3:mini', hosts: [one] });
  });
});
