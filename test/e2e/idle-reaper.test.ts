import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startEmulator } from '../../src/emulator/server.js';
import { type App, buildApp } from '../../src/server.js';
import { createLogger } from '../../src/services/platform/logger.js';
import { type TestGateway, collect, startGateway, wsClient } from '../helpers/gateway.js';
import { gql, residencyRequests, subscribeModelEvents, waitFor } from '../helpers/models.js';
import { until } from '../helpers/wait.js';

const FAST_REAPER = { IDLE_CHECK_INTERVAL_MS: '100', NVIDIA_SMI_PATH: 'off' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('idle reaper', () => {
  let gw: TestGateway;
  const running = () => gw.emulator.running().map((r) => r.name);
  beforeAll(async () => {
    gw = await startGateway({ env: FAST_REAPER });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('unloads a model idle past its own threshold, seen in /api/ps and in modelEvents (reason IDLE)', async () => {
    await gql(gw, 'mutation { setInactivityThreshold(seconds: 300) { seconds settings { inactivityThresholdSeconds } } }');
    const { loadModel } = await gql(gw, 'mutation { loadModel(name: "qwen3:0.6b") { keepAliveSeconds } }');
    expect(loadModel.keepAliveSeconds).toBe(300);
    const load = residencyRequests(gw, 'qwen3:0.6b').at(-1)!;
    expect(load.body.keep_alive).toBe(300);
    // Ollama itself would keep the model for 300 s: only the gateway can unload it sooner.
    expect(gw.emulator.running().find((r) => r.name === 'qwen3:0.6b')!.expiresAt.getTime()).toBeGreaterThan(Date.now() + 290_000);

    const client = wsClient(gw, gw.userSecret);
    const watcher = await subscribeModelEvents(client);
    const { setInactivityThreshold } = await gql(
      gw,
      'mutation { setInactivityThreshold(seconds: 1, model: "qwen3:0.6b") { seconds model { name inactivityThresholdSeconds effectiveInactivityThresholdSeconds } } }',
    );
    expect(setInactivityThreshold).toEqual({
      seconds: 1,
      model: { name: 'qwen3:0.6b', inactivityThresholdSeconds: 1, effectiveInactivityThresholdSeconds: 1 },
    });

    await waitFor(() => !running().includes('qwen3:0.6b'), 5000, 'qwen3 to be unloaded');
    const unload = residencyRequests(gw, 'qwen3:0.6b').at(-1)!;
    expect(unload.body.keep_alive).toBe(0);
    expect(unload.receivedAt - load.receivedAt).toBeGreaterThanOrEqual(950);
    await waitFor(() => watcher.events.some((e) => e.type === 'UNLOADED'), 2000, 'UNLOADED event');
    expect(watcher.events).toMatchObject([{ type: 'UNLOADED', reason: 'IDLE', model: 'qwen3:0.6b' }]);
    watcher.stop();
    await client.dispose();
  });

  it('never unloads a model while a stream on it runs, and sends the threshold as keep_alive', async () => {
    await gql(gw, 'mutation { setInactivityThreshold(seconds: 1, model: "llama3.2") { seconds } }');
    gw.emulator.setTokenDelay(80);
    const client = wsClient(gw, gw.userSecret);
    const startedAt = Date.now();
    const results = await collect<{ generate: { type: string; delta: string | null } }>(
      client,
      'subscription { generate(input: { model: "llama3.2", prompt: "Tell me a slow story." }) { type delta } }',
    ).done;
    const endedAt = Date.now();
    gw.emulator.setTokenDelay(0);
    await client.dispose();

    expect(results.every((r) => !r.errors)).toBe(true);
    expect(results.at(-1)!.data!.generate.type).toBe('DONE');
    expect(results.filter((r) => r.data!.generate.type === 'TOKEN').length).toBeGreaterThan(15);
    expect(endedAt - startedAt).toBeGreaterThan(1500); // outlived the 1 s threshold
    const generate = gw.emulator.requests.filter((r) => r.path === '/api/generate' && (r.body as { prompt?: string }).prompt).at(-1)!;
    expect(generate.body).toMatchObject({ model: 'llama3.2', keep_alive: 1 });
    expect(generate.outcome).toBe('completed');
    const unloadsDuringStream = residencyRequests(gw, 'llama3.2:latest').filter((r) => r.body.keep_alive === 0 && r.receivedAt < endedAt - 50);
    expect(unloadsDuringStream).toEqual([]);
    // Once idle, it goes.
    await waitFor(() => !running().includes('llama3.2:latest'), 5000, 'llama3.2 to be unloaded after the stream');
  });
});

describe('idle reaper across a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-reaper-'));
  const apps: App[] = [];
  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  const boot = async (env: Record<string, string>) => {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DB_PATH: join(dir, 'gateway.sqlite'),
      OLLAMA_HOST: emulator.url,
      LOG_LEVEL: 'silent',
      SHUTDOWN_GRACE_MS: '0',
      ADMIN_API_KEY: 'llmgw_restart-test-admin-key-0123456789',
      ...FAST_REAPER,
      ...env,
    });
    const app = await buildApp({ config, log: createLogger('silent') });
    apps.push(app);
    return { app, url: `${await app.start()}/graphql` };
  };
  const call = async (url: string, query: string) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'llmgw_restart-test-admin-key-0123456789' },
      body: JSON.stringify({ query }),
    });
    const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    return body.data!;
  };

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    for (const app of apps) await app.stop();
    await emulator?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('unloads at start a model whose last activity plus threshold passed while the gateway was down', async () => {
    const first = await boot({ INACTIVITY_THRESHOLD_SECONDS: '600' });
    await call(first.url, 'mutation { loadModel(name: "llama3.2") { keepAliveSeconds } }');
    // qwen3 gets a long threshold of its own (stored in the catalog): it must survive the restart.
    await call(first.url, 'mutation { setInactivityThreshold(model: "qwen3:0.6b", seconds: 3600) { seconds } }');
    await call(first.url, 'mutation { loadModel(name: "qwen3:0.6b") { keepAliveSeconds } }');
    const loadedAt = Date.now();
    await first.app.stop();
    expect(emulator.running().map((r) => r.name).sort()).toEqual(['llama3.2:latest', 'qwen3:0.6b']);

    // The operator lowers the global threshold to 2 s, and the gateway stays down longer than that.
    await sleep(Math.max(0, loadedAt + 2200 - Date.now()));
    const restartedAt = Date.now();
    await boot({ INACTIVITY_THRESHOLD_SECONDS: '2' });
    await waitFor(() => !emulator.running().some((r) => r.name === 'llama3.2:latest'), 3000, 'llama3.2 to be unloaded');
    const unload = emulator.requests.filter((r) => r.path === '/api/generate' && (r.body as { keep_alive?: number }).keep_alive === 0).at(-1)!;
    expect(unload.body).toMatchObject({ model: 'llama3.2:latest', prompt: '' });
    // From the stored last activity, at the first check; a fresh idle clock would wait another 2 s.
    expect(unload.receivedAt - restartedAt).toBeLessThan(1500);
    expect(emulator.running().map((r) => r.name)).toEqual(['qwen3:0.6b']);
  });
});

describe('idle reaper with two gateway instances on one database and one Ollama host', () => {
  const ADMIN = 'llmgw_two-reapers-admin-key-0000000000';
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    a = await startGateway({ env: { ...FAST_REAPER, ADMIN_API_KEY: ADMIN } });
    b = await startGateway({ env: { ...FAST_REAPER, ADMIN_API_KEY: ADMIN, DB_PATH: join(a.dir, 'gateway.sqlite'), OLLAMA_HOST: a.emulator.url } });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('leaves a model alone while a stream on it runs through the other instance (the lease holder reads the usage log)', async () => {
    await gql(a, 'mutation { setInactivityThreshold(seconds: 1, model: "llama3.2") { seconds } }');
    // One instance takes the host's reaper lease once there is a threshold; the stream runs on the other.
    const lease = await until(async () => (await a.orm.query(`SELECT owner FROM leases WHERE name LIKE 'idle-reaper:%'`))[0] as { owner: string } | undefined, 10_000, 'a reaper lease');
    const [holder, server] = lease.owner === a.app.services.instance.id ? [a, b] : [b, a];
    expect(holder.app.services.instance.id).not.toBe(server.app.services.instance.id);

    a.emulator.setTokenDelay(150);
    const client = wsClient(server, server.userSecret);
    const startedAt = Date.now();
    const results = await collect<{ generate: { type: string } }>(client, 'subscription { generate(input: { model: "llama3.2", prompt: "a long one", options: { maxTokens: 50 } }) { type } }').done;
    const endedAt = Date.now();
    await client.dispose();
    a.emulator.setTokenDelay(0);
    expect(endedAt - startedAt).toBeGreaterThan(2500); // well past the 1 s threshold
    expect(results.at(-1)?.data?.generate.type).toBe('DONE');
    const unloadsDuringStream = residencyRequests(a).filter(
      (r) => /^llama3\.2(:latest)?$/.test(r.body.model) && r.body.keep_alive === 0 && r.receivedAt >= startedAt && r.receivedAt < endedAt - 100,
    );
    expect(unloadsDuringStream).toEqual([]);
  });
});
