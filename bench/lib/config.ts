// Benchmark sizes, all overridable through the environment. BENCH_QUICK=1 picks small defaults
// (levels 1 and 100 only, short windows: under a minute on a quiet 2-core machine); explicit BENCH_* values win over both.

import { tmpdir } from 'node:os';
import type { Mode } from './clients.js';

/** The named scenario sets; `issue16` measures exactly the figures of issue 16 (bench/lib/issue16.ts). */
export const PHASES = ['ttft', 'throughput', 'requests', 'issue16', 'memory', 'profile'] as const;
export type Phase = (typeof PHASES)[number];

export interface BenchConfig {
  quick: boolean;
  modes: Mode[];
  phases: Set<Phase>;
  /** Concurrent streams for the throughput phase (the "1 → 10 → 100 → 1,000" scale). */
  levels: number[];
  /** Concurrent streams for the TTFT runs (1,000 × 100 tokens/s of background is beyond the relay's capacity). */
  ttftLevels: number[];
  /** TTFT: emulator delay before every token (probe and background streams), and the probe's reply length. */
  ttftTokenDelayMs: number;
  ttftTokens: number;
  /** TTFT: keep probing until this many samples (the first probe excluded) and this long… */
  ttftMinSamples: number;
  ttftMinMs: number;
  /** …but stop probing after this long. */
  ttftMaxMs: number;
  /** Throughput: tokens per stream (emulator delay 0), measurement window, warm-up. */
  streamTokens: number;
  /** …capped so that level × tokens stays under this (what a stalled relay could have queued). */
  maxTokensInFlight: number;
  /** A gateway still busy this long after a run's clients left is restarted before the next run. */
  drainMaxMs: number;
  throughputMs: number;
  warmupMs: number;
  warmupMaxMs: number;
  /** Non-streaming generate: concurrent HTTP clients per level, duration, reply length. */
  requestLevels: number[];
  requestMs: number;
  requestTokens: number;
  /** Memory: idle authenticated websockets to hold open (cumulative), and active streams to add. */
  idleSockets: number[];
  activeStreams: number;
  activeTokenDelayMs: number;
  /** Profile phase (BENCH_PROFILE=1): mode, concurrency and duration of the profiled throughput run. */
  profileWorkload: 'throughput' | 'requests' | 'ttft';
  profileMode: Mode;
  profileConcurrency: number;
  profileMs: number;
  profileIntervalUs: number;
  /** Shared machines: before each measurement wait (within a total budget) while other processes use more CPU than this (% of one core). */
  quietThresholdPct: number;
  quietBudgetMs: number;
  /** Where the temporary SQLite file and logs go. */
  dbDir: string;
  keepTemp: boolean;
  /** Rewrite the latest-results block in bench/README.md (full runs only by default). */
  updateReadme: boolean;
}

const env = process.env;

function num(name: string, full: number, quick: number, isQuick: boolean): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return isQuick ? quick : full;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

function list(name: string, full: number[], quick: number[], isQuick: boolean): number[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return isQuick ? quick : full;
  const values = raw.split(',').map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${name} must be a comma list of positive integers`);
  return values;
}

const flag = (name: string) => /^(1|true|yes)$/i.test(env[name] ?? '');

export function loadBenchConfig(): BenchConfig {
  const quick = flag('BENCH_QUICK');
  const modes = (env.BENCH_MODES ?? 'direct,ws,sse').split(',').map((s) => s.trim()) as Mode[];
  if (modes.some((m) => !['direct', 'ws', 'sse'].includes(m))) throw new Error('BENCH_MODES: a comma list of direct, ws, sse');
  if (!modes.includes('direct')) modes.unshift('direct'); // ratios need the baseline
  const phaseNames = (env.BENCH_PHASES ?? 'ttft,throughput,requests,issue16,memory').split(',').map((s) => s.trim());
  if (phaseNames.some((p) => !(PHASES as readonly string[]).includes(p))) throw new Error(`BENCH_PHASES: a comma list of ${PHASES.join(', ')}`);
  if (flag('BENCH_PROFILE')) phaseNames.push('profile');
  const profileMode = (env.BENCH_PROFILE_MODE ?? 'ws') as Mode;
  return {
    quick,
    modes,
    phases: new Set(phaseNames as Phase[]),
    levels: list('BENCH_LEVELS', [1, 10, 100, 1000], [1, 100], quick),
    ttftLevels: list('BENCH_TTFT_LEVELS', [1, 10, 100], [1, 100], quick),
    ttftTokenDelayMs: num('BENCH_TTFT_TOKEN_DELAY_MS', 10, 10, quick),
    ttftTokens: num('BENCH_TTFT_TOKENS', 4, 4, quick),
    ttftMinSamples: num('BENCH_TTFT_MIN_SAMPLES', 100, 20, quick),
    ttftMinMs: num('BENCH_TTFT_MIN_MS', 2000, 400, quick),
    ttftMaxMs: num('BENCH_TTFT_MAX_MS', 6000, 1000, quick),
    streamTokens: num('BENCH_STREAM_TOKENS', 4000, 1000, quick),
    maxTokensInFlight: num('BENCH_MAX_TOKENS_IN_FLIGHT', 400_000, 100_000, quick),
    drainMaxMs: num('BENCH_DRAIN_MAX_MS', 5000, 3000, quick),
    throughputMs: num('BENCH_THROUGHPUT_MS', 2500, 600, quick),
    warmupMs: num('BENCH_WARMUP_MS', 1000, 250, quick),
    warmupMaxMs: num('BENCH_WARMUP_MAX_MS', 10_000, 4000, quick),
    requestLevels: list('BENCH_REQUEST_LEVELS', [1, 10, 100], [10], quick),
    requestMs: num('BENCH_REQUEST_MS', 3000, 800, quick),
    requestTokens: num('BENCH_REQUEST_TOKENS', 16, 16, quick),
    idleSockets: list('BENCH_IDLE_SOCKETS', [1000, 10000], [500], quick),
    activeStreams: num('BENCH_ACTIVE_STREAMS', 1000, 50, quick),
    activeTokenDelayMs: num('BENCH_ACTIVE_TOKEN_DELAY_MS', 250, 250, quick),
    profileWorkload: (['throughput', 'requests', 'ttft'] as const).find((w) => w === env.BENCH_PROFILE_WORKLOAD) ?? 'throughput',
    profileMode: ['direct', 'ws', 'sse'].includes(profileMode) && profileMode !== 'direct' ? profileMode : 'ws',
    profileConcurrency: num('BENCH_PROFILE_CONCURRENCY', 100, 100, quick),
    profileMs: num('BENCH_PROFILE_MS', 5000, 3000, quick),
    profileIntervalUs: num('BENCH_PROFILE_INTERVAL_US', 500, 500, quick),
    quietThresholdPct: num('BENCH_QUIET_THRESHOLD_PCT', 25, 25, quick),
    quietBudgetMs: num('BENCH_QUIET_BUDGET_MS', 60_000, 3000, quick),
    dbDir: env.BENCH_DB_DIR || tmpdir(),
    keepTemp: flag('BENCH_KEEP'),
    updateReadme: env.BENCH_UPDATE_README !== undefined ? flag('BENCH_UPDATE_README') : !quick,
  };
}
