// The figures of issue 16, measured exactly as it states them, on a gateway started for them:
// - added time to first token, p50: 1-token streams, gateway and direct interleaved (emulator 0 ms/token);
// - relay tokens/s at 100 concurrent streams of 200 tokens, gateway / direct (0 ms/token);
// - added p99 time to first token at 100 paced streams of 200 tokens (10 ms/token);
// - RSS of the gateway idle after start, and again idle after that load.
import { setMaxListeners } from 'node:events';
import type { Client } from 'graphql-ws';
import type { DirectTarget, Mode, Sink, StreamSpec } from './clients.js';
import { ISSUE16_STREAM_TOKENS, LONG_MODEL, PROMPT, SHORT_MODEL, cfg, log } from './context.js';
import { type Targets, drain, errorsOf, runnerFor, settleWithin, waitQuiet } from './harness.js';
import { settle } from './memory.js';
import { type Env, closeSockets, openSockets, setTokenDelay, startGateway } from './processes.js';
import { sleep } from './procs.js';
import { fmt, ratio, round, summary } from './stats.js';
import { throughputRun } from './throughput.js';

export const ISSUE16 = {
  /** 1-token streams of each mode for the first-token figure (after `warmupRounds` not counted). */
  rounds: cfg.quick ? 60 : 200,
  warmupRounds: 10,
  streams: 100,
  streamTokens: ISSUE16_STREAM_TOKENS,
  pacedTokenDelayMs: 10,
  /** How long the paced streams are sampled, after every stream has started once. */
  pacedWindowMs: cfg.quick ? 4000 : 12_000,
  throughputWindowMs: cfg.quick ? 1500 : 5000,
} as const;

export interface Issue16Latency {
  mode: Mode;
  n: number;
  p50: number | null;
  p99: number | null;
  errors: number;
}

export interface Issue16Result {
  config: typeof ISSUE16;
  /** 1-token streams at 0 ms/token, one at a time, the modes in turn (order rotated every round). */
  firstToken: Issue16Latency[];
  /** 100 concurrent 200-token streams at 0 ms/token. */
  relay: Array<{ mode: Mode; tokensPerSec: number | null; gatewayCpuPct: number | null; errors: number }>;
  /** First-token times of the streams started while 100 paced 200-token streams run (10 ms/token). */
  paced: Issue16Latency[];
  rssAfterStartMB: number;
  rssAfterLoadMB: number | null;
}

/** One stream at a time per mode, rotating which mode goes first, so drift in the machine hits all alike. */
async function firstTokenRun(modes: Mode[], t: Targets): Promise<Issue16Latency[]> {
  const spec: StreamSpec = { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 1 };
  const samples = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  const errors = new Map<Mode, number>(modes.map((m) => [m, 0]));
  for (let round = 0; round < ISSUE16.warmupRounds + ISSUE16.rounds; round++) {
    for (let i = 0; i < modes.length; i++) {
      const mode = modes[(round + i) % modes.length];
      const o = await runnerFor(mode, t)(0, spec, { tokens: 0, events: 0 }, new AbortController().signal);
      if (round < ISSUE16.warmupRounds) continue;
      if (o.ok && o.ttftMs !== null) samples.get(mode)!.push(o.ttftMs);
      else errors.set(mode, errors.get(mode)! + 1);
    }
  }
  return modes.map((mode) => {
    const s = summary(samples.get(mode)!);
    return { mode, n: s.n, p50: round(s.p50, 3), p99: round(s.p99, 3), errors: errors.get(mode)! };
  });
}

/**
 * 100 workers each run paced 200-token streams back to back, their first starts spread over one
 * stream's duration; the first-token time of every stream started inside the window is kept. After
 * the window no stream starts, and the running ones end by themselves (so a slow first token is
 * still counted, not cut off).
 */
async function pacedRun(mode: Mode, t: Targets): Promise<Issue16Latency> {
  const run = runnerFor(mode, t);
  const spec: StreamSpec = { model: LONG_MODEL, prompt: PROMPT, maxTokens: ISSUE16.streamTokens };
  const streamMs = ISSUE16.streamTokens * ISSUE16.pacedTokenDelayMs;
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const t0 = performance.now();
  const windowFrom = t0 + streamMs;
  const windowTo = windowFrom + ISSUE16.pacedWindowMs;
  const ttfts: number[] = [];
  const outcomes: Awaited<ReturnType<typeof run>>[] = [];
  let lost = 0;
  const workers = Array.from({ length: ISSUE16.streams }, async (_, w) => {
    await sleep((w * streamMs) / ISSUE16.streams);
    const sink: Sink = { tokens: 0, events: 0 };
    while (performance.now() < windowTo && !controller.signal.aborted) {
      const startedAt = performance.now();
      const o = await run(w, spec, sink, controller.signal);
      if (startedAt >= windowFrom) {
        if (o.ttftMs !== null) ttfts.push(o.ttftMs);
        else lost++;
        if (!o.cancelled) outcomes.push(o);
      }
      if (!o.ok && !controller.signal.aborted) await sleep(5);
    }
  });
  await sleep(windowTo - performance.now());
  // The last streams run to their end (one stream's duration, more on a loaded machine).
  if (!(await settleWithin(workers, 60_000))) {
    controller.abort();
    await settleWithin(workers, 30_000);
  }
  const s = summary(ttfts);
  return { mode, n: s.n, p50: round(s.p50, 3), p99: round(s.p99, 3), errors: errorsOf(outcomes).count + lost };
}

export async function issue16Phase(env: Env, key: string, direct: DirectTarget): Promise<Issue16Result> {
  const modes: Mode[] = ['direct', ...cfg.modes.filter((m) => m !== 'direct')];
  await waitQuiet([env.emulator.pid]);
  await setTokenDelay(env, 0);
  const gw = await startGateway(env, 'issue16');
  let clients: Client[] = [];
  try {
    const pid = gw.child.pid;
    const rssAfterStartMB = (await settle(pid, null, 0, 0)).rssMB;
    log(`issue 16: gateway RSS idle after start ${rssAfterStartMB} MB`);
    if (modes.includes('ws')) clients = (await openSockets(gw, key, ISSUE16.streams)).clients;
    const t: Targets = { emulatorPid: env.emulator.pid, direct, gateway: gw, key, ws: clients };
    const pids = [env.emulator.pid, pid];

    await waitQuiet(pids);
    const firstToken = await firstTokenRun(modes, t);
    log(`issue 16: first token p50 ${firstToken.map((x) => `${x.mode} ${fmt(x.p50, 3)} ms`).join(', ')}`);

    const relay: Issue16Result['relay'] = [];
    for (const mode of modes) {
      await waitQuiet(pids);
      const r = await throughputRun(mode, ISSUE16.streams, t, env.emulator.pid, ISSUE16.throughputWindowMs, ISSUE16.streamTokens);
      await drain(pids, cfg.drainMaxMs);
      relay.push({ mode, tokensPerSec: r.tokensPerSec, gatewayCpuPct: r.gatewayCpuPct, errors: r.errors.count + r.tokenMismatches });
    }
    log(`issue 16: relay at ${ISSUE16.streams}×${ISSUE16.streamTokens} ${relay.map((x) => `${x.mode} ${fmt(x.tokensPerSec, 0)} tokens/s`).join(', ')}`);

    await setTokenDelay(env, ISSUE16.pacedTokenDelayMs);
    const paced: Issue16Latency[] = [];
    for (const mode of modes) {
      await waitQuiet(pids);
      paced.push(await pacedRun(mode, t));
      await drain(pids, cfg.drainMaxMs);
    }
    await setTokenDelay(env, 0);
    log(`issue 16: paced first token p99 ${paced.map((x) => `${x.mode} ${fmt(x.p99, 3)} ms (n=${x.n})`).join(', ')}`);

    await closeSockets(clients);
    clients = [];
    await drain(pids, cfg.drainMaxMs);
    const rssAfterLoadMB = (await settle(pid, null, 0, 0)).rssMB;
    log(`issue 16: gateway RSS idle after the load ${rssAfterLoadMB} MB`);
    return { config: ISSUE16, firstToken, relay, paced, rssAfterStartMB, rssAfterLoadMB };
  } finally {
    await closeSockets(clients);
    await gw.child.stop();
  }
}

/** Issue 16's rows: each gateway mode against direct, with the issue's target. */
export function issue16Rows(r: Issue16Result): Array<{ figure: string; mode: string; gateway: string; direct: string; added: string; target: string; met: boolean | null }> {
  const rows: ReturnType<typeof issue16Rows> = [];
  const find = <T extends { mode: Mode }>(list: T[], mode: Mode) => list.find((x) => x.mode === mode);
  for (const mode of r.firstToken.map((x) => x.mode).filter((m) => m !== 'direct')) {
    const g = find(r.firstToken, mode);
    const d = find(r.firstToken, 'direct');
    const added = g?.p50 != null && d?.p50 != null ? g.p50 - d.p50 : null;
    rows.push({ figure: `added time to first token, p50, 1-token streams (${r.config.rounds} of each, interleaved)`, mode, gateway: `${fmt(g?.p50, 3)} ms`, direct: `${fmt(d?.p50, 3)} ms`, added: `${fmt(added, 3)} ms`, target: '< 1 ms', met: added === null ? null : added < 1 });
    const gt = find(r.relay, mode);
    const dt = find(r.relay, 'direct');
    const x = ratio(gt?.tokensPerSec ?? NaN, dt?.tokensPerSec ?? NaN);
    rows.push({ figure: `relay tokens/s at ${r.config.streams} concurrent streams of ${r.config.streamTokens} tokens`, mode, gateway: fmt(gt?.tokensPerSec, 0), direct: fmt(dt?.tokensPerSec, 0), added: `${fmt(x, 2)}×`, target: '>= 0.9×', met: Number.isFinite(x) ? x >= 0.9 : null });
    const gp = find(r.paced, mode);
    const dp = find(r.paced, 'direct');
    const addedP99 = gp?.p99 != null && dp?.p99 != null ? gp.p99 - dp.p99 : null;
    rows.push({ figure: `added p99 time to first token at ${r.config.streams} paced streams (${r.config.pacedTokenDelayMs} ms/token)`, mode, gateway: `${fmt(gp?.p99, 3)} ms (n=${gp?.n ?? 0})`, direct: `${fmt(dp?.p99, 3)} ms (n=${dp?.n ?? 0})`, added: `${fmt(addedP99, 3)} ms`, target: '< 5 ms', met: addedP99 === null ? null : addedP99 < 5 });
  }
  rows.push({ figure: 'RSS of the gateway, idle after start', mode: 'gateway', gateway: `${fmt(r.rssAfterStartMB, 1)} MiB`, direct: '', added: '', target: '< 100 MiB', met: r.rssAfterStartMB < 100 });
  rows.push({ figure: 'RSS of the gateway, idle after the load above', mode: 'gateway', gateway: `${fmt(r.rssAfterLoadMB, 1)} MiB`, direct: '', added: '', target: '', met: null });
  return rows;
}
