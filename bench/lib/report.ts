// The results of a run: the targets it is judged against, and its tables (plain text and markdown).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mode } from './clients.js';
import type { BenchConfig } from './config.js';
import { ROOT } from './context.js';
import { type Issue16Result, issue16Rows } from './issue16.js';
import type { MachineInfo } from './machine.js';
import type { MemoryResult } from './memory.js';
import type { ProfileResult } from './profile-run.js';
import type { RequestsResult } from './requests.js';
import { fmt, markdownTable, ratio, table } from './stats.js';
import type { ThroughputResult } from './throughput.js';
import type { TtftResult } from './ttft.js';

export interface Results {
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
  /** Issue 16's figures (absent in runs from before that mode). */
  issue16?: Issue16Result | null;
  targets: Array<{ target: string; measured: string; met: boolean | null }>;
  failures: string[];
}

export function evaluateTargets(r: Results): Results['targets'] {
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

export function render(r: Results, md = false): string {
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
  if (r.issue16) {
    const i = r.issue16;
    const met = (m: boolean | null) => (m === null ? '' : m ? 'yes' : 'NO');
    if (i.baseline) {
      // Before and after in one run: the baseline build took its turn in every measurement.
      const rows = issue16Rows(i).map((x) => [x.figure, x.mode, x.baseline, x.gateway, x.direct, x.baselineAdded, x.added, x.target, met(x.met), x.otherCpu]);
      const title = `5. Issue 16 figures, baseline ${i.baseline.ref} (${i.baseline.commit}) against this build, interleaved in one run (emulator 0 ms/token unless said; RSS without forced GC)`;
      parts.push(tbl(title, ['figure', 'mode', 'baseline', 'this build', 'direct', 'baseline added / ×', 'added / ×', 'target', 'met', 'other CPU % (baseline / this / direct)'], rows));
    } else {
      const rows = issue16Rows(i).map((x) => [x.figure, x.mode, x.gateway, x.direct, x.added, x.target, met(x.met), x.otherCpu]);
      parts.push(tbl(`5. Issue 16 figures (a gateway started for them; emulator 0 ms/token unless said; RSS without forced GC)`, ['figure', 'mode', 'gateway', 'direct', 'added / ×', 'target', 'met', 'other CPU % (this / direct)'], rows));
    }
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

export function updateReadme(markdown: string): void {
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
