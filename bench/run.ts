// `npm run bench`: the gateway against talking to Ollama directly, side by side, in one run.
// See bench/README.md for what each figure means and how it is computed.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'graphql-ws';
import { type Baseline, prepareBaseline } from './lib/baseline.js';
import { DirectTarget, gatewayRequest } from './lib/clients.js';
import { type BenchConfig, PHASES, type Phase } from './lib/config.js';
import { LONG_MODEL, PROMPT, RESULTS, ROOT, SHORT_MODEL, cfg, log, stamp, startedAt } from './lib/context.js';
import { type Targets, drain, runnerFor, waitQuiet } from './lib/harness.js';
import { issue16Phase } from './lib/issue16.js';
import { machineInfo } from './lib/machine.js';
import { memoryPhase } from './lib/memory.js';
import { type Env, type Gateway, closeSockets, createUserKey, gatewayEnv, openSockets, setTokenDelay, startEmulator, startGateway } from './lib/processes.js';
import { sleep } from './lib/procs.js';
import { profilePhase } from './lib/profile-run.js';
import { type Results, evaluateTargets, render, updateReadme } from './lib/report.js';
import { requestsRun } from './lib/requests.js';
import { fmt } from './lib/stats.js';
import { throughputRun } from './lib/throughput.js';
import { ttftRun } from './lib/ttft.js';

/** `tsx bench/run.ts --render [results.json]`: print a stored run again and rewrite latest.md (and the README block for full runs). */
function renderOnly(file: string): void {
  const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
  const markdown = render(r, true);
  writeFileSync(join(RESULTS, 'latest.md'), `${markdown}\n`);
  if (!r.quick && cfg.updateReadme !== false) updateReadme(markdown);
  process.stdout.write(`${render(r)}\n`);
}

async function main(): Promise<void> {
  const renderAt = process.argv.indexOf('--render');
  if (renderAt >= 0) return renderOnly(process.argv[renderAt + 1] ?? join(RESULTS, 'latest.json'));
  // `--mode a,b`: run only these scenario sets (e.g. `npm run bench -- --mode issue16`), as BENCH_PHASES does.
  const modeAt = process.argv.indexOf('--mode');
  if (modeAt >= 0) {
    const names = (process.argv[modeAt + 1] ?? '').split(',').map((s) => s.trim());
    if (!names.length || names.some((n) => !(PHASES as readonly string[]).includes(n))) throw new Error(`--mode: a comma list of ${PHASES.join(', ')}`);
    cfg.phases.clear();
    for (const n of names) cfg.phases.add(n as Phase);
  }
  // `--baseline <git-ref>`: issue 16's rows also on that ref's build, interleaved with this one.
  const baselineAt = process.argv.indexOf('--baseline');
  const baselineRef = baselineAt >= 0 ? process.argv[baselineAt + 1] : undefined;
  if (baselineAt >= 0 && (!baselineRef || baselineRef.startsWith('--'))) throw new Error('--baseline: a git ref (commit, branch or tag)');
  if (baselineRef && !cfg.phases.has('issue16')) throw new Error('--baseline compares the issue16 rows: include issue16 in --mode');
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first (npm run bench does).');
  mkdirSync(RESULTS, { recursive: true });
  const tmp = mkdtempSync(join(cfg.dbDir, 'gateway-bench-'));
  const machine = machineInfo(ROOT, tmp);
  log(`${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; temp dir ${tmp}${cfg.quick ? '; QUICK mode' : ''}`);
  const adminKey = `bench-admin-${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('hex')}`;
  const dbPath = join(tmp, 'gateway.sqlite');

  const results: Results = {
    startedAt: startedAt.toISOString(),
    quick: cfg.quick,
    machine,
    config: { ...cfg, phases: [...cfg.phases] } as BenchConfig & { phases: string[] },
    gatewayConfig: { set: [], missing: [] },
    ttft: [],
    throughput: [],
    requests: [],
    memory: null,
    profile: null,
    issue16: null,
    targets: [],
    failures: [],
  };

  const baseline: Baseline | undefined = baselineRef ? prepareBaseline(baselineRef) : undefined;
  const emu = await startEmulator(tmp);
  log(`emulator ${emu.url} (pid ${emu.child.pid})`);
  const gwEnv = gatewayEnv(dbPath, emu.url, adminKey);
  results.gatewayConfig = { set: gwEnv.set, missing: gwEnv.missing };
  if (gwEnv.missing.length) log(`src/config.ts does not know ${gwEnv.missing.join(', ')}: not set`);
  const env: Env = { tmp, dbPath, emulator: emu.child, emulatorUrl: emu.url, adminKey, gatewayEnv: gwEnv.env, configVars: results.gatewayConfig };
  const direct = new DirectTarget(emu.url);
  let gw: Gateway | undefined;
  let ws: Client[] = [];

  try {
    gw = await startGateway(env, 'main');
    log(`gateway ${gw.url} (pid ${gw.child.pid}), logs at ${gw.logFile}`);
    const key = await createUserKey(gw, adminKey);
    const streamPhases = cfg.phases.has('ttft') || cfg.phases.has('throughput');
    const maxLevel = Math.max(4, streamPhases && cfg.modes.includes('ws') ? Math.max(...cfg.levels, ...cfg.ttftLevels) : 0);
    ws = (await openSockets(gw, key, maxLevel)).clients;
    const t: Targets = { emulatorPid: emu.child.pid, direct, gateway: gw, key, ws };
    /** A gateway still relaying a backlog nobody reads is restarted, so the next run is not measured against it. */
    const restartIfBusy = async (drainMs: number): Promise<boolean> => {
      if (drainMs < cfg.drainMaxMs || !gw) return false;
      log(`gateway still busy ${drainMs} ms after the clients left: restarting it`);
      await closeSockets(ws);
      await gw.child.stop(3000);
      gw = await startGateway(env, 'main');
      ws = (await openSockets(gw, key, maxLevel)).clients;
      t.gateway = gw;
      t.ws = ws;
      return true;
    };

    // Warm-up: JIT both processes on every path before anything is measured.
    await setTokenDelay(env, 0);
    for (const mode of cfg.modes) {
      const run = runnerFor(mode, t);
      for (let i = 0; i < (cfg.quick ? 2 : 5); i++) {
        await Promise.all([0, 1, 2, 3].map((w) => run(w, { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 16 }, { tokens: 0, events: 0 }, new AbortController().signal)));
        await Promise.all([0, 1].map((w) => run(w, { model: LONG_MODEL, prompt: PROMPT, maxTokens: 1000 }, { tokens: 0, events: 0 }, new AbortController().signal)));
      }
    }
    for (let i = 0; i < 50; i++) await Promise.all([direct.request({ model: SHORT_MODEL, prompt: PROMPT, maxTokens: 8 }), gatewayRequest(gw.graphqlUrl, key, { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 8 })]);
    log('warm-up done');

    if (cfg.phases.has('ttft')) {
      await setTokenDelay(env, cfg.ttftTokenDelayMs);
      for (const level of cfg.ttftLevels) {
        for (const mode of cfg.modes) {
          try {
            await waitQuiet([emu.child.pid, gw.child.pid]);
            const r = await ttftRun(mode, level, t);
            r.drainMs = await drain([emu.child.pid, gw.child.pid], cfg.drainMaxMs);
            r.restarted = await restartIfBusy(r.drainMs);
            results.ttft.push(r);
            log(`ttft ${String(level).padStart(4)} ${mode.padEnd(6)} n=${r.samples} p50 ${fmt(r.p50, 3)} p99 ${fmt(r.p99, 3)} ms, ${fmt(r.backgroundTokensPerSec, 0)} background tokens/s (${r.backgroundStreams} streams), others ${fmt(r.otherCpuPct, 0)} %, drained in ${r.drainMs} ms${r.errors.count ? `, ${r.errors.count} errors ${JSON.stringify(r.errors.kinds)}` : ''}`);
          } catch (e) {
            results.failures.push(`ttft ${mode} @${level}: ${String(e)}`);
            log(`ttft ${mode} @${level} failed: ${String(e)}`);
          }
        }
      }
    }

    if (cfg.phases.has('throughput')) {
      await setTokenDelay(env, 0);
      for (const level of cfg.levels) {
        for (const mode of cfg.modes) {
          try {
            await waitQuiet([emu.child.pid, gw.child.pid]);
            const r = await throughputRun(mode, level, t, emu.child.pid);
            r.drainMs = await drain([emu.child.pid, gw.child.pid], cfg.drainMaxMs);
            r.restarted = await restartIfBusy(r.drainMs);
            results.throughput.push(r);
            log(`throughput ${String(level).padStart(4)} ${mode.padEnd(6)} ${fmt(r.tokensPerSec, 0)} tokens/s${r.gatewayCpuUsPerToken !== null ? `, gw ${fmt(r.gatewayCpuUsPerToken, 2)} µs/token (${fmt(r.gatewayCpuPct, 0)} % CPU)` : ''}, emu ${fmt(r.emulatorCpuPct, 0)} %, client ${fmt(r.clientCpuPct, 0)} %, others ${fmt(r.otherCpuPct, 0)} %, drained in ${r.drainMs} ms${r.errors.count ? `, ${r.errors.count} errors ${JSON.stringify(r.errors.kinds)}` : ''}`);
          } catch (e) {
            results.failures.push(`throughput ${mode} @${level}: ${String(e)}`);
            log(`throughput ${mode} @${level} failed: ${String(e)}`);
          }
        }
      }
    }

    if (cfg.phases.has('requests')) {
      await setTokenDelay(env, 0);
      for (const clients of cfg.requestLevels) {
        for (const mode of ['direct', 'gateway-http'] as const) {
          try {
            await waitQuiet([emu.child.pid, gw.child.pid]);
            const r = await requestsRun(mode, clients, t, dbPath);
            await drain([emu.child.pid, gw.child.pid], cfg.drainMaxMs);
            results.requests.push(r);
            log(`requests ${String(clients).padStart(4)} ${mode.padEnd(12)} ${fmt(r.requestsPerSec, 0)} req/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms${r.rowsLogged !== null ? `, ${r.rowsLogged} rows logged` : ''}${r.errors ? `, ${r.errors} errors ${JSON.stringify(r.errorKinds)}` : ''}`);
          } catch (e) {
            results.failures.push(`requests ${mode} @${clients}: ${String(e)}`);
          }
          await sleep(300);
        }
      }
    }

    await closeSockets(ws);
    ws = [];
    await gw.child.stop();
    gw = undefined;

    if (cfg.phases.has('issue16')) {
      try {
        results.issue16 = await issue16Phase(env, key, direct, baseline);
      } catch (e) {
        results.failures.push(`issue16: ${String(e)}`);
        log(`issue 16 phase failed: ${String(e)}`);
      }
    }

    if (cfg.phases.has('memory')) {
      try {
        results.memory = await memoryPhase(env, key);
      } catch (e) {
        results.failures.push(`memory: ${String(e)}`);
        log(`memory phase failed: ${String(e)}`);
      }
    }

    if (cfg.phases.has('profile')) {
      try {
        results.profile = await profilePhase(env, key, direct);
        log(`profile written to ${results.profile.profileFile}`);
      } catch (e) {
        results.failures.push(`profile: ${String(e)}`);
        log(`profile phase failed: ${String(e)}`);
      }
    }
  } finally {
    await closeSockets(ws);
    await gw?.child.stop();
    await emu.child.stop();
    baseline?.remove();
  }

  const finished = new Date();
  results.finishedAt = finished.toISOString();
  results.durationSec = Math.round((finished.getTime() - startedAt.getTime()) / 1000);
  results.targets = evaluateTargets(results);

  const name = `${stamp(startedAt)}${cfg.quick ? '-quick' : ''}`;
  const json = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(join(RESULTS, `${name}.json`), json);
  writeFileSync(join(RESULTS, 'latest.json'), json);
  const markdown = render(results, true);
  writeFileSync(join(RESULTS, `${name}.md`), `${markdown}\n`);
  writeFileSync(join(RESULTS, 'latest.md'), `${markdown}\n`);
  if (cfg.updateReadme) updateReadme(markdown);
  process.stdout.write(`${render(results)}\n\nResults: bench/results/${name}.json (and latest.json, latest.md)\n`);

  if (!cfg.keepTemp) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
  // Old runs pile up: keep the 20 newest result files of each kind and the 5 newest profiles.
  // Quick runs and full runs are counted apart, so a series of quick runs never removes full
  // runs (which are committed).
  const files = readdirSync(RESULTS).filter((f) => /^\d{4}-.*\.(json|md)$/.test(f)).sort();
  for (const ext of ['.json', '.md']) {
    for (const quick of [true, false]) {
      const mine = files.filter((f) => f.endsWith(ext) && f.endsWith(`-quick${ext}`) === quick);
      for (const f of mine.slice(0, Math.max(0, mine.length - 20))) rmSync(join(RESULTS, f));
    }
  }
  const profiles = join(RESULTS, 'profiles');
  if (existsSync(profiles)) {
    const byAge = readdirSync(profiles)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => ({ f, at: statSync(join(profiles, f)).mtimeMs }))
      .sort((a, b) => a.at - b.at);
    for (const { f } of byAge.slice(0, Math.max(0, byAge.length - 5))) rmSync(join(profiles, f));
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
