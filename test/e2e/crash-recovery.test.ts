import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { Message } from '../../src/entities/message.js';
import { type Emulator, startEmulator } from '../../src/emulator/server.js';
import { openDatabase } from '../../src/services/db/database.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { until } from '../helpers/wait.js';

const ADMIN = 'llmgw_crash-test-admin-key-0123456789';
let emulator: Emulator;
let dir: string;

function startProcess(dbFile: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DB_PATH: join(dir, dbFile),
      OLLAMA_HOST: emulator.url,
      ADMIN_API_KEY: ADMIN,
      PARTIAL_FLUSH_MS: '50',
      OLLAMA_NUM_PARALLEL: '8',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    // tsx compiles the gateway at start: seconds on a busy machine. Only a hang trips this bound.
    const timer = setTimeout(() => reject(new Error(`gateway did not start within 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', () => {
      const m = /"url":"(http:[^"]+)\/graphql"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
  });
}

async function gql<T>(url: string, query: string, variables: Record<string, unknown>, key: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data: T; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

beforeAll(async () => {
  // An Ollama with OLLAMA_NUM_PARALLEL=8 (the gateways below are told so): the streams run at once.
  emulator = await startEmulator({ tokenDelayMs: 20, numParallel: 8 });
  dir = mkdtempSync(join(tmpdir(), 'gateway-crash-'));
});
afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('crash recovery', () => {
  it.each([
    {
      // A restarted gateway keeps its id (INSTANCE_ID, or host and port): it settles its rows before serving.
      who: 'the same instance restarting',
      first: { INSTANCE_ID: 'gw-same' },
      second: { INSTANCE_ID: 'gw-same' },
      sweep: false,
    },
    {
      // Another instance on the database settles them once the dead one's heartbeat lease expires.
      who: 'another instance, once the dead one\'s heartbeat expired',
      first: { INSTANCE_ID: 'gw-dead', INSTANCE_TTL_MS: '1000' },
      second: { INSTANCE_ID: 'gw-other', INSTANCE_TTL_MS: '1000' },
      sweep: true,
    },
  ] as Array<{ who: string; first: Record<string, string>; second: Record<string, string>; sweep: boolean }>)('after SIGKILL mid-stream, recovered by $who: completed answers are stored, cut ones are INTERRUPTED with their saved text, balances are exact', async ({ who, first: firstEnv, second: secondEnv, sweep }) => {
    const dbFile = `${who.split(' ')[0]}-${Date.now()}.sqlite`;
    const first = await startProcess(dbFile, firstEnv);
    const created = await gql<{ createApiKey: { secret: string } }>(
      first.url,
      'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }',
      { input: { name: 'crash', role: 'USER', credits: 1000 } },
      ADMIN,
    );
    const key = created.createApiKey.secret;
    const session = await gql<{ createSession: { id: string } }>(first.url, 'mutation { createSession(input: { model: "llama3.2" }) { id } }', {}, key);

    const client = createClient({ url: `${first.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { 'x-api-key': key } });
    client.on('error', () => {});
    type Ev = { type: string; generationId: string; delta: string | null };
    const streams: Array<{ events: Ev[]; done: boolean }> = [];
    const launch = (query: string, variables: Record<string, unknown>) => {
      const s = { events: [] as Ev[], done: false };
      streams.push(s);
      client.subscribe<Record<string, Ev>>(
        { query, variables },
        { next: (r) => r.data && s.events.push(Object.values(r.data)[0]), error: () => {}, complete: () => (s.done = s.events.at(-1)?.type === 'DONE') },
      );
    };
    const GEN = 'subscription($input: GenerateInput!) { generate(input: $input) { type generationId delta } }';
    const CHAT = 'subscription($input: ChatInput!) { chat(input: $input) { type generationId delta } }';
    for (let i = 0; i < 3; i++) launch(GEN, { input: { model: 'llama3.2', prompt: `short ${i}`, options: { maxTokens: 2 } } });
    for (let i = 0; i < 3; i++) launch(GEN, { input: { model: 'llama3.2', prompt: `long ${i}` } });
    launch(CHAT, { input: { sessionId: session.createSession.id, message: 'a long chat answer' } });

    const tokens = (s: { events: Ev[] }) => s.events.filter((e) => e.type === 'TOKEN');
    const deadline = Date.now() + 10_000;
    while (!(streams.slice(0, 3).every((s) => s.done) && streams.slice(3).every((s) => tokens(s).length >= 5))) {
      if (Date.now() > deadline) throw new Error('streams did not progress');
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 150)); // a couple of partial-answer flushes
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const seenByClient = streams.map((s) => ({ id: s.events[0].generationId, text: tokens(s).map((e) => e.delta).join(''), done: s.done }));
    await client.dispose();
    expect(streams.slice(3).every((s) => !s.done)).toBe(true);

    const second = await startProcess(dbFile, secondEnv);
    try {
      const database = await openDatabase({ dbPath: join(dir, dbFile) });
      try {
        const db = await database.orm();
        if (sweep) {
          // Recovered by the periodic sweep, within about two heartbeat periods.
          await until(async () => !(await db.getRepository(Generation).existsBy({ status: 'STREAMING' })), 15_000, 'the rows of the dead instance to be recovered', 50);
        }
        const rows = await db.getRepository(Generation).find();
        const byId = new Map(rows.map((r) => [r.id, r]));
        for (const s of seenByClient) {
          const row = byId.get(s.id)!;
          if (s.done) {
            expect(row).toMatchObject({ status: 'COMPLETE', response: s.text });
          } else {
            expect(row.status).toBe('INTERRUPTED');
            expect(row.response.length).toBeGreaterThan(0);
            expect(s.text.startsWith(row.response)).toBe(true);
            expect(row.creditsCharged).toBe(1);
          }
        }
        expect(rows.some((r) => r.status === 'STREAMING')).toBe(false);
        const assistant = await db.getRepository(Message).findOneByOrFail({ sessionId: session.createSession.id, role: 'assistant' });
        expect(assistant.status).toBe('INTERRUPTED');
        expect(assistant.content.length).toBeGreaterThan(0);

        const apiKey = await db.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(key) });
        const charged = rows.filter((r) => r.apiKeyId === apiKey.id).reduce((n, r) => n + r.creditsCharged, 0);
        expect(charged).toBe(seenByClient.length); // one credit per request that produced tokens
        expect(apiKey.credits).toBe(1000 - charged);
      } finally {
        await database.close();
      }
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
    // Two gateway processes start under tsx (seconds each on a busy machine): a bound on a hang only.
  }, 180_000);
});
