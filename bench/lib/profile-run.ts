import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'graphql-ws';
import type { DirectTarget, Mode } from './clients.js';
import type { BenchConfig } from './config.js';
import { RESULTS, cfg, stamp, startedAt } from './context.js';
import { type Targets, waitQuiet } from './harness.js';
import { type Env, closeSockets, openSockets, setTokenDelay, startGateway } from './processes.js';
import { sleep } from './procs.js';
import { type ProfileSummary, summarizeProfile } from './profile.js';
import { type RequestsResult, requestsRun } from './requests.js';
import { type ThroughputResult, throughputRun } from './throughput.js';
import { type TtftResult, ttftRun } from './ttft.js';

export interface ProfileResult {
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
export async function profilePhase(env: Env, key: string, direct: DirectTarget): Promise<ProfileResult> {
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
