// The `llm-gateway` CLI against the SQLite file of a running gateway: keys, credits, catalog import,
// CSV exports, migrations and an online backup. Commands run in-process through `runCli` (the entry
// `src/cli/main.ts` calls) with their own stdout/stderr/env; the entry point itself runs as a child
// process, as an operator would start it, from source under tsx and as the built bin.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { ModelEntry } from '../../src/entities/model-entry.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Bounds on child processes, not speed assertions: they only stop a run that hangs. Generous,
// because the spawned runs compile TypeScript (tsx, tsc) on a machine that may be busy.
const RUN_TIMEOUT_MS = 60_000;
const TSC_TIMEOUT_MS = 120_000;
vi.setConfig({ testTimeout: 120_000 });

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command line as a child process with a time limit; `command` defaults to the CLI from source under tsx. */
function spawnCli(args: string[], env: Record<string, string>, command: string[] = [process.execPath, '--import', 'tsx', 'src/cli/main.ts'], timeout = RUN_TIMEOUT_MS): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command[0], [...command.slice(1), ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent', ...env }, timeout }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A stream that appends what is written to it to a string. */
const sink = (append: (text: string) => void) =>
  new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      append(String(chunk));
      done();
    },
  });

/** Runs the CLI in this process with the environment a child would get; the exit code is returned, not set. */
async function run(args: string[], env: Record<string, string>): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    out: sink((s) => (stdout += s)),
    err: sink((s) => (stderr += s)),
    env: { ...process.env, LOG_LEVEL: 'silent', ...env },
  });
  return { code, stdout, stderr };
}

let gw: TestGateway;
let env: Record<string, string>;
let scratch: string;
const cli = (...args: string[]) => run(args, env);

beforeAll(async () => {
  gw = await startGateway();
  env = { DB_PATH: join(gw.dir, 'gateway.sqlite'), DATABASE_URL: '' };
  scratch = mkdtempSync(join(tmpdir(), 'gateway-cli-'));
});
afterAll(async () => {
  await gw?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const me = async (secret: string) => post<{ me: { credits: number; name: string } }>(gw, '{ me { name credits } }', undefined, secret);

describe('llm-gateway --help and bad usage', () => {
  it('lists every command and explains the environment and exit codes', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const command of ['keys', 'credits', 'models', 'export', 'db']) expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(r.stdout).toContain('DB_PATH');
    expect(r.stdout).toContain('Exit codes');
    const sub = await cli('keys', 'create', '--help');
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--name <name>');
  });

  it('exits 2 with a message on unknown commands, missing or invalid options and bad configuration', async () => {
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stdout + none.stderr).toContain('Usage: llm-gateway');
    const unknown = await cli('frobnicate');
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
    const missing = await cli('keys', 'create');
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining("required option '-n, --name <name>' not specified") });
    const invalid = await cli('keys', 'create', '--name', 'x', '--credits', 'lots');
    expect(invalid).toMatchObject({ code: 2, stderr: expect.stringContaining('--credits must be a whole number') });
    const role = await cli('keys', 'create', '--name', 'x', '--role', 'ROOT');
    expect(role).toMatchObject({ code: 2, stderr: expect.stringContaining('Allowed choices are ADMIN, USER') });
    const config = await run(['keys', 'list'], { ...env, DEFAULT_CREDITS: '-5' });
    expect(config).toMatchObject({ code: 2, stderr: expect.stringContaining('DEFAULT_CREDITS') });
  });
});

describe('keys and credits, seen by the running gateway', () => {
  it('creates a key the gateway accepts, adds credits, lists and revokes it', async () => {
    const created = await cli('keys', 'create', '--name', 'cli app', '--credits', '40', '--requests-per-minute', '10', '--json');
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; prefix: string; secret: string; credits: number; limits: { requestsPerMinute: number } };
    expect(key).toMatchObject({ credits: 40, limits: { requestsPerMinute: 10 } });
    expect(key.secret).toMatch(/^llmgw_/);
    expect((await me(key.secret)).body.data?.me).toEqual({ name: 'cli app', credits: 40 });

    const plain = await cli('keys', 'create', '--name', 'plain');
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^llmgw_[A-Za-z0-9_-]{43}$/); // only the secret on stdout
    expect(plain.stderr).toContain('shown only now');

    const added = await cli('credits', 'add', key.prefix, '60');
    expect(added).toMatchObject({ code: 0, stdout: expect.stringContaining('now has 100 credits') });
    const taken = await cli('credits', 'add', key.id, '-30');
    expect(taken.code).toBe(0);
    expect((await me(key.secret)).body.data?.me.credits).toBe(70);
    const tooMuch = await cli('credits', 'add', key.id, '-1000');
    expect(tooMuch).toMatchObject({ code: 1, stderr: expect.stringContaining('70 credits; 1000 cannot be taken away') });
    const nobody = await cli('credits', 'add', 'llmgw_nobody00', '5');
    expect(nobody).toMatchObject({ code: 1, stderr: expect.stringContaining('No API key with id or prefix "llmgw_nobody00"') });

    const list = await cli('keys', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+PREFIX\s+ROLE\s+CREDITS/);
    expect(list.stdout).toContain(key.prefix);
    expect(list.stdout).toMatch(/cli app/);

    const revoked = await cli('keys', 'revoke', key.prefix);
    expect(revoked).toMatchObject({ code: 0, stdout: expect.stringContaining(`Revoked key ${key.prefix}`) });
    expect((await me(key.secret)).body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const active = await cli('keys', 'list', '--json');
    expect(active.stdout).not.toContain(key.id);
    const all = await cli('keys', 'list', '--all', '--json');
    const rows = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; revokedAt: string | null });
    expect(rows.find((r) => r.id === key.id)?.revokedAt).toEqual(expect.any(String));
  });
});

describe('models import', () => {
  it('imports nothing and exits 1 when one row is bad, naming the line; imports a good file', async () => {
    const repo = gw.orm.getRepository(ModelEntry);
    const before = await repo.count();
    const bad = join(scratch, 'bad.csv');
    writeFileSync(bad, 'Ollama name,alias,description\nllama3.2,fast,Quick\nnot a model,x,y\nqwen3:0.6b,tiny,Small\n');
    const refused = await cli('models', 'import', bad);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('nothing imported, 1 bad row');
    expect(refused.stderr).toContain('line 3: "not a model" is not a valid Ollama model name');
    expect(await repo.count()).toBe(before);

    const good = join(scratch, 'good.csv');
    writeFileSync(good, 'llama3.2,fast,Quick\nqwen3:0.6b,tiny,"Small, really"\n');
    const ok = await cli('models', 'import', good);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/checked 2 rows: 0 bad/);
    expect(ok.stderr).toContain('2 added, 0 updated');
    expect(ok.stdout.trim().split('\n')).toEqual(['llama3.2:latest', 'qwen3:0.6b']);
    const entry = await repo.findOneByOrFail({ name: 'qwen3:0.6b' });
    expect(entry).toMatchObject({ alias: 'tiny', description: 'Small, really', enabled: true });

    const missing = await cli('models', 'import', join(scratch, 'nope.csv'));
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('Cannot read') });
  });
});

describe('exports and backups of a live database', () => {
  beforeAll(async () => {
    const client = wsClient(gw, gw.userSecret);
    for (const prompt of ['First, with "quotes", commas\nand a newline.', 'Second.']) {
      await collect(client, 'subscription ($input: GenerateInput!) { generate(input: $input) { type } }', { input: { model: 'llama3.2', prompt } }).done;
    }
    await client.dispose();
    await post(gw, 'mutation { generate(input: {model: "no-such-model", prompt: "Third."}) { text } }', undefined, gw.userSecret);
  });

  it('exports conversations as CSV to a file with progress, and usage to stdout', async () => {
    const file = join(scratch, 'conversations.csv');
    const r = await cli('export', 'conversations', '-o', file);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/conversations: 3 rows written to .*conversations\.csv/);
    expect(existsSync(`${file}.partial`)).toBe(false);
    const rows = parse(readFileSync(file, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(rows.map((row) => [row.prompt, row.status, row.error_code])).toEqual([
      ['First, with "quotes", commas\nand a newline.', 'COMPLETE', ''],
      ['Second.', 'COMPLETE', ''],
      ['Third.', 'ERROR', 'MODEL_NOT_FOUND'],
    ]);
    expect(rows[0].key_name).toBe('test user');
    expect(Number(rows[0].completion_tokens)).toBeGreaterThan(0);

    const future = await cli('export', 'conversations', '--from', '2999-01-01', '--to', '2999-02-01');
    expect(future.stdout.trim().split('\n')).toHaveLength(1); // the header only
    const backwards = await cli('export', 'conversations', '--from', '2026-02-01', '--to', '2026-01-01');
    expect(backwards).toMatchObject({ code: 2, stderr: expect.stringContaining('from must be earlier than to') });

    const usage = await cli('export', 'usage', '--group-by', 'MODEL');
    expect(usage.code).toBe(0);
    const buckets = parse(usage.stdout, { columns: true }) as Array<Record<string, string>>;
    expect(buckets.map((b) => [b.model, b.requests, b.completed, b.failed])).toEqual([
      ['llama3.2', '2', '2', '0'],
      ['no-such-model', '1', '0', '1'],
    ]);
  });

  it('neutralises formula-like cells in the conversations export; --raw exports them as stored', async () => {
    const r = await post(gw, 'mutation { generate(input: {model: "llama3.2", prompt: "=1+1", options: {maxTokens: 1}}) { text } }', undefined, gw.userSecret);
    expect(r.body.errors).toBeUndefined();
    const prompts = async (...extra: string[]) => {
      const out = await cli('export', 'conversations', ...extra);
      expect(out.code).toBe(0);
      return (parse(out.stdout, { columns: true }) as Array<Record<string, string>>).map((row) => row.prompt);
    };
    expect(await prompts()).toContain("'=1+1");
    expect(await prompts('--raw')).toContain('=1+1');
  });

  it('backs up the SQLite file while the gateway runs, into a file that opens with the data', async () => {
    const file = join(scratch, 'backup', 'gateway.sqlite');
    // Keep the gateway writing during the backup.
    const client = wsClient(gw, gw.userSecret);
    const busy = collect(client, 'subscription { generate(input: {model: "llama3.2", prompt: "During the backup."}) { type } }').done;
    const r = await cli('db', 'backup', file);
    await busy;
    await client.dispose();
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/backup: \d+ pages \(.+\) written to .* integrity check ok/);
    expect(statSync(file).size).toBeGreaterThan(0);

    const copy = new Database(file, { readonly: true, fileMustExist: true });
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      const keys = copy.prepare('SELECT name FROM api_keys ORDER BY created_at').all() as Array<{ name: string }>;
      expect(keys.map((k) => k.name)).toEqual(expect.arrayContaining(['admin (first start)', 'test user', 'cli app']));
      const prompts = copy.prepare('SELECT prompt FROM generations').all() as Array<{ prompt: string }>;
      expect(prompts.map((p) => p.prompt)).toEqual(expect.arrayContaining(['Second.', 'Third.']));
      const migrations = copy.prepare('SELECT name FROM migrations').all();
      expect(migrations.length).toBeGreaterThan(0);
    } finally {
      copy.close();
    }

    const again = await cli('db', 'backup', file);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining('exists; pass --force') });
    expect((await cli('db', 'backup', file, '--force')).code).toBe(0);
    const pg = await run(['db', 'backup', file], { ...env, DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none' });
    expect(pg).toMatchObject({ code: 2, stderr: expect.stringContaining('pg_dump') });
    const nothing = await run(['db', 'backup', join(scratch, 'x.sqlite')], { DB_PATH: join(scratch, 'missing.sqlite'), DATABASE_URL: '' });
    expect(nothing).toMatchObject({ code: 1, stderr: expect.stringContaining('No SQLite database') });
  });

  it('runs migrations on a new database once', async () => {
    const fresh = { DB_PATH: join(scratch, 'fresh', 'gateway.sqlite'), DATABASE_URL: '' };
    const first = await run(['db', 'migrate'], fresh);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^applied \S+/m);
    expect(first.stderr).toMatch(/\d+ migrations? applied/);
    const second = await run(['db', 'migrate'], fresh);
    expect(second).toMatchObject({ code: 0, stdout: '', stderr: expect.stringContaining('up to date') });
  });
});

describe('the entry point as a child process', () => {
  it('src/cli/main.ts under tsx: help exits 0, bad usage exits 2, a command reaches the database', async () => {
    const help = await spawnCli(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: llm-gateway');
    const unknown = await spawnCli(['frobnicate'], env);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
    const created = await spawnCli(['keys', 'create', '--name', 'from tsx', '--json'], env);
    expect(created.code).toBe(0);
    expect((await me((JSON.parse(created.stdout) as { secret: string }).secret)).body.data?.me.name).toBe('from tsx');
  });
});

describe('the built bin (dist/cli/main.js)', () => {
  it(
    'compiles with the build config and runs through its shebang',
    async () => {
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
      expect(pkg.bin['llm-gateway']).toBe('dist/cli/main.js');
      // The real build config into a scratch outDir inside the repo (so node_modules resolves), not dist/ itself.
      const outDir = join(ROOT, 'test-artifacts', `dist-cli-${process.pid}`);
      try {
        const build = await spawnCli(['-p', 'tsconfig.build.json', '--outDir', outDir], {}, [process.execPath, join(ROOT, 'node_modules/typescript/bin/tsc')], TSC_TIMEOUT_MS);
        expect(build, build.stdout).toMatchObject({ code: 0 });
        const bin = join(outDir, pkg.bin['llm-gateway'].replace(/^dist\//, ''));
        expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
        chmodSync(bin, 0o755);
        const version = await spawnCli(['--version'], env, [bin]);
        expect(version).toMatchObject({ code: 0, stdout: `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n` });
        const created = await spawnCli(['keys', 'create', '--name', 'from dist', '--json'], env, [bin]);
        expect(created.code).toBe(0);
        expect((await me((JSON.parse(created.stdout) as { secret: string }).secret)).body.data?.me.name).toBe('from dist');
      } finally {
        rmSync(outDir, { recursive: true, force: true });
      }
    },
    TSC_TIMEOUT_MS + 2 * RUN_TIMEOUT_MS,
  );
});
