// Idle memory of the production build (issue 16): starts the Ollama emulator and `node dist/main.js`
// on a temp SQLite file, waits for the gateway to log its URL, lets it settle, and reads VmRSS from
// /proc/<pid>/status. Several runs, one fresh gateway each.
//
//   npm run build && node scripts/measure-idle-rss.mjs [--runs 5] [--settle-ms 2000] [--fresh] [--modules | --breakdown] [--env NAME=value]
//
// By default each run's file is migrated first (`node dist/cli/main.js db migrate`), so what is
// measured is a start on an up-to-date database, which loads no TypeORM. --fresh starts on an
// empty file instead: the gateway then runs the migrations itself and TypeORM stays loaded.
//
// --modules also lists what the gateway loaded, by package, largest first (source bytes, a proxy
// for the code and heap each costs); scripts/loaded-modules.mjs records it. Its loader hook runs
// on a thread of its own, which adds to RSS: read RSS from runs without it.
// --breakdown prints where the last run's memory is (V8 heap spaces, code, external), from
// scripts/memory-breakdown.mjs.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'settle-ms': { type: 'string', default: '2000' },
    modules: { type: 'boolean', default: false },
    breakdown: { type: 'boolean', default: false },
    fresh: { type: 'boolean', default: false },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const runs = Number(args.runs);
const settleMs = Number(args['settle-ms']);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Resolves with the first stdout line matching `pattern`; rejects when the process exits first or after 60 s. */
function waitForLine(child, pattern, what) {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${what}: no line matching ${pattern} within 60 s`)), 60_000);
    lines.on('line', (line) => {
      if (!pattern.test(line)) return;
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready`)));
  });
}

function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

const env = { ...process.env };
delete env.NODE_OPTIONS; // a tsx loader must not reach the gateway

console.log(args.fresh ? 'measuring starts on a new (unmigrated) SQLite file' : 'measuring starts on a migrated SQLite file (--fresh: on a new one)');

/** Runs the CLI's `db migrate` on `dbPath`, so the gateway starts on an up-to-date database. */
function migrate(dbPath) {
  return new Promise((resolve, reject) => {
    const cli = spawn(process.execPath, ['dist/cli/main.js', 'db', 'migrate'], { cwd: ROOT, env: { ...env, DB_PATH: dbPath }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    cli.stderr.on('data', (d) => (stderr += d));
    cli.once('error', reject);
    cli.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`db migrate exited with ${code}: ${stderr}`))));
  });
}

const emulator = spawn(process.execPath, ['--import', 'tsx', 'src/emulator/main.ts'], {
  cwd: ROOT,
  env: { ...env, EMULATOR_PORT: '0', EMULATOR_TOKEN_DELAY_MS: '0' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const emulatorUrl = /listening on (\S+)/.exec(await waitForLine(emulator, /listening on/, 'emulator'))[1];

const results = [];
try {
  for (let i = 0; i < runs; i++) {
    const tmp = mkdtempSync(join(tmpdir(), 'idle-rss-'));
    const extra = Object.fromEntries(args.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    if (!args.fresh) await migrate(join(tmp, 'gateway.sqlite'));
    const nodeArgs = args.modules ? ['--import', './scripts/loaded-modules.mjs'] : args.breakdown ? ['--import', './scripts/memory-breakdown.mjs'] : [];
    const gateway = spawn(process.execPath, [...nodeArgs, 'dist/main.js'], {
      cwd: ROOT,
      env: {
        ...env,
        HOST: '127.0.0.1',
        PORT: '0',
        DB_PATH: join(tmp, 'gateway.sqlite'),
        OLLAMA_HOST: emulatorUrl,
        NVIDIA_SMI_PATH: 'off',
        LOG_LEVEL: 'info',
        LOADED_MODULES_FILE: join(tmp, 'modules.json'),
        MEMORY_BREAKDOWN_FILE: join(tmp, 'memory.json'),
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await waitForLine(gateway, /gateway listening/, 'gateway');
      await sleep(settleMs);
      const kib = rssKiB(gateway.pid);
      results.push(kib);
      console.log(`run ${i + 1}: RSS ${(kib / 1024).toFixed(1)} MiB`);
      if ((args.modules || args.breakdown) && i === runs - 1) {
        gateway.kill('SIGUSR2'); // both helpers write their file on SIGUSR2
        await sleep(500);
        if (args.modules) printModules(JSON.parse(readFileSync(join(tmp, 'modules.json'), 'utf8')));
        else console.log(JSON.stringify(JSON.parse(readFileSync(join(tmp, 'memory.json'), 'utf8')), null, 1));
      }
    } finally {
      await stop(gateway);
      rmSync(tmp, { recursive: true, force: true });
    }
  }
} finally {
  await stop(emulator);
}
const mib = results.map((k) => k / 1024).sort((a, b) => a - b);
const median = mib[Math.floor(mib.length / 2)];
console.log(`idle RSS over ${runs} runs (${args.fresh ? 'new' : 'migrated'} file): min ${mib[0].toFixed(1)}, median ${median.toFixed(1)}, max ${mib.at(-1).toFixed(1)} MiB`);

function printModules(files) {
  const byPackage = new Map();
  for (const { path, bytes } of files) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const name = m ? m[1] : path.startsWith(ROOT) ? `(gateway) ${path.slice(ROOT.length).split('/').slice(0, 2).join('/')}` : path;
    const entry = byPackage.get(name) ?? { files: 0, bytes: 0 };
    entry.files++;
    entry.bytes += bytes;
    byPackage.set(name, entry);
  }
  const rows = [...byPackage].sort((a, b) => b[1].bytes - a[1].bytes);
  const total = rows.reduce((s, [, e]) => s + e.bytes, 0);
  console.log(`loaded: ${files.length} files, ${(total / 1024).toFixed(0)} KiB of source`);
  for (const [name, e] of rows.slice(0, 40)) console.log(`${(e.bytes / 1024).toFixed(0).padStart(7)} KiB ${String(e.files).padStart(4)} files  ${name}`);
}
