import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/server.js';
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
};

describe('an idle gateway (src/main.ts on SQLite, no REDIS_URL)', () => {
  it('has not loaded the parts it imports on first use, and serves them on their first request', { timeout: 120_000 }, async () => {
    const emulator = await startEmulator({ tokenDelayMs: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'idle-modules-'));
    const listFile = join(dir, 'modules.json');
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './scripts/loaded-modules.mjs', 'src/main.ts'], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DB_PATH: join(dir, 'gw.sqlite'), OLLAMA_HOST: emulator.url, NVIDIA_SMI_PATH: 'off', LOG_LEVEL: 'info', LOADED_MODULES_FILE: listFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      await until(() => /"url":"(http:[^"]+)\/graphql"/.test(out), 60_000, 'the gateway to log its URL');
      const url = /"url":"(http:[^"]+)\/graphql"/.exec(out)![1]!;
      const secret = /\n {2}(\S+)\n/.exec(out)![1]!;

      child.kill('SIGUSR2'); // loaded-modules.mjs writes the list
      const files = await until(() => parsedIfPresent(listFile), 30_000, 'the list of loaded modules');
      const paths = files.map((f) => f.path);
      expect(paths.length).toBeGreaterThan(100); // the list holds the gateway's own modules
      expect(paths.some((p) => p.endsWith('src/server.ts'))).toBe(true);
      const loaded = Object.entries(LOADED_ON_FIRST_USE).filter(([, pattern]) => paths.some((p) => pattern.test(p.replaceAll('\\', '/'))));
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
    } finally {
      child.kill('SIGTERM');
      await exited;
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
