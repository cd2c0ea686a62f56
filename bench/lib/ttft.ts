import { setMaxListeners } from 'node:events';
import type { Mode, Sink, StreamOutcome, StreamSpec } from './clients.js';
import { BACKGROUND_MODEL, PROMPT, SHORT_MODEL, cfg } from './context.js';
import { type Tagged, type Targets, errorsOf, hrUs, mismatches, runnerFor, settleWithin } from './harness.js';
import { cpuMs, selfCpuMs, sleep, systemBusyMs } from './procs.js';
import { round, summary } from './stats.js';

export interface TtftResult {
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
export async function ttftRun(mode: Mode, level: number, t: Targets, fixedMs?: number): Promise<TtftResult> {
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
