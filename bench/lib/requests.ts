import Database from 'better-sqlite3';
import { type StreamSpec, gatewayRequest } from './clients.js';
import { PROMPT, SHORT_MODEL, cfg } from './context.js';
import { type Targets, hrUs, settleWithin } from './harness.js';
import { cpuMs, selfCpuMs, sleep, systemBusyMs } from './procs.js';
import { round, summary } from './stats.js';

export interface RequestsResult {
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

export function countLoggedRows(dbPath: string): number | null {
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
export async function requestsRun(mode: 'direct' | 'gateway-http', clients: number, t: Targets, dbPath: string, durationMs = cfg.requestMs): Promise<RequestsResult> {
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
