import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Emulator, startEmulator } from '../../src/emulator/server.js';
import { until } from '../helpers/wait.js';

const postgresUrl = process.env.TEST_POSTGRES_URL?.trim();
const redisUrl = process.env.TEST_REDIS_URL?.trim();
const skipReason = !postgresUrl ? 'TEST_POSTGRES_URL unset' : !redisUrl ? 'TEST_REDIS_URL unset' : '';
const ADMIN = `llmgw_scale-out-admin-${randomBytes(8).toString('hex')}`;

interface Instance {
  name: string;
  url: string;
  child: ChildProcess;
  output: () => string;
}

type Body<T> = { data?: T; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };

async function gql<T = Record<string, any>>(gw: Instance, query: string, variables?: Record<string, unknown>, key = ADMIN): Promise<Body<T>> {
  const res = await fetch(`${gw.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as Body<T>;
}

async function ok<T = Record<string, any>>(gw: Instance, query: string, variables?: Record<string, unknown>, key = ADMIN): Promise<T> {
  const body = await gql<T>(gw, query, variables, key);
  expect(body.errors, `${gw.name}: ${JSON.stringify(body.errors)}`).toBeUndefined();
  return body.data!;
}

/** Prompts an emulator was sent (not loads and unloads, which have an empty prompt). */
const prompts = (e: Emulator) =>
  e.requests.filter((r) => r.path === '/api/generate' && (r.body as { prompt?: string }).prompt).map((r) => (r.body as { prompt: string }).prompt);

/**
 * Two gateway processes behind (imagined) load balancing, on one PostgreSQL database and one Redis,
 * in front of two Ollama hosts (emulators): what operators get when they scale out.
 */
describe.skipIf(Boolean(skipReason))(`two gateway processes, PostgreSQL, Redis and two Ollama hosts${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  let e1: Emulator;
  let e2: Emulator;
  let a: Instance;
  let b: Instance;
  const database = `gw_scale_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = () => new pg.Client({ connectionString: postgresUrl });
  const testDatabaseUrl = () => {
    const url = new URL(postgresUrl!);
    url.pathname = `/${database}`;
    return url.toString();
  };
  const testDatabase = () => new pg.Client({ connectionString: testDatabaseUrl() });

  function start(name: string): Promise<Instance> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: redisUrl,
        OLLAMA_HOST: `${e1.url},${e2.url}`,
        OLLAMA_HEALTH_CHECK_INTERVAL_MS: '300',
        INSTANCE_ID: name,
        ADMIN_API_KEY: ADMIN,
        LOG_LEVEL: 'info',
        NVIDIA_SMI_PATH: 'off',
        OLLAMA_NUM_PARALLEL: '1024',
        RATE_LIMIT_REQUESTS_PER_MINUTE: '0',
        RATE_LIMIT_TOKENS_PER_MINUTE: '0',
        MAX_CONCURRENT_STREAMS_PER_KEY: '0',
        MAX_CONCURRENT_STREAMS_PER_IP: '0',
        IDLE_CHECK_INTERVAL_MS: '200',
        INACTIVITY_THRESHOLD_SECONDS: '3600',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway ${name} did not start:\n${out}`)), 30_000);
      child.once('exit', (code) => reject(new Error(`gateway ${name} exited with ${code}:\n${out}`)));
      child.stdout!.on('data', () => {
        const m = /"url":"(http:[^"]+)\/graphql"/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve({ name, url: m[1], child, output: () => out });
        }
      });
    });
  }

  async function stop(gw: Instance | undefined) {
    if (!gw || gw.child.exitCode !== null) return;
    gw.child.kill('SIGTERM');
    await new Promise((r) => gw.child.once('exit', r));
  }

  beforeAll(async () => {
    const client = admin();
    await client.connect();
    await client.query(`CREATE DATABASE ${database}`);
    await client.end();
    [e1, e2] = await Promise.all([startEmulator({ tokenDelayMs: 5, numParallel: 1024 }), startEmulator({ tokenDelayMs: 5, numParallel: 1024 })]);
    // Both hosts hold the model before the gateways start: the pool prefers a host with the model
    // loaded, so otherwise whichever host loaded it first would rightly get every request.
    for (const e of [e1, e2]) {
      const res = await fetch(`${e.url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', keep_alive: '1h' }) });
      expect(res.status).toBe(200);
      await res.text();
    }
    a = await start('gw-a');
    b = await start('gw-b'); // after A: both would otherwise race to run the migrations
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stop(a), stop(b)]);
    await Promise.all([e1?.close(), e2?.close()]);
    const client = admin();
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await client.end();
  });

  const newKey = async (credits: number) =>
    (await ok<{ createApiKey: { secret: string; key: { id: string } } }>(a, 'mutation($c: Int!) { createApiKey(input: { name: "scale", role: USER, credits: $c }) { secret key { id } } }', { c: credits }))
      .createApiKey;

  it('never overspends a key: 200 concurrent requests over both instances against 100 credits', async () => {
    const { secret, key } = await newKey(100);
    const ask = (gw: Instance, i: number) =>
      gql<{ generate: { creditsCharged: number } }>(gw, 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p, options: { maxTokens: 2 } }) { creditsCharged } }', { p: `spend ${i}` }, secret);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => ask(i % 2 ? b : a, i)));
    const served = answers.filter((r) => r.data);
    const codes = answers.map((r) => r.errors?.[0]?.extensions?.code ?? r.errors?.[0]?.message ?? 'ok');
    expect(new Set(codes), JSON.stringify(answers.find((r) => r.errors && r.errors[0]?.extensions?.code !== 'INSUFFICIENT_CREDITS'))).toEqual(new Set(['ok', 'INSUFFICIENT_CREDITS']));
    const refused = answers.filter((r) => r.errors?.[0]?.extensions?.code === 'INSUFFICIENT_CREDITS');
    expect(served.length).toBe(100);
    expect(refused.length).toBe(100);
    expect(served.reduce((n, r) => n + r.data!.generate.creditsCharged, 0)).toBe(100);

    const db = testDatabase();
    await db.connect();
    try {
      const { rows } = await db.query('SELECT credits FROM api_keys WHERE id = $1', [key.id]);
      expect(rows).toEqual([{ credits: 0 }]);
    } finally {
      await db.end();
    }
    const me = await ok<{ me: { credits: number } }>(b, '{ me { credits } }', undefined, secret);
    expect(me.me.credits).toBe(0);
    // Both instances served, on both hosts, and the usage log says which did what.
    const usage = await ok<{ generations: { nodes: Array<{ host: string | null; status: string }> } }>(
      a,
      'query($id: ID) { generations(apiKeyId: $id, first: 200) { nodes { host status } } }',
      { id: key.id },
    );
    const complete = usage.generations.nodes.filter((e) => e.status === 'COMPLETE');
    expect(complete).toHaveLength(100);
    expect(new Set(complete.map((e) => e.host))).toEqual(new Set([e1.url, e2.url]));
  }, 60_000);

  it('ends a stream on instance B within a second when its key is revoked on instance A', async () => {
    const { secret, key } = await newKey(50);
    // TypeORM loads on A's first request that needs it (revokeApiKey would be the first): loaded
    // before, so that the bound below measures how fast the revocation reaches B.
    await ok(a, '{ apiKeys(first: 1) { totalCount } }');
    const client = createClient({ url: `${b.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { 'x-api-key': secret } });
    client.on('error', () => {});
    const events: Array<{ type?: string; code?: unknown }> = [];
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    client.subscribe<{ generate: { type: string } }>(
      { query: 'subscription { generate(input: { model: "llama3.2", prompt: "a long answer", options: { maxTokens: 5000 } }) { type } }' },
      {
        next: (r) => events.push(r.data ? { type: r.data.generate.type } : { code: r.errors?.[0]?.extensions?.code }),
        error: (e) => {
          events.push({ code: (e as { message?: string }).message ?? 'closed' });
          ended();
        },
        complete: () => ended(),
      },
    );
    await until(() => events.some((e) => e.type === 'TOKEN'), 5000, 'tokens on B');
    const revokedAt = Date.now();
    await ok(a, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: key.id });
    await done;
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    expect(events.some((e) => e.type === 'DONE')).toBe(false);
    expect(events.at(-1)).toEqual({ code: 'UNAUTHENTICATED' });
    await client.dispose();
  });

  it('delivers a model event on A to a subscriber on B, naming the host', async () => {
    const client = createClient({ url: `${b.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { 'x-api-key': ADMIN } });
    client.on('error', () => {});
    const events: Array<{ type: string; model: string; host: string | null }> = [];
    client.subscribe<{ modelEvents: { type: string; model: string; host: string | null } }>(
      { query: 'subscription { modelEvents { type model host } }' },
      { next: (r) => r.data && events.push(r.data.modelEvents), error: () => {}, complete: () => {} },
    );
    // B subscribes to Redis some time after it accepted the subscription, and nothing says when: A
    // loads (and unloads) the model until B hears the LOADED event. The bound only stops a hang.
    const loaded = () => events.find((e) => e.type === 'LOADED' && e.model === 'llava:7b' && e.host === e2.url);
    await until(
      async () => {
        if (loaded()) return true;
        await ok(a, 'mutation($h: String) { unloadModel(name: "llava:7b", host: $h) { model } }', { h: e2.url });
        await ok(a, 'mutation($h: String) { loadModel(name: "llava:7b", host: $h) { host } }', { h: e2.url });
        return until(loaded, 500).catch(() => false); // or try again
      },
      15_000,
      'the LOADED event on B',
    );
    await client.dispose();
  });

  it('routes a request for a model loaded on the second host there, from either instance', async () => {
    await ok(a, 'mutation($h: String) { loadModel(name: "qwen3:0.6b", host: $h) { host } }', { h: e2.url });
    await new Promise((r) => setTimeout(r, 1100)); // B's one-second view of /api/ps
    for (const gw of [a, b, a, b]) {
      const r = await ok<{ generate: { text: string } }>(gw, 'mutation($p: String!) { generate(input: { model: "qwen3:0.6b", prompt: $p }) { text } }', { p: `routed via ${gw.name}` });
      expect(r.generate.text.length).toBeGreaterThan(0);
    }
    expect(prompts(e2).filter((p) => p.startsWith('routed via'))).toHaveLength(4);
    expect(prompts(e1).filter((p) => p.startsWith('routed via'))).toHaveLength(0);
  });

  it('moves new requests to the second host when the first stops, with no error before the first token', async () => {
    await ok(a, 'mutation($h: String) { loadModel(name: "llama3.2", host: $h) { host } }', { h: e1.url });
    await e1.stop();
    try {
      const client = createClient({ url: `${a.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { 'x-api-key': ADMIN } });
      client.on('error', () => {});
      const streamed = await new Promise<string[]>((resolve, reject) => {
        const types: string[] = [];
        client.subscribe<{ generate: { type: string } }>(
          { query: 'subscription { generate(input: { model: "llama3.2", prompt: "streamed after the stop" }) { type } }' },
          { next: (r) => (r.errors ? reject(new Error(JSON.stringify(r.errors))) : types.push(r.data!.generate.type)), error: reject, complete: () => resolve(types) },
        );
      });
      await client.dispose();
      expect(streamed.at(-1)).toBe('DONE');
      expect(streamed).toContain('TOKEN');
      for (const gw of [a, b, a, b, a, b]) {
        const r = await gql<{ generate: { text: string } }>(gw, 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p }) { text } }', { p: `after the stop via ${gw.name}` });
        expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
      }
      expect(prompts(e2).filter((p) => p.startsWith('after the stop') || p === 'streamed after the stop')).toHaveLength(7);
      const hosts = await ok<{ ollamaHosts: Array<{ url: string; healthy: boolean }> }>(b, '{ ollamaHosts { url healthy } }');
      expect(hosts.ollamaHosts).toEqual([
        { url: e1.url, healthy: false },
        { url: e2.url, healthy: true },
      ]);
    } finally {
      await e1.start();
    }
  });

  it('runs one idle reaper per Ollama host across the instances (a lease each)', async () => {
    const client = testDatabase();
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string; owner: string; expires_at: Date }>(`SELECT name, owner, expires_at FROM leases WHERE name LIKE 'idle-reaper:%' ORDER BY name`);
      expect(rows).toHaveLength(2); // one per host, however many instances
      for (const row of rows) {
        expect(['gw-a', 'gw-b']).toContain(row.owner);
        expect(row.expires_at.getTime()).toBeGreaterThan(Date.now());
      }
      const instances = await client.query<{ owner: string }>(`SELECT owner FROM leases WHERE name LIKE 'instance:%' ORDER BY owner`);
      expect(instances.rows.map((r) => r.owner)).toEqual(['gw-a', 'gw-b']);
    } finally {
      await client.end();
    }
  });
});
