import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, createClient } from 'graphql-ws';
import type { DataSource } from 'typeorm';
import type { GatewayDatabase } from '../../src/services/db/database.js';
import WebSocket from 'ws';
import { type Config, loadConfig } from '../../src/config.js';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../src/emulator/server.js';
import { type App, buildApp } from '../../src/server.js';
import { type Logger, createLogger } from '../../src/services/platform/logger.js';
import { copyMigratedSqlite } from './sqlite-template.js';

/** The gateway built on its emulator and a fresh database, not listening: see startGateway and helpers/in-process.ts. */
export interface TestApp {
  app: App;
  /** The gateway's TypeORM DataSource, loaded here so that tests can read and seed rows directly. */
  orm: DataSource;
  emulator: Emulator;
  adminSecret: string;
  userSecret: string;
  dir: string;
  stop(): Promise<void>;
}

export interface TestGateway extends TestApp {
  url: string;
  graphqlUrl: string;
  wsUrl: string;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  config?: Partial<Config>;
  emulator?: EmulatorOptions;
  db?: GatewayDatabase;
  log?: Logger;
  /** More Ollama hosts after the gateway's own emulator (OLLAMA_HOST is the list). */
  moreOllamaHosts?: string[];
}

/**
 * Builds the emulator and the real gateway with a fresh SQLite file, or on `db` (an open, migrated
 * and empty database, e.g. from createTestDatabase; the gateway closes it on stop), with an
 * admin key and a USER key. Nothing listens yet.
 */
export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const emulator = await startEmulator({ tokenDelayMs: 0, ...options.emulator });
  const dir = mkdtempSync(join(tmpdir(), 'gateway-test-'));
  const dbPath = join(dir, 'gateway.sqlite');
  // The gateway's own fresh SQLite file starts as the run's migrated template.
  const ownDatabase = !options.db && !options.env?.DB_PATH && !options.env?.DATABASE_URL && !options.config?.dbPath && !options.config?.databaseUrl;
  if (ownDatabase) copyMigratedSqlite(dbPath);
  const config: Config = {
    ...loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DB_PATH: dbPath,
      OLLAMA_HOST: [emulator.url, ...(options.moreOllamaHosts ?? [])].join(','),
      LOG_LEVEL: 'silent',
      SHUTDOWN_GRACE_MS: '0',
      ...options.env,
    }),
    ...options.config,
  };
  const app = await buildApp({ config, log: options.log ?? createLogger('silent'), db: options.db });
  // ADMIN_API_KEY registers a known admin key (e.g. for several instances on one database).
  const adminSecret = options.env?.ADMIN_API_KEY ?? app.bootstrapSecret;
  if (!adminSecret) throw new Error('expected an admin key to be created on an empty database');
  const { secret: userSecret } = await app.services.keys.create({ name: 'test user', role: 'USER' });
  const orm = await app.services.db.orm();
  return {
    app,
    orm,
    emulator,
    adminSecret,
    userSecret,
    dir,
    stop: async () => {
      await app.stop();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Boots the emulator and the real gateway on port 0 (see buildTestApp). */
export async function startGateway(options: TestAppOptions = {}): Promise<TestGateway> {
  const built = await buildTestApp(options);
  const url = await built.app.start();
  return {
    ...built,
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `${url.replace(/^http/, 'ws')}/graphql`,
  };
}

/** A graphql-ws client over `ws`, the way Node applications use it. */
export function wsClient(gw: TestGateway, secret: string | undefined, extra: Partial<Parameters<typeof createClient>[0]> = {}): Client {
  return createClient({
    url: gw.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: secret ? { 'x-api-key': secret } : {},
    ...extra,
  });
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  data?: T | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }>;
}

/** Subscribes and collects every `next` payload until complete or error. */
export function collect<T = Record<string, unknown>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
): { results: GraphQLResponse<T>[]; done: Promise<GraphQLResponse<T>[]>; cancel: () => void } {
  const results: GraphQLResponse<T>[] = [];
  let cancel: () => void = () => {};
  const done = new Promise<GraphQLResponse<T>[]>((resolve, reject) => {
    cancel = client.subscribe<T>(
      { query, variables },
      {
        next: (r) => results.push(r as GraphQLResponse<T>),
        error: (e) => reject(e),
        complete: () => resolve(results),
      },
    );
  });
  return { results, done, cancel: () => cancel() };
}

/** POSTs a GraphQL operation with fetch. */
export async function post<T = Record<string, unknown>>(
  gw: TestGateway,
  query: string,
  variables?: Record<string, unknown>,
  secret?: string,
): Promise<{ status: number; body: GraphQLResponse<T> }> {
  const res = await fetch(gw.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...(secret ? { 'x-api-key': secret } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as GraphQLResponse<T> };
}

/** Reads an SSE subscription with fetch and returns each `next` payload until `complete`. */
export async function sse<T = Record<string, unknown>>(
  gw: TestGateway,
  query: string,
  variables: Record<string, unknown> | undefined,
  secret: string | undefined,
  opts: { signal?: AbortSignal; onEvent?: (r: GraphQLResponse<T>) => void } = {},
): Promise<{ status: number; events: GraphQLResponse<T>[] }> {
  const res = await fetch(gw.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(secret ? { 'x-api-key': secret } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: opts.signal,
  });
  const events: GraphQLResponse<T>[] = [];
  if (!res.body) return { status: res.status, events };
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (event === 'complete') return { status: res.status, events };
      if (data) {
        const parsed = JSON.parse(data) as GraphQLResponse<T>;
        events.push(parsed);
        opts.onEvent?.(parsed);
      }
    }
  }
  return { status: res.status, events };
}
