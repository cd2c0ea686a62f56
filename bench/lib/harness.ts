// What the workloads share: which client runs a stream in each mode, waiting for a quiet machine
// and for the processes to go idle, and error and token-count bookkeeping.
import type { Client } from 'graphql-ws';
import { type DirectTarget, type Mode, type Sink, type StreamOutcome, type StreamSpec, sseStream, wsStream } from './clients.js';
import { cfg } from './context.js';
import type { Gateway } from './processes.js';
import { cpuMs, selfCpuMs, sleep, systemBusyMs } from './procs.js';
import { round } from './stats.js';

export interface Targets {
  emulatorPid: number;
  direct: DirectTarget;
  gateway: Gateway;
  key: string;
  ws: Client[];
}

export type Runner = (worker: number, spec: StreamSpec, sink: Sink, signal: AbortSignal) => Promise<StreamOutcome>;

/**
 * Time to first token of `spec` on each path, one stream at a time, rotating which path goes first
 * every round so that drift in the machine hits all alike; the first `warmupRounds` are not counted.
 */
export async function interleavedFirstTokens(paths: Runner[], spec: StreamSpec, warmupRounds: number, rounds: number): Promise<Array<{ samples: number[]; errors: number }>> {
  const out = paths.map(() => ({ samples: [] as number[], errors: 0 }));
  for (let r = 0; r < warmupRounds + rounds; r++) {
    for (let i = 0; i < paths.length; i++) {
      const k = (r + i) % paths.length;
      const o = await paths[k](0, spec, { tokens: 0, events: 0 }, new AbortController().signal);
      if (r < warmupRounds) continue;
      if (o.ok && o.ttftMs !== null) out[k].samples.push(o.ttftMs);
      else out[k].errors++;
    }
  }
  return out;
}

export function runnerFor(mode: Mode, t: Targets): Runner {
  switch (mode) {
    case 'direct':
      return (_w, spec, sink, signal) => t.direct.stream(spec, sink, signal);
    case 'ws':
      return (w, spec, sink, signal) => wsStream(t.ws[w], spec, sink, signal);
    case 'sse':
      return (_w, spec, sink, signal) => sseStream(t.gateway.graphqlUrl, t.key, spec, sink, signal);
  }
}

export interface Tagged extends StreamOutcome {
  worker: number;
  round: number;
}

/** Waits for promises up to `ms`; returns whether they all settled. */
export async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const done = Promise.allSettled(promises).then(() => true as const);
  const settled = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return settled;
}

export let quietBudgetMs = cfg.quietBudgetMs;

/**
 * The machine is shared (tests of other people may be running): before a measurement, wait while
 * other processes use more than `quietThresholdPct` of one core, within a per-run time budget.
 * Returns the CPU share others used in the last sample.
 */
export async function waitQuiet(ours: number[]): Promise<number> {
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
export async function drain(pids: number[], maxMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs) {
    const c0 = pids.map(cpuMs);
    await sleep(250);
    const busy = pids.map((pid, i) => cpuMs(pid) - c0[i]);
    if (busy.every((ms) => ms <= 12.5)) break;
  }
  return Math.round(performance.now() - t0);
}

export function errorsOf(outcomes: StreamOutcome[]) {
  const failed = outcomes.filter((o) => !o.ok && !o.cancelled);
  const kinds = new Map<string, number>();
  for (const o of failed) kinds.set(o.error ?? 'unknown', (kinds.get(o.error ?? 'unknown') ?? 0) + 1);
  return { count: failed.length, kinds: Object.fromEntries([...kinds.entries()].slice(0, 5)) };
}

/** Completed streams whose client-side token count differs from what the server reported. */
/** Tokens per throughput stream at `level` streams: level × tokens stays under maxTokensInFlight. */
export const streamTokensAt = (level: number) => Math.max(100, Math.min(cfg.streamTokens, Math.floor(cfg.maxTokensInFlight / level)));

/** Monotonic clock in µs (comparable with V8 profile timestamps of other processes on Linux). */
export const hrUs = () => Number(process.hrtime.bigint() / 1000n);

export const mismatches = (outcomes: StreamOutcome[]) => outcomes.filter((o) => o.ok && o.reportedTokens !== null && o.reportedTokens !== o.tokens).length;

/** Starts counting the CPU that processes other than `ours` and this one use; the returned function reads it, % of one core. */
export function otherCpuMeter(ours: number[]): () => number {
  const own = () => ours.reduce((a, pid) => a + cpuMs(pid), 0) + selfCpuMs();
  const s0 = systemBusyMs();
  const o0 = own();
  const t0 = performance.now();
  return () => round(Math.max(0, (100 * (systemBusyMs() - s0 - (own() - o0))) / (performance.now() - t0)), 1) ?? 0;
}
