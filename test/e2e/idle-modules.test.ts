import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../src/emulator/server.js';
import { MIGRATION_NAMES } from '../../src/migrations/names.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { copyMigratedSqlite } from '../helpers/sqlite-template.js';
import { until } from '../helpers/wait.js';

// What an idle gateway must not have loaded (docs/performance.md, "Idle memory"): each is imported
// on first use. Matched against the paths of every module the process loaded.
const LOADED_ON_FIRST_USE: Record<string, RegExp> = {
  'GraphiQL page': /node_modules\/@graphql-yoga\/render-graphiql\//,
  'OpenAI router': /src\/routes\/openai\/router\.ts$/,
  'Ollama router': /src\/routes\/ollama\/router\.ts$/,
  'CSV export': /src\/routes\/export-conversations\.ts$|node_modules\/csv-stringify\//,
  'CSV import': /node_modules\/csv-parse\//,
  ioredis: /node_modules\/ioredis\//,
  pg: /node_modules\/pg\//,
  Ajv: /node_modules\/ajv\//,
  'request-filtering-agent': /node_modules\/request-filtering-agent\//,
  "rate-limiter-flexible's index": /node_modules\/rate-limiter-flexible\/index\.js$/,
  // Migrations (only when one is pending) and admin CRUD: see services/db/database.ts.
  typeorm: /node_modules\/typeorm\//,
  'reflect-metadata': /node_modules\/reflect-metadata\//,
};

const TYPEORM = LOADED_ON_FIRST_USE.typeorm;

/** src/main.ts on `dbFile` with the module recorder, and the URL and first admin secret it logs. */
async function startRecordedGateway(emulator: Emulator, dbFile: string, listFile: string, env: Record<string, string> = {}) {
  const gateway = await startGatewayProcess({ ollamaUrl: emulator.url, dbFile, preload: ['./scripts/loaded-modules.mjs'], env: { LOADED_MODULES_FILE: listFile, ...env } });
  const secret = /\n {2}(\S+)\n/.exec(gateway.output())![1]!;
  return { ...gateway, secret };
}

/** The paths of every module the process has loaded so far (loaded-modules.mjs writes them on SIGUSR2). */
async function loadedModules(child: ChildProcess, listFile: string): Promise<string[]> {
  rmSync(listFile, { force: true });
  child.kill('SIGUSR2');
  const files = await until(() => parsedIfPresent(listFile), 30_000, 'the list of loaded modules');
  return files.map((f) => f.path.replaceAll('\\', '/'));
}

/** The admin `apiKeys` query: TypeORM's findAndCount (admin CRUD). */
async function listKeys(url: string, secret: string) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': secret },
    body: JSON.stringify({ query: '{ apiKeys(first: 10) { totalCount nodes { name role } } }' }),
  });
  return (await res.json()) as { data?: { apiKeys: { totalCount: number; nodes: Array<{ name: string; role: string }> } }; errors?: unknown[] };
}

describe('an idle gateway (src/main.ts on SQLite, no REDIS_URL)', () => {
  it('has not loaded the parts it imports on first use, and serves them on their first request', { timeout: 120_000 }, async () => {
    const emulator = await startEmulator({ tokenDelayMs: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'idle-modules-'));
    const listFile = join(dir, 'modules.json');
    // An up-to-date database (the run's migrated template), as on every start but the first.
    const dbFile = join(dir, 'gw.sqlite');
    copyMigratedSqlite(dbFile);
    // Short periods, so that the periodic work of an idle gateway runs while it is watched: the
    // heartbeat lease, the orphan sweep, the idle reaper's check (a threshold makes it take its
    // lease and read the usage log).
    const gateway = await startRecordedGateway(emulator, dbFile, listFile, { INSTANCE_TTL_MS: '1000', IDLE_CHECK_INTERVAL_MS: '200', INACTIVITY_THRESHOLD_SECONDS: '300' });
    try {
      const { child, url, secret } = gateway;
      // Waits for events rather than time: the heartbeat lease renewed twice and the reaper's lease taken.
      const db = new Database(dbFile, { readonly: true });
      try {
        const heartbeat = () => db.prepare("SELECT expires_at FROM leases WHERE name LIKE 'instance:%'").get() as { expires_at: string } | undefined;
        const seen = new Set<string>();
        await until(() => {
          const lease = heartbeat();
          if (lease) seen.add(lease.expires_at);
          return seen.size >= 3 && db.prepare("SELECT 1 FROM leases WHERE name LIKE 'idle-reaper:%'").get() !== undefined;
        }, 30_000, 'the heartbeat to renew its lease and the idle reaper to take its own');
      } finally {
        db.close();
      }
      const health = await fetch(`${url}/health`);
      expect(await health.json()).toMatchObject({ status: 'ok', database: true });

      const paths = await loadedModules(child, listFile);
      expect(paths.length).toBeGreaterThan(100); // the list holds the gateway's own modules
      expect(paths.some((p) => p.endsWith('src/server.ts'))).toBe(true);
      const loaded = Object.entries(LOADED_ON_FIRST_USE).filter(([, pattern]) => paths.some((p) => pattern.test(p)));
      expect(loaded.map(([name]) => name)).toEqual([]);

      // The first request to a lazily loaded part is served as before.
      const page = await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('LLM gateway');
      const models = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } });
      expect(models.status).toBe(200);
      expect(((await models.json()) as { object: string }).object).toBe('list');
      const tags = await fetch(`${url}/api/tags`, { headers: { authorization: `Bearer ${secret}` } });
      expect(tags.status).toBe(200);
      expect(Array.isArray(((await tags.json()) as { models: unknown }).models)).toBe(true);

      // The first admin CRUD request loads TypeORM and is served.
      const keys = await listKeys(url, secret);
      expect(keys.errors).toBeUndefined();
      expect(keys.data?.apiKeys).toEqual({ totalCount: 1, nodes: [{ name: 'admin (first start)', role: 'ADMIN' }] });
      expect((await loadedModules(child, listFile)).some((p) => TYPEORM.test(p))).toBe(true);
    } finally {
      await gateway.stop();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on a new database file, loads TypeORM at start to migrate it', { timeout: 120_000 }, async () => {
    const emulator = await startEmulator({ tokenDelayMs: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'idle-modules-'));
    const listFile = join(dir, 'modules.json');
    const gateway = await startRecordedGateway(emulator, join(dir, 'gw.sqlite'), listFile);
    try {
      expect((await loadedModules(gateway.child, listFile)).some((p) => TYPEORM.test(p))).toBe(true);
      const keys = await listKeys(gateway.url, gateway.secret);
      expect(keys.errors).toBeUndefined();
      expect(keys.data?.apiKeys.totalCount).toBe(1);
      const db = new Database(join(dir, 'gw.sqlite'), { readonly: true });
      try {
        expect((db.prepare('SELECT name FROM migrations ORDER BY id').all() as Array<{ name: string }>).map((m) => m.name)).toEqual([...MIGRATION_NAMES]);
      } finally {
        db.close();
      }
    } finally {
      await gateway.stop();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The list once it is completely written. */
function parsedIfPresent(file: string): Array<{ path: string }> | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Array<{ path: string }>;
  } catch {
    return null;
  }
}
