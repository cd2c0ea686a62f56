import { setMaxListeners } from 'node:events';
import type { Client } from 'graphql-ws';
import { type Sink, type StreamSpec, wsStream } from './clients.js';
import { BACKGROUND_MODEL, PROMPT, SHORT_MODEL, cfg, log } from './context.js';
import { settleWithin, waitQuiet } from './harness.js';
import { InspectorSession, type MemoryUsage } from './inspector.js';
import { type Env, closeSockets, openSockets, setTokenDelay, startGateway } from './processes.js';
import { fileLimits, rssBytes, sleep } from './procs.js';
import { round } from './stats.js';

export interface MemoryPoint {
  connections: number;
  activeStreams: number;
  rssMB: number;
  heapUsedMB: number | null;
  externalMB: number | null;
}

export interface MemoryResult {
  gcForced: boolean;
  baseline: MemoryPoint;
  idle: Array<{ connections: number; rssKBPerConnection: number | null; heapKBPerConnection: number | null; connectPerSec: number | null; point: MemoryPoint }>;
  active: { streams: number; rssKBPerStream: number | null; heapKBPerStream: number | null; startMs: number; point: MemoryPoint } | null;
  fileLimit: { soft: number; hard: number };
  note?: string;
}

/** GC (when the inspector is there), then read RSS until it stops moving (±1 %, at most ~4 s). */
export async function settle(pid: number, insp: InspectorSession | null, connections: number, activeStreams: number): Promise<MemoryPoint> {
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

export const kbPer = (a: number | null, b: number | null, n: number) => (a === null || b === null || n <= 0 ? null : round(((a - b) * 1024) / n, 2));

export async function memoryPhase(env: Env, key: string): Promise<MemoryResult> {
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
