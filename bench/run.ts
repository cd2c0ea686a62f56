// `npm run bench`: the gateway against talking to Ollama directly, side by side, in one run.
// See bench/README.md for what each figure means and how it is computed.

import { setMaxListeners } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Client } from 'graphql-ws';
import {
  DirectTarget,
  type Mode,
  type Sink,
  type StreamOutcome,
  type StreamSpec,
  connectWs,
  gatewayRequest,
  gql,
  sseStream,
  wsStream,
} from './lib/clients.js';
import { type BenchConfig, loadBenchConfig } from './lib/config.js';
import { InspectorSession, type MemoryUsage } from './lib/inspector.js';
import { type MachineInfo, machineInfo } from './lib/machine.js';
import { type Child, cpuMs, fileLimits, firstLine, freePort, rssBytes, selfCpuMs, sleep, spawnNode, systemBusyMs, waitForHttp } from './lib/procs.js';
import { type ProfileSummary, summarizeProfile } from './lib/profile.js';
import { fmt, markdownTable, ratio, round, summary, table } from './lib/stats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const PROMPT = 'Benchmark: relay this answer as fast as you can.';
const LONG_MODEL = 'bench-long';
const SHORT_MODEL = 'bench-short';
const BACKGROUND_MODEL = 'bench-bg';

const cfg: BenchConfig = loadBenchConfig();
const startedAt = new Date();
const log = (msg: string) => process.stderr.write(`[bench ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Processes

interface Gateway {
  child: Child;
  label: string;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  logFile: string;
  inspectPort?: number;
}

interface Env {
  tmp: string;
  dbPath: string;
  emulator: Child;
  emulatorUrl: string;
  adminKey: string;
  gatewayEnv: Record<string, string>;
  configVars: { set: string[]; missing: string[] };
}

/** Environment for children: ours minus NODE_OPTIONS (tsx's loader must not reach the gateway). */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  delete base.NODE_OPTIONS;
  return { ...base, ...extra };
}

async function startEmulator(tmp: string): Promise<{ child: Child; url: string }> {
  const child = spawnNode(['--import', 'tsx', join('bench', 'emulator.ts')], {
    cwd: ROOT,
    env: childEnv({ BENCH_EMU_TOKEN_DELAY_MS: '0', BENCH_LONG_REPLY_TOKENS: String(cfg.streamTokens + 16) }),
    logFile: join(tmp, 'emulator.log'),
    stdoutPipe: true,
  });
  const { url } = JSON.parse(await firstLine(child)) as { url: string };
  return { child, url };
}

async function setTokenDelay(env: Env, ms: number): Promise<void> {
  const res = await fetch(`${env.emulatorUrl}/__emulator/token-delay`, { method: 'POST', body: JSON.stringify({ ms }) });
  if (!res.ok) throw new Error(`could not set the emulator token delay: ${res.status}`);
  await res.arrayBuffer();
}

/** Gateway variables the benchmark wants, each set only if src/config.ts knows it. */
function gatewayEnv(dbPath: string, emulatorUrl: string, adminKey: string): { env: Record<string, string>; set: string[]; missing: string[] } {
  const wanted: Record<string, string> = {
    HOST: '127.0.0.1',
    DB_PATH: dbPath,
    OLLAMA_HOST: emulatorUrl,
    ADMIN_API_KEY: adminKey,
    DEFAULT_CREDITS: '1000000000',
    LOG_LEVEL: 'info',
    MAX_CONCURRENT_PER_MODEL: '0',
    RATE_LIMIT_REQUESTS_PER_MINUTE: '0',
    RATE_LIMIT_TOKENS_PER_MINUTE: '0',
    MAX_CONCURRENT_STREAMS_PER_KEY: '0',
    // Per-address and per-key connection caps: every benchmark client is one key on 127.0.0.1.
    MAX_SOCKETS_PER_IP: '0',
    MAX_SOCKETS_PER_KEY: '0',
    MAX_CONCURRENT_STREAMS_PER_IP: '0',
    // Security round 2 caps (docs/security.md): connections per address, operations per socket.
    MAX_CONNECTIONS_PER_IP: '0',
    MAX_SUBSCRIPTIONS_PER_SOCKET: '0',
    NVIDIA_SMI_PATH: 'off',
    SHUTDOWN_GRACE_MS: '2000',
  };
  const source = readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8');
  const env: Record<string, string> = { NODE_ENV: 'production' };
  const set: string[] = [];
  const missing: string[] = [];
  for (const [k, v] of Object.entries(wanted)) {
    if (source.includes(k)) {
      env[k] = v;
      set.push(k);
    } else missing.push(k);
  }
  return { env, set, missing };
}

async function startGateway(env: Env, label: string, nodeArgs: string[] = [], inspect = false): Promise<Gateway> {
  const port = await freePort();
  const inspectPort = inspect ? await freePort() : undefined;
  const logFile = join(env.tmp, `gateway-${label}.log`);
  const args = [...nodeArgs, ...(inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : []), join('dist', 'main.js')];
  const child = spawnNode(args, { cwd: ROOT, env: childEnv({ ...env.gatewayEnv, PORT: String(port) }), logFile });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/health`, 60_000, () => child.proc.exitCode === null);
  } catch (e) {
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
    throw new Error(`gateway (${label}) did not start: ${String(e)}\n${tail}`);
  }
  return { child, label, url, graphqlUrl: `${url}/graphql`, wsUrl: `ws://127.0.0.1:${port}/graphql`, logFile, inspectPort };
}

async function createUserKey(gw: Gateway, adminKey: string): Promise<string> {
  const mutation = (withLimits: boolean) => `mutation {
    createApiKey(input: { name: "bench", role: USER, credits: 1000000000${withLimits ? ', limits: { requestsPerMinute: 0, tokensPerMinute: 0, maxConcurrentStreams: 0 }' : ''} }) { secret }
  }`;
  try {
    return (await gql<{ createApiKey: { secret: string } }>(gw.graphqlUrl, adminKey, mutation(true))).createApiKey.secret;
  } catch (e) {
    log(`createApiKey with limits failed (${String(e)}); retrying without limits`);
    return (await gql<{ createApiKey: { secret: string } }>(gw.graphqlUrl, adminKey, mutation(false))).createApiKey.secret;
  }
}

/** Opens `n` authenticated graphql-ws connections, `batch` at a time. */
async function openSockets(gw: Gateway, key: string, n: number, batch = 100): Promise<{ clients: Client[]; ms: number }> {
  const clients: Client[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) {
    const size = Math.min(batch, n - i);
    clients.push(...(await Promise.all(Array.from({ length: size }, () => connectWs(gw.wsUrl, key)))));
  }
  return { clients, ms: performance.now() - t0 };
}

async function closeSockets(clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => Promise.resolve(c.dispose()).catch(() => {})));
}

// ---------------------------------------------------------------------------------------------
// Workloads

interface Targets {
  emulatorPid: number;
  direct: DirectTarget;
  gateway: Gateway;
  key: string;
  ws: Client[];
}

type Runner = (worker: number, spec: StreamSpec, sink: Sink, signal: AbortSignal) => Promise<StreamOutcome>;

function runnerFor(mode: Mode, t: Targets): Runner {
  switch (mode) {
    case 'direct':
      return (_w, spec, sink, signal) => t.direct.stream(spec, sink, signal);
    case 'ws':
      return (w, spec, sink, signal) => wsStream(t.ws[w], spec, sink, signal);
    case 'sse':
      return (_w, spec, sink, signal) => sseStream(t.gateway.graphqlUrl, t.key, spec, sink, signal);
  }
}

interface Tagged extends StreamOutcome {
  worker: number;
  round: number;
}

/** Waits for promises up to `ms`; returns whether they all settled. */
async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const done = Promise.allSettled(promises).then(() => true as const);
  const settled = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return settled;
}

let quietBudgetMs = cfg.quietBudgetMs;

/**
 * The machine is shared (tests of other people may be running): before a measurement, wait while
 * other processes use more than `quietThresholdPct` of one core, within a per-run time budget.
 * Returns the CPU share others used in the last sample.
 */
async function waitQuiet(ours: number[]): Promise<number> {
  const sample = async () => {
    const own = () => ours.reduce((a, pid) => a + cpuMs(pid), 0) + selfCpuMs();
    const s0 = systemBusyMs();
    const o0 = own();
    const t0 = performance.now();
    await sleep(200);
    return (100 * (systemBusyMs() - s0 - (own() - o0))) / (performance.now() - t0);
  };
  let other = await sample();
  while (other > cfg.quietThresholdPct && quietBudgetMs > 0) {
    const t0 = performance.now();
    await sleep(700);
    other = await sample();
    quietBudgetMs -= performance.now() - t0;
  }
  return round(other, 1) ?? 0;
}

/**
 * After a run, waits until the gateway (and emulator) are idle again (< 5 % CPU over 250 ms), so
 * work left over from one measurement (cancelled streams, buffered events) does not leak into the
 * next. Returns how long that took (itself a sign of a backlog), ms.
 */
async function drain(pids: number[], maxMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs) {
    const c0 = pids.map(cpuMs);
    await sleep(250);
    const busy = pids.map((pid, i) => cpuMs(pid) - c0[i]);
    if (busy.every((ms) => ms <= 12.5)) break;
  }
  return Math.round(performance.now() - t0);
}

function errorsOf(outcomes: StreamOutcome[]) {
  const failed = outcomes.filter((o) => !o.ok && !o.cancelled);
  const kinds = new Map<string, number>();
  for (const o of failed) kinds.set(o.error ?? 'unknown', (kinds.get(o.error ?? 'unknown') ?? 0) + 1);
  return { count: failed.length, kinds: Object.fromEntries([...kinds.entries()].slice(0, 5)) };
}

/** Completed streams whose client-side token count differs from what the server reported. */
/** Tokens per throughput stream at `level` streams: level × tokens stays under maxTokensInFlight. */
const streamTokensAt = (level: number) => Math.max(100, Math.min(cfg.streamTokens, Math.floor(cfg.maxTokensInFlight / level)));

/** Monotonic clock in µs (comparable with V8 profile timestamps of other processes on Linux). */
const hrUs = () => Number(process.hrtime.bigint() / 1000n);

const mismatches = (outcomes: StreamOutcome[]) => outcomes.filter((o) => o.ok && o.reportedTokens !== null && o.reportedTokens !== o.tokens).length;

interface TtftResult {
  /** Time the processes needed to go idle after the run (leftover work), ms. */
  drainMs?: number;
  restarted?: boolean;
  level: number;
  mode: Mode;
  samples: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
  /** Streams running besides the probe, and the tokens/s they received while the probe ran. */
  backgroundStreams: number;
  backgroundTokensPerSec: number | null;
  /** Time until every background stream was delivering tokens. */
  warmupMs: number;
  /** Gateway CPU per token relayed during the probing (paced tokens: one read, event and frame each), µs. */
  gatewayCpuUsPerToken: number | null;
  /** Whole-stream time (request → last event), p50, ms: with TTFT, shows whether tokens trickle or arrive in a burst. */
  streamP50Ms: number | null;
  clientCpuPct: number | null;
  errors: ReturnType<typeof errorsOf>;
  tokenMismatches: number;
  gatewayCpuPct: number | null;
  otherCpuPct: number | null;
  window: { fromUs: number; toUs: number };
}

/**
 * Time to first token at `level` concurrent streams: `level` − 1 background streams keep running
 * (long replies at the emulator's TTFT token delay), and one probe client starts short streams one
 * after another and times each one's first token. The first probe is a warm-up and is not counted.
 */
async function ttftRun(mode: Mode, level: number, t: Targets, fixedMs?: number): Promise<TtftResult> {
  const run = runnerFor(mode, t);
  const probeSpec: StreamSpec = { model: SHORT_MODEL, prompt: PROMPT, maxTokens: cfg.ttftTokens };
  const bgSpec: StreamSpec = { model: BACKGROUND_MODEL, prompt: PROMPT, maxTokens: 1000 };
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per running stream
  const bgSinks: Sink[] = Array.from({ length: level - 1 }, () => ({ tokens: 0, events: 0 }));
  const bgOutcomes: StreamOutcome[] = [];
  const background = bgSinks.map(async (sink, w) => {
    while (!controller.signal.aborted) {
      const o = await run(w, bgSpec, sink, controller.signal);
      if (!o.cancelled) bgOutcomes.push(o);
      if (!o.ok && !controller.signal.aborted) await sleep(5);
    }
  });
  // Steady state: every background stream is delivering tokens.
  const w0 = performance.now();
  while (bgSinks.some((b) => b.tokens === 0) && performance.now() - w0 < cfg.warmupMaxMs) await sleep(20);
  const warmupMs = performance.now() - w0;

  const probeSink: Sink = { tokens: 0, events: 0 };
  const probes: Tagged[] = [];
  const bgTokens0 = bgSinks.reduce((a, b) => a + b.tokens, 0);
  const fromUs = hrUs();
  const t0 = performance.now();
  const cpu0 = { gw: mode === 'direct' ? 0 : cpuMs(t.gateway.child.pid), emu: cpuMs(t.emulatorPid), self: selfCpuMs(), sys: systemBusyMs() };
  for (let round = 0; ; round++) {
    const o = await run(level - 1, probeSpec, probeSink, new AbortController().signal);
    probes.push({ ...o, worker: level - 1, round });
    if (!o.ok) await sleep(5); // do not spin on a failing target
    const elapsed = performance.now() - t0;
    const kept = probes.length - 1;
    if (fixedMs !== undefined ? elapsed >= fixedMs : (elapsed >= cfg.ttftMinMs && kept >= cfg.ttftMinSamples) || elapsed >= cfg.ttftMaxMs) break;
  }
  const tEnd = performance.now();
  const toUs = hrUs();
  const cpu1 = { gw: mode === 'direct' ? 0 : cpuMs(t.gateway.child.pid), emu: cpuMs(t.emulatorPid), self: selfCpuMs(), sys: systemBusyMs() };
  const bgTokens1 = bgSinks.reduce((a, b) => a + b.tokens, 0);
  controller.abort();
  await settleWithin(background, 20_000);

  const counted = probes.filter((o) => o.round > 0);
  const s = summary(counted.filter((o) => o.ok && o.ttftMs !== null).map((o) => o.ttftMs!));
  const dt = tEnd - t0;
  return {
    level,
    mode,
    samples: s.n,
    p50: round(s.p50, 3),
    p90: round(s.p90, 3),
    p99: round(s.p99, 3),
    max: round(s.max, 3),
    mean: round(s.mean, 3),
    backgroundStreams: level - 1,
    backgroundTokensPerSec: round(((bgTokens1 - bgTokens0) * 1000) / dt, 0),
    warmupMs: Math.round(warmupMs),
    gatewayCpuUsPerToken: mode === 'direct' || bgTokens1 - bgTokens0 + probeSink.tokens === 0 ? null : round(((cpu1.gw - cpu0.gw) * 1000) / (bgTokens1 - bgTokens0 + probeSink.tokens), 1),
    streamP50Ms: round(summary(counted.filter((o) => o.ok).map((o) => o.durationMs)).p50, 2),
    clientCpuPct: round((100 * (cpu1.self - cpu0.self)) / dt, 1),
    errors: errorsOf([...probes, ...bgOutcomes]),
    tokenMismatches: mismatches([...probes, ...bgOutcomes]),
    gatewayCpuPct: mode === 'direct' ? null : round((100 * (cpu1.gw - cpu0.gw)) / dt, 1),
    otherCpuPct: round(Math.max(0, (100 * (cpu1.sys - cpu0.sys - (cpu1.gw - cpu0.gw) - (cpu1.emu - cpu0.emu) - (cpu1.self - cpu0.self))) / dt), 1),
    window: { fromUs, toUs },
  };
}

interface ThroughputResult {
  /** Time the processes needed to go idle after the run (leftover work), ms. */
  drainMs?: number;
  /** The gateway was still busy after drainMaxMs and was restarted before the next run. */
  restarted?: boolean;
  level: number;
  streamTokens: number;
  mode: Mode;
  tokensPerSec: number | null;
  eventsPerSec: number | null;
  windowMs: number;
  warmupMs: number;
  /** Time from starting all streams until every client had received a token (null: not within warmupMaxMs). */
  allFlowingMs?: number | null;
  tokens: number;
  /** CPU of the gateway per relayed token, µs (gateway modes only). */
  gatewayCpuUsPerToken: number | null;
  gatewayCpuPct: number | null;
  emulatorCpuPct: number | null;
  emulatorCpuUsPerToken: number | null;
  clientCpuPct: number | null;
  /** CPU used by everything else on the machine during the window (other users, the kernel), % of one core. */
  otherCpuPct: number | null;
  gatewayRssMB: number | null;
  streamsCompleted: number;
  errors: ReturnType<typeof errorsOf>;
  tokenMismatches: number;
  window: { fromUs: number; toUs: number };
}

/**
 * Relay throughput at `level` concurrent long streams with no inter-token delay: clients loop
 * streams; after warm-up (every client has a token flowing), count tokens and CPU over a window.
 */
async function throughputRun(mode: Mode, level: number, t: Targets, emulatorPid: number, windowMs = cfg.throughputMs): Promise<ThroughputResult> {
  const run = runnerFor(mode, t);
  const spec: StreamSpec = { model: LONG_MODEL, prompt: PROMPT, maxTokens: streamTokensAt(level) };
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per running stream
  const sinks: Sink[] = Array.from({ length: level }, () => ({ tokens: 0, events: 0 }));
  const outcomes: Tagged[] = [];
  const workers = Array.from({ length: level }, async (_, w) => {
    for (let round = 0; !controller.signal.aborted; round++) {
      const o = await run(w, spec, sinks[w], controller.signal);
      if (!o.cancelled) outcomes.push({ ...o, worker: w, round });
      if (!o.ok && !controller.signal.aborted) await sleep(5);
    }
  });
  const gwPid = mode === 'direct' ? null : t.gateway.child.pid;
  const t0 = performance.now();
  let allFlowingMs: number | null = null;
  while (true) {
    await sleep(25);
    const elapsed = performance.now() - t0;
    if (allFlowingMs === null && sinks.every((s) => s.tokens > 0)) allFlowingMs = Math.round(elapsed);
    if (elapsed >= cfg.warmupMaxMs || (elapsed >= cfg.warmupMs && allFlowingMs !== null)) break;
  }
  const snap = () => ({
    at: performance.now(),
    tokens: sinks.reduce((a, s) => a + s.tokens, 0),
    events: sinks.reduce((a, s) => a + s.events, 0),
    gw: gwPid ? cpuMs(gwPid) : 0,
    emu: cpuMs(emulatorPid),
    self: selfCpuMs(),
    sys: systemBusyMs(),
    hr: hrUs(),
  });
  const a = snap();
  await sleep(windowMs);
  const b = snap();
  const rss = gwPid ? rssBytes(gwPid) : NaN;
  controller.abort();
  await settleWithin(workers, 20_000);
  const dt = b.at - a.at;
  const tokens = b.tokens - a.tokens;
  return {
    level,
    mode,
    streamTokens: spec.maxTokens,
    tokensPerSec: round((tokens * 1000) / dt, 0),
    eventsPerSec: round(((b.events - a.events) * 1000) / dt, 0),
    windowMs: Math.round(dt),
    warmupMs: Math.round(a.at - t0),
    allFlowingMs,
    tokens,
    gatewayCpuUsPerToken: gwPid && tokens > 0 ? round(((b.gw - a.gw) * 1000) / tokens, 2) : null,
    gatewayCpuPct: gwPid ? round((100 * (b.gw - a.gw)) / dt, 1) : null,
    emulatorCpuPct: round((100 * (b.emu - a.emu)) / dt, 1),
    emulatorCpuUsPerToken: tokens > 0 ? round(((b.emu - a.emu) * 1000) / tokens, 2) : null,
    clientCpuPct: round((100 * (b.self - a.self)) / dt, 1),
    otherCpuPct: round(Math.max(0, (100 * (b.sys - a.sys - (b.gw - a.gw) - (b.emu - a.emu) - (b.self - a.self))) / dt), 1),
    gatewayRssMB: gwPid ? round(rss / 2 ** 20, 1) : null,
    streamsCompleted: outcomes.filter((o) => o.ok).length,
    errors: errorsOf(outcomes),
    tokenMismatches: mismatches(outcomes),
    window: { fromUs: a.hr, toUs: b.hr },
  };
}

interface RequestsResult {
  clients: number;
  mode: 'direct' | 'gateway-http';
  requestsPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  ok: number;
  /** Answers that arrived after the window (not in req/s; the usage log has them). */
  okAfterWindow: number;
  errors: number;
  errorKinds: Record<string, number>;
  gatewayCpuPct: number | null;
  gatewayCpuMsPerRequest: number | null;
  otherCpuPct: number | null;
  /** Rows the gateway committed to the usage log during the run (COMPLETE, non-streamed). */
  rowsLogged: number | null;
  window: { fromUs: number; toUs: number };
}

function countLoggedRows(dbPath: string): number | null {
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare(`SELECT count(*) AS n FROM generations WHERE streamed = 0 AND status = 'COMPLETE'`).get() as { n: number };
      return row.n;
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

/** Non-streaming generate: `clients` HTTP clients in a closed loop for a fixed time. */
async function requestsRun(mode: 'direct' | 'gateway-http', clients: number, t: Targets, dbPath: string, durationMs = cfg.requestMs): Promise<RequestsResult> {
  const spec: StreamSpec = { model: SHORT_MODEL, prompt: PROMPT, maxTokens: cfg.requestTokens };
  const call = mode === 'direct' ? () => t.direct.request(spec) : () => gatewayRequest(t.gateway.graphqlUrl, t.key, spec);
  const rows0 = mode === 'direct' ? null : countLoggedRows(dbPath);
  const latencies: number[] = [];
  const errorKinds = new Map<string, number>();
  let ok = 0;
  let lateOk = 0;
  let errors = 0;
  let stopping = false;
  const gwPid = t.gateway.child.pid;
  const cpu0 = { gw: cpuMs(gwPid), emu: cpuMs(t.emulatorPid), self: selfCpuMs(), sys: systemBusyMs() };
  const t0 = performance.now();
  const fromUs = hrUs();
  const workers = Array.from({ length: clients }, async () => {
    while (!stopping) {
      const r = await call();
      if (stopping) {
        // Finished after the window: not counted in req/s, but the gateway logged it.
        if (r.ok) {
          lateOk++;
          continue;
        }
      }
      if (r.ok) {
        ok++;
        latencies.push(r.ms);
      } else {
        errors++;
        errorKinds.set(r.error ?? 'unknown', (errorKinds.get(r.error ?? 'unknown') ?? 0) + 1);
        await sleep(5);
      }
    }
  });
  await sleep(durationMs);
  stopping = true;
  const toUs = hrUs();
  const dt = performance.now() - t0;
  const cpu1 = { gw: cpuMs(gwPid), emu: cpuMs(t.emulatorPid), self: selfCpuMs(), sys: systemBusyMs() };
  await settleWithin(workers, 30_000);
  await sleep(200);
  const rows1 = mode === 'direct' ? null : countLoggedRows(dbPath);
  const s = summary(latencies);
  return {
    clients,
    mode,
    requestsPerSec: round((ok * 1000) / dt, 0),
    p50Ms: round(s.p50, 2),
    p99Ms: round(s.p99, 2),
    ok,
    okAfterWindow: lateOk,
    errors,
    errorKinds: Object.fromEntries([...errorKinds.entries()].slice(0, 5)),
    gatewayCpuPct: mode === 'direct' ? null : round((100 * (cpu1.gw - cpu0.gw)) / dt, 1),
    gatewayCpuMsPerRequest: mode === 'direct' || ok === 0 ? null : round((cpu1.gw - cpu0.gw) / ok, 3),
    otherCpuPct: round(Math.max(0, (100 * (cpu1.sys - cpu0.sys - (cpu1.gw - cpu0.gw) - (cpu1.emu - cpu0.emu) - (cpu1.self - cpu0.self))) / dt), 1),
    rowsLogged: rows0 !== null && rows1 !== null ? rows1 - rows0 : null,
    window: { fromUs, toUs },
  };
}

// ---------------------------------------------------------------------------------------------
// Memory

interface MemoryPoint {
  connections: number;
  activeStreams: number;
  rssMB: number;
  heapUsedMB: number | null;
  externalMB: number | null;
}

interface MemoryResult {
  gcForced: boolean;
  baseline: MemoryPoint;
  idle: Array<{ connections: number; rssKBPerConnection: number | null; heapKBPerConnection: number | null; connectPerSec: number | null; point: MemoryPoint }>;
  active: { streams: number; rssKBPerStream: number | null; heapKBPerStream: number | null; startMs: number; point: MemoryPoint } | null;
  fileLimit: { soft: number; hard: number };
  note?: string;
}

/** GC (when the inspector is there), then read RSS until it stops moving (±1 %, at most ~4 s). */
async function settle(pid: number, insp: InspectorSession | null, connections: number, activeStreams: number): Promise<MemoryPoint> {
  let last = NaN;
  let mem: MemoryUsage | null = null;
  for (let i = 0; i < 8; i++) {
    if (insp) {
      await insp.gc();
      await insp.gc();
    }
    await sleep(500);
    const rss = rssBytes(pid);
    if (Math.abs(rss - last) / rss < 0.01) break;
    last = rss;
  }
  if (insp) mem = await insp.memoryUsage();
  const rss = rssBytes(pid);
  return {
    connections,
    activeStreams,
    rssMB: round(rss / 2 ** 20, 2)!,
    heapUsedMB: mem ? round(mem.heapUsed / 2 ** 20, 2) : null,
    externalMB: mem ? round((mem.external + mem.arrayBuffers) / 2 ** 20, 2) : null,
  };
}

const kbPer = (a: number | null, b: number | null, n: number) => (a === null || b === null || n <= 0 ? null : round(((a - b) * 1024) / n, 2));

async function memoryPhase(env: Env, key: string): Promise<MemoryResult> {
  const limits = fileLimits();
  const wanted = Math.max(...cfg.idleSockets);
  const possible = Math.max(100, limits.soft - 1000);
  const targetsList = cfg.idleSockets.map((n) => Math.min(n, possible));
  const note = wanted > possible ? `open-files limit ${limits.soft} caps connections at ${possible}; raise it with 'ulimit -n'` : undefined;
  if (note) log(note);

  await waitQuiet([env.emulator.pid]);
  const gw = await startGateway(env, 'memory', [], true);
  let insp: InspectorSession | null = null;
  try {
    insp = await InspectorSession.connect(gw.inspectPort!);
  } catch (e) {
    log(`inspector unavailable, RSS read without forced GC: ${String(e)}`);
  }
  const all: Client[] = [];
  try {
    // Warm the code paths the phase uses (auth, subscription, cancel), then measure the baseline.
    await setTokenDelay(env, 0);
    const warm = await openSockets(gw, key, 10);
    await Promise.all(warm.clients.map((c) => wsStream(c, { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 8 }, { tokens: 0, events: 0 }, new AbortController().signal)));
    await closeSockets(warm.clients);
    const pid = gw.child.pid;
    const baseline = await settle(pid, insp, 0, 0);
    log(`memory baseline: RSS ${baseline.rssMB} MB, heap ${baseline.heapUsedMB} MB`);

    const idle: MemoryResult['idle'] = [];
    for (const n of targetsList) {
      const more = n - all.length;
      if (more <= 0) continue;
      const opened = await openSockets(gw, key, more, 200);
      all.push(...opened.clients);
      const point = await settle(pid, insp, all.length, 0);
      idle.push({
        connections: all.length,
        rssKBPerConnection: kbPer(point.rssMB, baseline.rssMB, all.length),
        heapKBPerConnection: kbPer(point.heapUsedMB, baseline.heapUsedMB, all.length),
        connectPerSec: round((more * 1000) / opened.ms, 0),
        point,
      });
      log(`idle websockets: ${all.length} open, RSS ${point.rssMB} MB (${idle.at(-1)!.rssKBPerConnection} KB each)`);
    }

    let active: MemoryResult['active'] = null;
    const k = Math.min(cfg.activeStreams, all.length);
    if (k > 0) {
      const before = idle.at(-1)?.point ?? baseline;
      await setTokenDelay(env, cfg.activeTokenDelayMs);
      const controller = new AbortController();
      setMaxListeners(0, controller.signal);
      const sinks: Sink[] = Array.from({ length: k }, () => ({ tokens: 0, events: 0 }));
      const spec: StreamSpec = { model: BACKGROUND_MODEL, prompt: PROMPT, maxTokens: 1000 };
      const t0 = performance.now();
      const streams = sinks.map((s, i) => wsStream(all[i], spec, s, controller.signal));
      while (sinks.some((s) => s.tokens === 0) && performance.now() - t0 < 60_000) await sleep(25);
      const startMs = performance.now() - t0;
      const point = await settle(pid, insp, all.length, k);
      active = {
        streams: k,
        rssKBPerStream: kbPer(point.rssMB, before.rssMB, k),
        heapKBPerStream: kbPer(point.heapUsedMB, before.heapUsedMB, k),
        startMs: Math.round(startMs),
        point,
      };
      log(`active streams: ${k} running, RSS ${point.rssMB} MB (${active.rssKBPerStream} KB each)`);
      controller.abort();
      await settleWithin(streams, 30_000);
      await setTokenDelay(env, 0);
    }
    return { gcForced: insp !== null, baseline, idle, active, fileLimit: limits, note };
  } finally {
    await closeSockets(all);
    insp?.close();
    await gw.child.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Profile

interface ProfileResult {
  workload: BenchConfig['profileWorkload'];
  mode: Mode;
  concurrency: number;
  throughput: ThroughputResult | null;
  requests: RequestsResult | null;
  ttft: TtftResult | null;
  profileFile: string;
  summary: ProfileSummary;
}

/** Runs one workload against a gateway started with --cpu-prof, then summarises the profile. */
async function profilePhase(env: Env, key: string, direct: DirectTarget): Promise<ProfileResult> {
  const dir = join(RESULTS, 'profiles');
  mkdirSync(dir, { recursive: true });
  const workload = cfg.profileWorkload;
  const name = `gateway-${workload}-${workload === 'requests' ? 'http' : cfg.profileMode}-${stamp(startedAt)}.cpuprofile`;
  const gw = await startGateway(env, 'profile', ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`, `--cpu-prof-interval=${cfg.profileIntervalUs}`]);
  let clients: Client[] = [];
  const out: Pick<ProfileResult, 'throughput' | 'requests' | 'ttft'> = { throughput: null, requests: null, ttft: null };
  try {
    if (workload !== 'requests' && cfg.profileMode === 'ws') clients = (await openSockets(gw, key, cfg.profileConcurrency)).clients;
    const t: Targets = { emulatorPid: env.emulator.pid, direct, gateway: gw, key, ws: clients };
    await waitQuiet([env.emulator.pid, gw.child.pid]);
    if (workload === 'throughput') {
      await setTokenDelay(env, 0);
      out.throughput = await throughputRun(cfg.profileMode, cfg.profileConcurrency, t, env.emulator.pid, cfg.profileMs);
    } else if (workload === 'requests') {
      await setTokenDelay(env, 0);
      out.requests = await requestsRun('gateway-http', cfg.profileConcurrency, t, env.dbPath, cfg.profileMs);
    } else {
      await setTokenDelay(env, cfg.ttftTokenDelayMs);
      out.ttft = await ttftRun(cfg.profileMode, cfg.profileConcurrency, t, cfg.profileMs);
      await setTokenDelay(env, 0);
    }
  } finally {
    await closeSockets(clients);
    await gw.child.stop(30_000);
  }
  const file = join(dir, name);
  for (let i = 0; i < 50 && !existsSync(file); i++) await sleep(100);
  if (!existsSync(file)) throw new Error(`no profile written at ${file}`);
  const window = (out.throughput ?? out.requests ?? out.ttft)?.window;
  return { workload, mode: cfg.profileMode, concurrency: cfg.profileConcurrency, ...out, profileFile: file, summary: summarizeProfile(file, window) };
}

// ---------------------------------------------------------------------------------------------
// Report

function stamp(d: Date): string {
  return d.toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
}

interface Results {
  startedAt: string;
  finishedAt?: string;
  durationSec?: number;
  quick: boolean;
  machine: MachineInfo;
  config: BenchConfig & { phases: string[] };
  gatewayConfig: { set: string[]; missing: string[] };
  ttft: TtftResult[];
  throughput: ThroughputResult[];
  requests: RequestsResult[];
  memory: MemoryResult | null;
  profile: ProfileResult | null;
  targets: Array<{ target: string; measured: string; met: boolean | null }>;
  failures: string[];
}

function evaluateTargets(r: Results): Results['targets'] {
  const out: Results['targets'] = [];
  const t = (mode: Mode, level: number) => r.ttft.find((x) => x.mode === mode && x.level === level);
  for (const mode of ['ws', 'sse'] as Mode[]) {
    if (!r.config.modes.includes(mode)) continue;
    const d1 = t('direct', 1);
    const g1 = t(mode, 1);
    if (d1 && g1 && d1.p50 !== null && g1.p50 !== null) {
      const added = g1.p50 - d1.p50;
      out.push({ target: `added TTFT p50 < 1 ms at 1 stream (${mode})`, measured: `${fmt(added, 3)} ms (${fmt(g1.p50, 3)} vs ${fmt(d1.p50, 3)})`, met: added < 1 });
    }
    const d100 = t('direct', 100);
    const g100 = t(mode, 100);
    if (d100 && g100 && d100.p99 !== null && g100.p99 !== null) {
      const added = g100.p99 - d100.p99;
      out.push({ target: `added TTFT p99 < 5 ms at 100 streams (${mode})`, measured: `${fmt(added, 3)} ms (${fmt(g100.p99, 3)} vs ${fmt(d100.p99, 3)})`, met: added < 5 });
    }
    const tp = r.throughput.filter((x) => x.mode === mode);
    if (tp.length) {
      const ratios = tp.map((x) => {
        const d = r.throughput.find((y) => y.mode === 'direct' && y.level === x.level);
        return { level: x.level, ratio: ratio(x.tokensPerSec ?? NaN, d?.tokensPerSec ?? NaN) };
      });
      const best = ratios.reduce((a, b) => (b.ratio > a.ratio ? b : a));
      const worst = ratios.reduce((a, b) => (b.ratio < a.ratio ? b : a));
      out.push({
        target: `relay throughput ≥ 0.9× direct (${mode})`,
        measured: `${fmt(worst.ratio, 2)}× (worst, ${worst.level} streams) … ${fmt(best.ratio, 2)}× (best, ${best.level} streams)`,
        met: worst.ratio >= 0.9,
      });
      const max = tp.reduce((a, b) => ((b.tokensPerSec ?? 0) > (a.tokensPerSec ?? 0) ? b : a));
      out.push({ target: `≥ 100,000 tokens/s aggregate through the gateway (${mode})`, measured: `${fmt(max.tokensPerSec, 0)} tokens/s at ${max.level} streams`, met: (max.tokensPerSec ?? 0) >= 100_000 });
    }
  }
  if (r.memory) {
    const at10k = r.memory.idle.find((x) => x.connections >= 10_000);
    const last = r.memory.idle.at(-1);
    const point = at10k ?? last;
    if (point)
      out.push({
        target: 'idle websocket < 30 KB RSS each at 10,000',
        measured: `${fmt(point.rssKBPerConnection, 1)} KB at ${point.connections.toLocaleString('en-US')}`,
        met: at10k ? (point.rssKBPerConnection ?? Infinity) < 30 : null,
      });
  }
  const gwReq = r.requests.filter((x) => x.mode === 'gateway-http');
  if (gwReq.length) {
    const best = gwReq.reduce((a, b) => ((b.requestsPerSec ?? 0) > (a.requestsPerSec ?? 0) ? b : a));
    const logged = best.rowsLogged !== null ? `, ${best.rowsLogged} usage rows for ${best.ok + best.okAfterWindow} answers` : '';
    out.push({ target: '≥ 1,000 non-streaming req/s, every request logged', measured: `${fmt(best.requestsPerSec, 0)} req/s at ${best.clients} clients${logged}`, met: (best.requestsPerSec ?? 0) >= 1000 });
  }
  return out;
}

function render(r: Results, md = false): string {
  const c = r.config;
  const tbl = md ? markdownTable : table;
  const parts: string[] = [];
  const m = r.machine;
  const machineLine = `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}; SQLite on ${m.dbFilesystem} (fsync p50 ${fmt(m.fsync.p50Ms, 3)} ms, p99 ${fmt(m.fsync.p99Ms, 3)} ms); gateway ${m.gitCommit}${m.uncommittedSrcFiles ? ` + ${m.uncommittedSrcFiles} uncommitted src files` : ''}`;
  parts.push(md ? `Machine: ${machineLine}. Run: ${r.startedAt}${r.quick ? ' (quick mode)' : ''}, ${r.durationSec ?? '?'} s.\n` : `\nMachine: ${machineLine}\nRun: ${r.startedAt}${r.quick ? ' (BENCH_QUICK)' : ''}, ${r.durationSec ?? '?'} s`);

  if (r.ttft.length) {
    const rows = r.ttft.map((x) => {
      const d = r.ttft.find((y) => y.mode === 'direct' && y.level === x.level);
      const add = (a: number | null, b: number | null | undefined) => (x.mode === 'direct' || a === null || b === null || b === undefined ? '' : fmt(a - b, 3));
      return [x.level, x.mode, x.samples, fmt(x.p50, 3), fmt(x.p99, 3), add(x.p50, d?.p50), add(x.p99, d?.p99), x.mode === 'direct' ? '' : fmt(ratio(x.p50 ?? NaN, d?.p50 ?? NaN), 2), fmt(x.streamP50Ms, 1), fmt(x.backgroundTokensPerSec, 0), x.gatewayCpuPct === null ? '' : fmt(x.gatewayCpuPct, 0), x.gatewayCpuUsPerToken === null || x.backgroundStreams === 0 ? '' : fmt(x.gatewayCpuUsPerToken, 1), fmt(x.clientCpuPct, 0), fmt(x.otherCpuPct, 0), x.errors.count];
    });
    parts.push(tbl(`1. Time to first token, ms: one probe stream (${c.ttftTokens} tokens) at a time while N − 1 other streams run (emulator ${c.ttftTokenDelayMs} ms/token)`, ['streams', 'mode', 'n', 'p50', 'p99', '+p50', '+p99', 'p50 ×', 'probe stream p50', 'background tokens/s', 'gw CPU %', 'gw µs CPU/token', 'client CPU %', 'other CPU %', 'errors'], rows));
  }
  if (r.throughput.length) {
    const rows = r.throughput.map((x) => {
      const d = r.throughput.find((y) => y.mode === 'direct' && y.level === x.level);
      return [x.level, x.mode, fmt(x.tokensPerSec, 0), x.mode === 'direct' ? '' : fmt(ratio(x.tokensPerSec ?? NaN, d?.tokensPerSec ?? NaN), 2), x.gatewayCpuUsPerToken === null ? '' : fmt(x.gatewayCpuUsPerToken, 2), x.gatewayCpuPct === null ? '' : fmt(x.gatewayCpuPct, 0), fmt(x.emulatorCpuPct, 0), fmt(x.clientCpuPct, 0), fmt(x.otherCpuPct, 0), x.gatewayRssMB === null ? '' : fmt(x.gatewayRssMB, 0), x.allFlowingMs === undefined ? '' : x.allFlowingMs === null ? `> ${fmt(c.warmupMaxMs / 1000, 1)}` : fmt(x.allFlowingMs / 1000, 1), x.drainMs === undefined ? '' : `${fmt(x.drainMs / 1000, 1)}${x.restarted ? ' (restart)' : ''}`, x.errors.count + x.tokenMismatches];
    });
    parts.push(tbl(`2. Relay throughput, tokens/s (emulator 0 ms/token, ${[...new Set(r.throughput.map((x) => x.streamTokens))].join('/')}-token streams, ${c.throughputMs} ms window)`, ['streams', 'mode', 'tokens/s', '× direct', 'gw µs CPU/token', 'gw CPU %', 'emu CPU %', 'client CPU %', 'other CPU %', 'gw RSS MB', 'all flowing after, s', 'busy after, s', 'errors'], rows));
  }
  if (r.requests.length) {
    const rows = r.requests.map((x) => {
      const d = r.requests.find((y) => y.mode === 'direct' && y.clients === x.clients);
      return [x.clients, x.mode, fmt(x.requestsPerSec, 0), x.mode === 'direct' ? '' : fmt(ratio(x.requestsPerSec ?? NaN, d?.requestsPerSec ?? NaN), 2), fmt(x.p50Ms, 2), fmt(x.p99Ms, 2), x.gatewayCpuMsPerRequest === null ? '' : fmt(x.gatewayCpuMsPerRequest, 3), x.rowsLogged === null ? '' : `${x.rowsLogged} / ${x.ok + x.okAfterWindow}`, fmt(x.otherCpuPct, 0), x.errors];
    });
    parts.push(tbl(`3. Non-streaming generate, requests/s (HTTP POST, keep-alive, ${c.requestTokens}-token answers, ${c.requestMs} ms)`, ['clients', 'mode', 'req/s', '× direct', 'p50 ms', 'p99 ms', 'gw CPU ms/req', 'rows logged / answers', 'other CPU %', 'errors'], rows));
  }
  if (r.memory) {
    const mem = r.memory;
    const rows: (string | number)[][] = [['baseline (after warm-up)', 0, fmt(mem.baseline.rssMB, 1), fmt(mem.baseline.heapUsedMB, 1), '', '', '']];
    for (const i of mem.idle) rows.push(['idle authenticated websockets', i.connections, fmt(i.point.rssMB, 1), fmt(i.point.heapUsedMB, 1), fmt(i.rssKBPerConnection, 2), fmt(i.heapKBPerConnection, 2), fmt(i.connectPerSec, 0)]);
    if (mem.active) rows.push([`+ active streams (${c.activeTokenDelayMs} ms/token)`, mem.active.streams, fmt(mem.active.point.rssMB, 1), fmt(mem.active.point.heapUsedMB, 1), fmt(mem.active.rssKBPerStream, 2), fmt(mem.active.heapKBPerStream, 2), '']);
    parts.push(tbl(`4. Gateway memory${mem.gcForced ? ' (full GC forced through the inspector before each reading)' : ''}`, ['state', 'count', 'RSS MB', 'heap MB', 'RSS KB each', 'heap KB each', 'connects/s'], rows));
  }
  if (r.profile) {
    const p = r.profile;
    const rows = p.summary.components.slice(0, 14).map((c) => [c.component, fmt(c.selfMs, 0), `${c.pctOfBusy.toFixed(1)} %`]);
    const load = p.throughput
      ? `${fmt(p.throughput.tokensPerSec, 0)} tokens/s, ${fmt(p.throughput.gatewayCpuUsPerToken, 2)} µs CPU/token while profiled`
      : p.requests
        ? `${fmt(p.requests.requestsPerSec, 0)} req/s, ${fmt(p.requests.gatewayCpuMsPerRequest, 3)} ms CPU/request while profiled`
        : `TTFT p50 ${fmt(p.ttft?.p50, 3)} ms, ${p.ttft?.backgroundStreams} background streams at ${fmt(p.ttft?.backgroundTokensPerSec, 0)} tokens/s while profiled`;
    parts.push(tbl(`Profile: gateway self time by component (${p.workload}, ${p.workload === 'requests' ? 'HTTP' : p.mode}, ${p.concurrency} clients, ${load}; busy ${fmt(p.summary.busyMs, 0)} of ${fmt(p.summary.wallMs, 0)} ms)`, ['component', 'self ms', 'of busy'], rows));
    parts.push(tbl('Profile: inclusive time of relay stages (a frame counted once per sample)', ['stage', 'ms', 'of busy'], p.summary.stages.map((st) => [st.stage, fmt(st.inclusiveMs, 0), `${st.pctOfBusy.toFixed(1)} %`])));
    const fn = p.summary.topSelf.slice(0, 15).map((f) => [f.function, f.location, fmt(f.selfMs, 0), `${f.pctOfBusy.toFixed(1)} %`]);
    parts.push(tbl('Profile: top self-time functions', ['function', 'where', 'self ms', 'of busy'], fn));
  }
  if (r.targets.length) {
    parts.push(tbl('Targets (issue 8)', ['target', 'measured', 'met'], r.targets.map((x) => [x.target, x.measured, x.met === null ? 'n/a' : x.met ? 'yes' : 'NO'])));
  }
  if (r.failures.length) parts.push(`\nFailures:\n${r.failures.map((f) => `  - ${f}`).join('\n')}`);
  return parts.join('\n');
}

function updateReadme(markdown: string): void {
  const file = join(ROOT, 'bench', 'README.md');
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const start = '<!-- bench:latest:start -->';
  const end = '<!-- bench:latest:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return;
  writeFileSync(file, `${text.slice(0, a + start.length)}\n${markdown}\n${text.slice(b)}`);
}

// ---------------------------------------------------------------------------------------------

/** `tsx bench/run.ts --render [results.json]`: print a stored run again and rewrite latest.md (and the README block for full runs). */
function renderOnly(file: string): void {
  const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
  const markdown = render(r, true);
  writeFileSync(join(RESULTS, 'latest.md'), `${markdown}\n`);
  if (!r.quick && cfg.updateReadme !== false) updateReadme(markdown);
  process.stdout.write(`${render(r)}\n`);
}

async function main(): Promise<void> {
  const renderAt = process.argv.indexOf('--render');
  if (renderAt >= 0) return renderOnly(process.argv[renderAt + 1] ?? join(RESULTS, 'latest.json'));
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first (npm run bench does).');
  mkdirSync(RESULTS, { recursive: true });
  const tmp = mkdtempSync(join(cfg.dbDir, 'gateway-bench-'));
  const machine = machineInfo(ROOT, tmp);
  log(`${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; temp dir ${tmp}${cfg.quick ? '; QUICK mode' : ''}`);
  const adminKey = `bench-admin-${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('hex')}`;
  const dbPath = join(tmp, 'gateway.sqlite');

  const results: Results = {
    startedAt: startedAt.toISOString(),
    quick: cfg.quick,
    machine,
    config: { ...cfg, phases: [...cfg.phases] } as BenchConfig & { phases: string[] },
    gatewayConfig: { set: [], missing: [] },
    ttft: [],
    throughput: [],
    requests: [],
    memory: null,
    profile: null,
    targets: [],
    failures: [],
  };

  const emu = await startEmulator(tmp);
  log(`emulator ${emu.url} (pid ${emu.child.pid})`);
  const gwEnv = gatewayEnv(dbPath, emu.url, adminKey);
  results.gatewayConfig = { set: gwEnv.set, missing: gwEnv.missing };
  if (gwEnv.missing.length) log(`src/config.ts does not know ${gwEnv.missing.join(', ')}: not set`);
  const env: Env = { tmp, dbPath, emulator: emu.child, emulatorUrl: emu.url, adminKey, gatewayEnv: gwEnv.env, configVars: results.gatewayConfig };
  const direct = new DirectTarget(emu.url);
  let gw: Gateway | undefined;
  let ws: Client[] = [];

  try {
    gw = await startGateway(env, 'main');
    log(`gateway ${gw.url} (pid ${gw.child.pid}), logs at ${gw.logFile}`);
    const key = await createUserKey(gw, adminKey);
    const streamPhases = cfg.phases.has('ttft') || cfg.phases.has('throughput');
    const maxLevel = Math.max(4, streamPhases && cfg.modes.includes('ws') ? Math.max(...cfg.levels, ...cfg.ttftLevels) : 0);
    ws = (await openSockets(gw, key, maxLevel)).clients;
    const t: Targets = { emulatorPid: emu.child.pid, direct, gateway: gw, key, ws };
    /** A gateway still relaying a backlog nobody reads is restarted, so the next run is not measured against it. */
    const restartIfBusy = async (drainMs: number): Promise<boolean> => {
      if (drainMs < cfg.drainMaxMs || !gw) return false;
      log(`gateway still busy ${drainMs} ms after the clients left: restarting it`);
      await closeSockets(ws);
      await gw.child.stop(3000);
      gw = await startGateway(env, 'main');
      ws = (await openSockets(gw, key, maxLevel)).clients;
      t.gateway = gw;
      t.ws = ws;
      return true;
    };

    // Warm-up: JIT both processes on every path before anything is measured.
    await setTokenDelay(env, 0);
    for (const mode of cfg.modes) {
      const run = runnerFor(mode, t);
      for (let i = 0; i < (cfg.quick ? 2 : 5); i++) {
        await Promise.all([0, 1, 2, 3].map((w) => run(w, { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 16 }, { tokens: 0, events: 0 }, new AbortController().signal)));
        await Promise.all([0, 1].map((w) => run(w, { model: LONG_MODEL, prompt: PROMPT, maxTokens: 1000 }, { tokens: 0, events: 0 }, new AbortController().signal)));
      }
    }
    for (let i = 0; i < 50; i++) await Promise.all([direct.request({ model: SHORT_MODEL, prompt: PROMPT, maxTokens: 8 }), gatewayRequest(gw.graphqlUrl, key, { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 8 })]);
    log('warm-up done');

    if (cfg.phases.has('ttft')) {
      await setTokenDelay(env, cfg.ttftTokenDelayMs);
      for (const level of cfg.ttftLevels) {
        for (const mode of cfg.modes) {
          try {
            await waitQuiet([emu.child.pid, gw.child.pid]);
            const r = await ttftRun(mode, level, t);
            r.drainMs = await drain([emu.child.pid, gw.child.pid], cfg.drainMaxMs);
            r.restarted = await restartIfBusy(r.drainMs);
            results.ttft.push(r);
            log(`ttft ${String(level).padStart(4)} ${mode.padEnd(6)} n=${r.samples} p50 ${fmt(r.p50, 3)} p99 ${fmt(r.p99, 3)} ms, ${fmt(r.backgroundTokensPerSec, 0)} background tokens/s (${r.backgroundStreams} streams), others ${fmt(r.otherCpuPct, 0)} %, drained in ${r.drainMs} ms${r.errors.count ? `, ${r.errors.count} errors ${JSON.stringify(r.errors.kinds)}` : ''}`);
          } catch (e) {
            results.failures.push(`ttft ${mode} @${level}: ${String(e)}`);
            log(`ttft ${mode} @${level} failed: ${String(e)}`);
          }
        }
      }
    }

    if (cfg.phases.has('throughput')) {
      await setTokenDelay(env, 0);
      for (const level of cfg.levels) {
        for (const mode of cfg.modes) {
          try {
            await waitQuiet([emu.child.pid, gw.child.pid]);
            const r = await throughputRun(mode, level, t, emu.child.pid);
            r.drainMs = await drain([emu.child.pid, gw.child.pid], cfg.drainMaxMs);
            r.restarted = await restartIfBusy(r.drainMs);
            results.throughput.push(r);
            log(`throughput ${String(level).padStart(4)} ${mode.padEnd(6)} ${fmt(r.tokensPerSec, 0)} tokens/s${r.gatewayCpuUsPerToken !== null ? `, gw ${fmt(r.gatewayCpuUsPerToken, 2)} µs/token (${fmt(r.gatewayCpuPct, 0)} % CPU)` : ''}, emu ${fmt(r.emulatorCpuPct, 0)} %, client ${fmt(r.clientCpuPct, 0)} %, others ${fmt(r.otherCpuPct, 0)} %, drained in ${r.drainMs} ms${r.errors.count ? `, ${r.errors.count} errors ${JSON.stringify(r.errors.kinds)}` : ''}`);
          } catch (e) {
            results.failures.push(`throughput ${mode} @${level}: ${String(e)}`);
            log(`throughput ${mode} @${level} failed: ${String(e)}`);
          }
        }
      }
    }

    if (cfg.phases.has('requests')) {
      await setTokenDelay(env, 0);
      for (const clients of cfg.requestLevels) {
        for (const mode of ['direct', 'gateway-http'] as const) {
          try {
            await waitQuiet([emu.child.pid, gw.child.pid]);
            const r = await requestsRun(mode, clients, t, dbPath);
            await drain([emu.child.pid, gw.child.pid], cfg.drainMaxMs);
            results.requests.push(r);
            log(`requests ${String(clients).padStart(4)} ${mode.padEnd(12)} ${fmt(r.requestsPerSec, 0)} req/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms${r.rowsLogged !== null ? `, ${r.rowsLogged} rows logged` : ''}${r.errors ? `, ${r.errors} errors ${JSON.stringify(r.errorKinds)}` : ''}`);
          } catch (e) {
            results.failures.push(`requests ${mode} @${clients}: ${String(e)}`);
          }
          await sleep(300);
        }
      }
    }

    await closeSockets(ws);
    ws = [];
    await gw.child.stop();
    gw = undefined;

    if (cfg.phases.has('memory')) {
      try {
        results.memory = await memoryPhase(env, key);
      } catch (e) {
        results.failures.push(`memory: ${String(e)}`);
        log(`memory phase failed: ${String(e)}`);
      }
    }

    if (cfg.phases.has('profile')) {
      try {
        results.profile = await profilePhase(env, key, direct);
        log(`profile written to ${results.profile.profileFile}`);
      } catch (e) {
        results.failures.push(`profile: ${String(e)}`);
        log(`profile phase failed: ${String(e)}`);
      }
    }
  } finally {
    await closeSockets(ws);
    await gw?.child.stop();
    await emu.child.stop();
  }

  const finished = new Date();
  results.finishedAt = finished.toISOString();
  results.durationSec = Math.round((finished.getTime() - startedAt.getTime()) / 1000);
  results.targets = evaluateTargets(results);

  const name = `${stamp(startedAt)}${cfg.quick ? '-quick' : ''}`;
  const json = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(join(RESULTS, `${name}.json`), json);
  writeFileSync(join(RESULTS, 'latest.json'), json);
  const markdown = render(results, true);
  writeFileSync(join(RESULTS, `${name}.md`), `${markdown}\n`);
  writeFileSync(join(RESULTS, 'latest.md'), `${markdown}\n`);
  if (cfg.updateReadme) updateReadme(markdown);
  process.stdout.write(`${render(results)}\n\nResults: bench/results/${name}.json (and latest.json, latest.md)\n`);

  if (!cfg.keepTemp) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
  // Old runs pile up: keep the 20 newest result files of each kind and the 5 newest profiles.
  // Quick runs and full runs are counted apart, so a series of quick runs never removes full
  // runs (which are committed).
  const files = readdirSync(RESULTS).filter((f) => /^\d{4}-.*\.(json|md)$/.test(f)).sort();
  for (const ext of ['.json', '.md']) {
    for (const quick of [true, false]) {
      const mine = files.filter((f) => f.endsWith(ext) && f.endsWith(`-quick${ext}`) === quick);
      for (const f of mine.slice(0, Math.max(0, mine.length - 20))) rmSync(join(RESULTS, f));
    }
  }
  const profiles = join(RESULTS, 'profiles');
  if (existsSync(profiles)) {
    const byAge = readdirSync(profiles)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => ({ f, at: statSync(join(profiles, f)).mtimeMs }))
      .sort((a, b) => a.at - b.at);
    for (const { f } of byAge.slice(0, Math.max(0, byAge.length - 5))) rmSync(join(profiles, f));
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
