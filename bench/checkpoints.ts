// Event-loop stalls of the SQLite writer, with SQLite's own checkpoints on the writer's connection
// (its default: the COMMIT that takes the WAL past 1,000 pages runs the checkpoint on the event
// loop) against the WalCheckpointer's thread (src/services/db/wal-checkpointer.ts). The same
// writer, taking turns: a transaction every CHECKPOINT_BENCH_EVERY_MS ms (default 2) inserting a
// row of about 2 KiB and updating a counter row, the shape of a reservation; the event loop's delay
// is sampled at 1 ms resolution (perf_hooks.monitorEventLoopDelay) meanwhile.
//
//   npx tsx bench/checkpoints.ts        # results: bench/results/checkpoints-<timestamp>.md
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteClient } from '../src/services/db/sqlite-client.js';

const ROUND_MS = Number(process.env.CHECKPOINT_BENCH_ROUND_MS ?? 8000);
const ROUNDS = Number(process.env.CHECKPOINT_BENCH_ROUNDS ?? 3);
const EVERY_MS = Number(process.env.CHECKPOINT_BENCH_EVERY_MS ?? 2);

type Variant = 'sqlite' | 'thread';
interface Round {
  variant: Variant;
  transactions: number;
  /** COMMIT statements (one per group) and how long they held the event loop. */
  commits: number;
  commitP99: number;
  commitMax: number;
  commitsOver1ms: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

async function round(variant: Variant): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-checkpoints-'));
  const file = join(dir, 'bench.sqlite');
  const setup = new BetterSqlite3(file);
  setup.pragma('journal_mode = WAL');
  setup.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL); CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0);');
  setup.close();
  // `sqlite`: never busy enough for the thread, so SQLite checkpoints on the writer's connection.
  const client = new SqliteClient(file, undefined, variant === 'sqlite' ? { busyCommitsPerSecond: Number.POSITIVE_INFINITY } : {});
  // How long each COMMIT holds the thread (the statement runs synchronously inside `run`).
  const commits: number[] = [];
  const run = client.run.bind(client);
  client.run = async (sql, params) => {
    if (sql !== 'COMMIT') return run(sql, params);
    const at = performance.now();
    const changes = run(sql, params);
    commits.push(performance.now() - at);
    return changes;
  };
  const body = 'b'.repeat(2048);
  let transactions = 0;
  const inFlight = new Set<Promise<unknown>>();
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const timer = setInterval(() => {
    const p = client
      .transaction(async (tx) => {
        await tx.run('INSERT INTO rows (body) VALUES (?)', [body]);
        await tx.run('UPDATE counter SET n = n + 1 WHERE id = 1');
      })
      .then(() => transactions++)
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, EVERY_MS);
  // The first second warms up (and lets the thread start): not sampled.
  await new Promise((r) => setTimeout(r, 1000));
  histogram.enable();
  commits.length = 0;
  await new Promise((r) => setTimeout(r, ROUND_MS));
  histogram.disable();
  const sampled = [...commits].sort((a, b) => a - b);
  clearInterval(timer);
  await Promise.all(inFlight);
  await client.close();
  rmSync(dir, { recursive: true, force: true });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const commitMs = (q: number) => Math.round((sampled[Math.min(sampled.length - 1, Math.floor(q * sampled.length))] ?? 0) * 100) / 100;
  return { variant, transactions, commits: sampled.length, commitP99: commitMs(0.99), commitMax: commitMs(1), commitsOver1ms: sampled.filter((x) => x > 1).length, p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), p999: ms(histogram.percentile(99.9)), max: ms(histogram.max) };
}

const rounds: Round[] = [];
for (let i = 0; i < ROUNDS; i++) {
  for (const variant of (i % 2 ? ['thread', 'sqlite'] : ['sqlite', 'thread']) as Variant[]) {
    const r = await round(variant);
    rounds.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
  }
}

const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
const lines = [
  `# SQLite writer: event-loop delay with SQLite's checkpoints on the writer's connection, and on the WalCheckpointer's thread`,
  '',
  `${at}, Node ${process.version}; a transaction every ${EVERY_MS} ms (a 2 KiB row and a counter update), ${ROUNDS} rounds of ${ROUND_MS / 1000} s each, taking turns; event-loop delay at 1 ms resolution.`,
  '',
  '| checkpoints | transactions | COMMITs | COMMIT p99, ms | COMMIT max, ms | COMMITs over 1 ms | loop delay p50, ms | p99 | p99.9 | max |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rounds.map(
    (r) =>
      `| ${r.variant === 'sqlite' ? "SQLite's, on the writer's connection" : "WalCheckpointer's thread"} | ${r.transactions} | ${r.commits} | ${r.commitP99} | ${r.commitMax} | ${r.commitsOver1ms} | ${r.p50} | ${r.p99} | ${r.p999} | ${r.max} |`,
  ),
  '',
];
mkdirSync(join('bench', 'results'), { recursive: true });
const out = join('bench', 'results', `checkpoints-${at}.md`);
writeFileSync(out, lines.join('\n'));
process.stdout.write(`${lines.join('\n')}\nResults: ${out}\n`);
