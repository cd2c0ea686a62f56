import { setMaxListeners } from 'node:events';
import type { Mode, Sink, StreamSpec } from './clients.js';
import { LONG_MODEL, PROMPT, cfg } from './context.js';
import { type Tagged, type Targets, errorsOf, hrUs, mismatches, runnerFor, settleWithin, streamTokensAt } from './harness.js';
import { cpuMs, rssBytes, selfCpuMs, sleep, systemBusyMs } from './procs.js';
import { round } from './stats.js';

export interface ThroughputResult {
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
export async function throughputRun(mode: Mode, level: number, t: Targets, emulatorPid: number, windowMs = cfg.throughputMs, streamTokens = streamTokensAt(level)): Promise<ThroughputResult> {
  const run = runnerFor(mode, t);
  const spec: StreamSpec = { model: LONG_MODEL, prompt: PROMPT, maxTokens: streamTokens };
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
