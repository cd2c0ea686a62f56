// The figures of issue 16, measured exactly as it states them, on a gateway started for them:
// - added time to first token, p50: 1-token streams, gateway and direct interleaved (emulator 0 ms/token);
// - relay tokens/s at 100 concurrent streams of 200 tokens, gateway / direct (0 ms/token);
// - added p99 time to first token at 100 paced streams of 200 tokens (10 ms/token);
// - RSS of the gateway idle after start, and again idle after that load.
// With `--baseline <ref>` a second gateway, built from that ref, runs beside it and takes its turn
// in every measurement (interleaved with the current build and direct), so before and after come
// from one run on the same machine.
import { setMaxListeners } from 'node:events';
import type { Client } from 'graphql-ws';
import { join } from 'node:path';
import type { Baseline } from './baseline.js';
import type { DirectTarget, Mode, Sink, StreamSpec } from './clients.js';
import { ISSUE16_STREAM_TOKENS, LONG_MODEL, PROMPT, SHORT_MODEL, cfg, log } from './context.js';
import { type Targets, drain, errorsOf, interleavedFirstTokens, otherCpuMeter, runnerFor, settleWithin, waitQuiet } from './harness.js';
import { settle } from './memory.js';
import { type Env, type Gateway, closeSockets, createUserKey, gatewayEnv, openSockets, setTokenDelay, startGateway } from './processes.js';
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

/** Which gateway a figure is of: this checkout's build, or the `--baseline` ref's. */
export type Build = 'current' | 'baseline';

export interface Issue16Latency {
  mode: Mode;
  /** Absent in runs from before `--baseline`: the current build. */
  build?: Build;
  n: number;
  p50: number | null;
  p99: number | null;
  errors: number;
  /** CPU other processes used during the measurement, % of one core (the first-token run: over all its lanes). */
  otherCpuPct?: number;
}

export interface Issue16Result {
  config: typeof ISSUE16;
  /** 1-token streams at 0 ms/token, one at a time, the modes in turn (order rotated every round). */
  firstToken: Issue16Latency[];
  /** 100 concurrent 200-token streams at 0 ms/token. */
  relay: Array<{ mode: Mode; build?: Build; tokensPerSec: number | null; gatewayCpuPct: number | null; otherCpuPct?: number | null; errors: number }>;
  /** First-token times of the streams started while 100 paced 200-token streams run (10 ms/token). */
  paced: Issue16Latency[];
  rssAfterStartMB: number;
  rssAfterLoadMB: number | null;
  /** The `--baseline` gateway: which commit, and its RSS readings (its figures are in the lists above). */
  baseline?: { ref: string; commit: string; rssAfterStartMB: number; rssAfterLoadMB: number | null };
}

/** A path a figure is measured on: direct, or a gateway mode of one build. */
interface Lane {
  mode: Mode;
  build: Build;
  t: Targets;
}

const laneName = (l: { mode: Mode; build?: Build }) => (l.build === 'baseline' ? `${l.mode} (baseline)` : l.mode);

/** One stream at a time per lane, rotating which lane goes first, so drift in the machine hits all alike. */
async function firstTokenRun(lanes: Lane[], pids: number[]): Promise<Issue16Latency[]> {
  const other = otherCpuMeter(pids);
  const spec: StreamSpec = { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 1 };
  const measured = await interleavedFirstTokens(
    lanes.map((l) => runnerFor(l.mode, l.t)),
    spec,
    ISSUE16.warmupRounds,
    ISSUE16.rounds,
  );
  const otherCpuPct = other();
  return lanes.map((lane, k) => {
    const s = summary(measured[k].samples);
    return { mode: lane.mode, build: lane.build, n: s.n, p50: round(s.p50, 3), p99: round(s.p99, 3), errors: measured[k].errors, otherCpuPct };
  });
}

/**
 * 100 workers each run paced 200-token streams back to back, their first starts spread over one
 * stream's duration; the first-token time of every stream started inside the window is kept. After
 * the window no stream starts, and the running ones end by themselves (so a slow first token is
 * still counted, not cut off).
 */
async function pacedRun({ mode, build, t }: Lane, pids: number[]): Promise<Issue16Latency> {
  const other = otherCpuMeter(pids);
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
  return { mode, build, n: s.n, p50: round(s.p50, 3), p99: round(s.p99, 3), errors: errorsOf(outcomes).count + lost, otherCpuPct: other() };
}

/**
 * Gateway lanes in the order they take turns: per mode the two builds, which of them goes first
 * drawn at random for each mode and each call (each phase), so that over several runs neither
 * build is always measured first (on a machine whose load drifts, the order shows).
 */
function gatewayLanes(modes: Mode[], current: Targets, base: Targets | null): Lane[] {
  return modes.flatMap((mode) => {
    const cur: Lane = { mode, build: 'current', t: current };
    if (!base) return [cur];
    const old: Lane = { mode, build: 'baseline', t: base };
    return Math.random() < 0.5 ? [cur, old] : [old, cur];
  });
}

/** A started gateway with its sockets open, as the lanes of one build use it. */
async function open(env: Env, label: string, key: string, direct: DirectTarget, root?: string): Promise<{ gw: Gateway; t: Targets; rssAfterStartMB: number }> {
  const gw = await startGateway(env, label, [], false, root);
  const rssAfterStartMB = (await settle(gw.child.pid, null, 0, 0)).rssMB;
  log(`issue 16: ${label} gateway RSS idle after start ${rssAfterStartMB} MB`);
  const myKey = key || (await createUserKey(gw, env.adminKey));
  const ws = cfg.modes.includes('ws') ? (await openSockets(gw, myKey, ISSUE16.streams)).clients : [];
  return { gw, t: { emulatorPid: env.emulator.pid, direct, gateway: gw, key: myKey, ws }, rssAfterStartMB };
}

/** Issue 16's figures on a gateway started for them, and with `baseline`, on that build's gateway too. */
export async function issue16Phase(env: Env, key: string, direct: DirectTarget, baseline?: Baseline): Promise<Issue16Result> {
  const modes: Mode[] = cfg.modes.filter((m) => m !== 'direct');
  await waitQuiet([env.emulator.pid]);
  await setTokenDelay(env, 0);
  const opened: Array<Awaited<ReturnType<typeof open>>> = [];
  try {
    const cur = await open(env, 'issue16', key, direct);
    opened.push(cur);
    let base: typeof cur | null = null;
    if (baseline) {
      // Its own database, and the variables its own src/config.ts knows.
      const dbPath = join(env.tmp, 'baseline.sqlite');
      const benv: Env = { ...env, dbPath, gatewayEnv: gatewayEnv(dbPath, env.emulatorUrl, env.adminKey, baseline.root).env };
      base = await open(benv, 'issue16-baseline', '', direct, baseline.root);
      opened.push(base);
    }
    const direct0: Lane = { mode: 'direct', build: 'current', t: cur.t };
    const lanesInOrder = () => {
      const lanes = [direct0, ...gatewayLanes(modes, cur.t, base?.t ?? null)];
      if (base) log(`issue 16: order ${lanes.map(laneName).join(', ')}`);
      return lanes;
    };
    const lanes = lanesInOrder();
    const pids = [env.emulator.pid, ...opened.map((o) => o.gw.child.pid)];

    await waitQuiet(pids);
    const firstToken = await firstTokenRun(lanes, pids);
    log(`issue 16: first token p50 ${firstToken.map((x) => `${laneName(x)} ${fmt(x.p50, 3)} ms`).join(', ')}; other CPU ${fmt(firstToken[0]?.otherCpuPct, 0)} %`);

    const relay: Issue16Result['relay'] = [];
    for (const lane of lanesInOrder()) {
      await waitQuiet(pids);
      const r = await throughputRun(lane.mode, ISSUE16.streams, lane.t, env.emulator.pid, ISSUE16.throughputWindowMs, ISSUE16.streamTokens);
      await drain(pids, cfg.drainMaxMs);
      relay.push({ mode: lane.mode, build: lane.build, tokensPerSec: r.tokensPerSec, gatewayCpuPct: r.gatewayCpuPct, otherCpuPct: r.otherCpuPct, errors: r.errors.count + r.tokenMismatches });
    }
    log(`issue 16: relay at ${ISSUE16.streams}×${ISSUE16.streamTokens} ${relay.map((x) => `${laneName(x)} ${fmt(x.tokensPerSec, 0)} tokens/s (other CPU ${fmt(x.otherCpuPct, 0)} %)`).join(', ')}`);

    await setTokenDelay(env, ISSUE16.pacedTokenDelayMs);
    const paced: Issue16Latency[] = [];
    for (const lane of lanesInOrder()) {
      await waitQuiet(pids);
      paced.push(await pacedRun(lane, pids));
      await drain(pids, cfg.drainMaxMs);
    }
    await setTokenDelay(env, 0);
    log(`issue 16: paced first token p99 ${paced.map((x) => `${laneName(x)} ${fmt(x.p99, 3)} ms (n=${x.n}, other CPU ${fmt(x.otherCpuPct, 0)} %)`).join(', ')}`);

    const rssAfterLoad: number[] = [];
    for (const o of opened) {
      await closeSockets(o.t.ws);
      o.t.ws = [];
    }
    await drain(pids, cfg.drainMaxMs);
    for (const o of opened) rssAfterLoad.push((await settle(o.gw.child.pid, null, 0, 0)).rssMB);
    log(`issue 16: gateway RSS idle after the load ${rssAfterLoad.join(' / ')} MB`);
    return {
      config: ISSUE16,
      firstToken,
      relay,
      paced,
      rssAfterStartMB: cur.rssAfterStartMB,
      rssAfterLoadMB: rssAfterLoad[0],
      baseline: baseline && base ? { ref: baseline.ref, commit: baseline.commit, rssAfterStartMB: base.rssAfterStartMB, rssAfterLoadMB: rssAfterLoad[1] } : undefined,
    };
  } finally {
    for (const o of opened) {
      await closeSockets(o.t.ws);
      await o.gw.child.stop();
    }
  }
}

export interface Issue16Row {
  figure: string;
  mode: string;
  gateway: string;
  /** The same figure of the `--baseline` build ('' without one). */
  baseline: string;
  direct: string;
  added: string;
  baselineAdded: string;
  /** CPU of other processes during the measurements of the row: baseline / this build / direct (or one figure), % of one core. */
  otherCpu: string;
  target: string;
  met: boolean | null;
}

/** Issue 16's rows: each gateway mode against direct, with the issue's target (and the baseline build beside it). */
export function issue16Rows(r: Issue16Result): Issue16Row[] {
  const rows: Issue16Row[] = [];
  const find = <T extends { mode: Mode; build?: Build }>(list: T[], mode: Mode, build: Build = 'current') => list.find((x) => x.mode === mode && (x.build ?? 'current') === build);
  const has = !!r.baseline;
  /** Other CPU % of a list's entries for a mode: baseline / this build / direct. */
  const other = (list: Array<{ mode: Mode; build?: Build; otherCpuPct?: number | null }>, mode: Mode) =>
    [...(has ? [find(list, mode, 'baseline')] : []), find(list, mode), find(list, 'direct')].map((x) => fmt(x?.otherCpuPct, 0)).join(' / ');
  const modes = [...new Set(r.firstToken.map((x) => x.mode).filter((m) => m !== 'direct'))];
  for (const mode of modes) {
    const d = find(r.firstToken, 'direct');
    const addedP50 = (b: Build) => {
      const g = find(r.firstToken, mode, b);
      return g?.p50 != null && d?.p50 != null ? g.p50 - d.p50 : null;
    };
    const added = addedP50('current');
    rows.push({ figure: `added time to first token, p50, 1-token streams (${r.config.rounds} of each, interleaved)`, mode, gateway: `${fmt(find(r.firstToken, mode)?.p50, 3)} ms`, baseline: has ? `${fmt(find(r.firstToken, mode, 'baseline')?.p50, 3)} ms` : '', direct: `${fmt(d?.p50, 3)} ms`, added: `${fmt(added, 3)} ms`, baselineAdded: has ? `${fmt(addedP50('baseline'), 3)} ms` : '', otherCpu: fmt(d?.otherCpuPct, 0), target: '< 1 ms', met: added === null ? null : added < 1 });
    const dt = find(r.relay, 'direct');
    const x = (b: Build) => ratio(find(r.relay, mode, b)?.tokensPerSec ?? NaN, dt?.tokensPerSec ?? NaN);
    rows.push({ figure: `relay tokens/s at ${r.config.streams} concurrent streams of ${r.config.streamTokens} tokens`, mode, gateway: fmt(find(r.relay, mode)?.tokensPerSec, 0), baseline: has ? fmt(find(r.relay, mode, 'baseline')?.tokensPerSec, 0) : '', direct: fmt(dt?.tokensPerSec, 0), added: `${fmt(x('current'), 2)}×`, baselineAdded: has ? `${fmt(x('baseline'), 2)}×` : '', otherCpu: other(r.relay, mode), target: '>= 0.9×', met: Number.isFinite(x('current')) ? x('current') >= 0.9 : null });
    const dp = find(r.paced, 'direct');
    const addedP99 = (b: Build) => {
      const g = find(r.paced, mode, b);
      return g?.p99 != null && dp?.p99 != null ? g.p99 - dp.p99 : null;
    };
    const p99 = (b: Build) => `${fmt(find(r.paced, mode, b)?.p99, 3)} ms (n=${find(r.paced, mode, b)?.n ?? 0})`;
    const a99 = addedP99('current');
    rows.push({ figure: `added p99 time to first token at ${r.config.streams} paced streams (${r.config.pacedTokenDelayMs} ms/token)`, mode, gateway: p99('current'), baseline: has ? p99('baseline') : '', direct: `${fmt(dp?.p99, 3)} ms (n=${dp?.n ?? 0})`, added: `${fmt(a99, 3)} ms`, baselineAdded: has ? `${fmt(addedP99('baseline'), 3)} ms` : '', otherCpu: other(r.paced, mode), target: '< 5 ms', met: a99 === null || a99 < 0 ? null : a99 < 5 });
  }
  const b = r.baseline;
  rows.push({ figure: 'RSS of the gateway, idle after start', mode: 'gateway', gateway: `${fmt(r.rssAfterStartMB, 1)} MiB`, baseline: b ? `${fmt(b.rssAfterStartMB, 1)} MiB` : '', direct: '', added: '', baselineAdded: '', otherCpu: '', target: '< 100 MiB', met: r.rssAfterStartMB < 100 });
  rows.push({ figure: 'RSS of the gateway, idle after the load above', mode: 'gateway', gateway: `${fmt(r.rssAfterLoadMB, 1)} MiB`, baseline: b ? `${fmt(b.rssAfterLoadMB, 1)} MiB` : '', direct: '', added: '', baselineAdded: '', otherCpu: '', target: '', met: null });
  return rows;
}
