import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { startEmulator } from '../../src/emulator/server.js';
import { type TestGateway, startGateway, wsClient } from '../helpers/gateway.js';

const SUBSCRIPTION = `subscription Gen($input: GenerateInput!) { generate(input: $input) { type generationId delta } }`;
type Event = { generate: { type: string; generationId: string } };

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.stop(); // stop() is idempotent: also closes the emulator and removes the temp folder
});

/** Starts a slow stream and resolves once its first token arrived. */
async function startStream(g: TestGateway) {
  const client = wsClient(g, g.userSecret);
  const events: Event[] = [];
  const errors: Array<{ message: string; extensions?: { code?: string } }> = [];
  let closeCode = 0;
  const finished = new Promise<string>((resolve) => {
    client.on('closed', (e) => {
      closeCode = (e as { code: number }).code;
      resolve('closed');
    });
    client.subscribe<Event>(
      { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'Keep talking.' } } },
      {
        next: (r) => (r.errors ? errors.push(...(r.errors as typeof errors)) : events.push(r.data!)),
        error: () => resolve('error'),
        complete: () => resolve('complete'),
      },
    );
  });
  // The first TOKEN (not a PHASE event) proves the request to Ollama is running.
  await new Promise<void>((resolve) => {
    const t = setInterval(() => events.some((e) => e.generate.type === 'TOKEN') && (clearInterval(t), resolve()), 5);
  });
  return { client, events, errors, finished, closeCode: () => closeCode };
}

describe('graceful shutdown', () => {
  it('cancels running streams after the grace period, records them, and closes the database', async () => {
    gw = await startGateway({ env: { SHUTDOWN_GRACE_MS: '100' }, emulator: { tokenDelayMs: 40 } });
    const db = gw.app.services.db;
    const stream = await startStream(gw);
    const generationId = stream.events[0].generate.generationId;
    const upstream = gw.emulator.requests.find((r) => r.path === '/api/generate')!;

    // Read the row through a second connection, since stop() closes the app's.
    await gw.app.stop();
    expect(db.isOpen).toBe(false);
    expect(gw.orm.isInitialized).toBe(false);
    await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
    // The client is told why its stream ended, then the socket closes with 1001 (going away).
    expect(await stream.finished).toBe('complete');
    expect(stream.errors.at(-1)?.extensions?.code).toBe('CANCELLED');
    expect(stream.errors.at(-1)?.message).toMatch(/shutting down/);

    const { dataSource, cleanup } = await reopen(gw);
    const row = await dataSource.getRepository(Generation).findOneByOrFail({ id: generationId });
    expect(row.status).toBe('CANCELLED');
    expect(row.response.length).toBeGreaterThan(0);
    await cleanup();
  });

  it('lets a stream that ends within the grace period finish', async () => {
    gw = await startGateway({ env: { SHUTDOWN_GRACE_MS: '5000' }, emulator: { tokenDelayMs: 5 } });
    const stream = await startStream(gw);
    const generationId = stream.events[0].generate.generationId;
    await gw.app.stop();
    expect(stream.events.at(-1)?.generate.type).toBe('DONE');
    const { dataSource, cleanup } = await reopen(gw);
    expect((await dataSource.getRepository(Generation).findOneByOrFail({ id: generationId })).status).toBe('COMPLETE');
    await cleanup();
  });
});

async function reopen(g: TestGateway) {
  const { openDatabase } = await import('../../src/services/db/database.js');
  const database = await openDatabase({ dbPath: join(g.dir, 'gateway.sqlite') });
  return { dataSource: await database.orm(), cleanup: () => database.close() };
}

// Child processes start under tsx (seconds on a busy machine): generous bounds that only stop a hang.
describe('the gateway process', { timeout: 90_000 }, () => {
  it('starts from src/main.ts, serves /health, and exits 0 on SIGTERM', async () => {
    const emulator = await startEmulator();
    const dir = mkdtempSync(join(tmpdir(), 'gateway-proc-'));
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DB_PATH: join(dir, 'gw.sqlite'), OLLAMA_HOST: emulator.url, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const url = await new Promise<string>((resolve, reject) => {
        // tsx compiles the gateway at start: seconds on a busy machine. Only a hang trips this bound.
        const timer = setTimeout(() => reject(new Error(`no start within 60 s:\n${out}`)), 60_000);
        child.stdout.on('data', () => {
          const m = /"url":"(http:[^"]+)\/graphql"/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
      });
      expect(out).toMatch(/an admin key was created/);
      const health = await fetch(`${url}/health`);
      expect(await health.json()).toMatchObject({ status: 'ok', database: true, upstream: true });
      const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(out).toMatch(/"msg":"stopped"/);
    } finally {
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a bad configuration value and names the variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, PORT: 'not-a-port', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toMatch(/PORT: /);
  });
});

