// The first-token floor: how much time any Node.js relay on this stack adds to the first token,
// against the gateway. One run, interleaved like issue 16's first-token figure: 1-token streams at
// 0 ms/token, one at a time, taking turns between
// - direct: the `ollama` client straight to the emulator;
// - floor graphql-ws: graphql-ws's `useServer` with a plain graphql-js schema (bench/floor-server.ts);
// - floor yoga + graphql-ws: the same schema through yoga's envelop pipeline, no plugins;
// - gateway: the production build (dist/, `npm run build` first) over graphql-ws.
// All relays use the gateway's transport to Ollama and the same client (graphql-ws createClient).
//
//   npx tsx bench/floor.ts                      # 300 rounds; FLOOR_ROUNDS=n for another count
//   npx tsx bench/floor.ts --baseline <ref>     # also that ref's build as a lane (a worktree, built)
//
// Writes bench/results/floor-<timestamp>.md and .json, and prints the table.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'graphql-ws';
import { type Baseline, prepareBaseline } from './lib/baseline.js';
import { DirectTarget, connectWs, wsStream } from './lib/clients.js';
import { PROMPT, RESULTS, ROOT, SHORT_MODEL, cfg, log, stamp, startedAt } from './lib/context.js';
import { type Runner, interleavedFirstTokens, otherCpuMeter } from './lib/harness.js';
import { machineInfo } from './lib/machine.js';
import { type Env, childEnv, closeSockets, createUserKey, gatewayEnv, setTokenDelay, startEmulator, startGateway } from './lib/processes.js';
import { type Child, firstLine, spawnNode } from './lib/procs.js';
import { fmt, markdownTable, round, summary, table } from './lib/stats.js';

const ROUNDS = Number(process.env.FLOOR_ROUNDS ?? 300);
const WARMUP_ROUNDS = 30;
const baselineArg = process.argv.indexOf('--baseline');
const baselineRef = baselineArg > 0 ? process.argv[baselineArg + 1] : undefined;

if (baselineArg > 0 && (!baselineRef || baselineRef.startsWith('--'))) throw new Error('--baseline: a git ref (commit, branch or tag)');

interface Lane {
  name: string;
  run: Runner;
}

async function startFloor(kind: string, ollamaUrl: string, tmp: string): Promise<{ child: Child; wsUrl: string }> {
  const child = spawnNode(['--import', 'tsx', join('bench', 'floor-server.ts'), kind], { cwd: ROOT, env: childEnv({ FLOOR_OLLAMA_URL: ollamaUrl }), logFile: join(tmp, `floor-${kind}.log`), stdoutPipe: true });
  const { url } = JSON.parse(await firstLine(child)) as { url: string };
  return { child, wsUrl: `${url.replace('http', 'ws')}/graphql` };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(cfg.dbDir, 'gateway-floor-'));
  const machine = machineInfo(ROOT, tmp);
  const adminKey = `bench-admin-${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('hex')}`;
  const emu = await startEmulator(tmp);
  const gwEnv = gatewayEnv(join(tmp, 'gateway.sqlite'), emu.url, adminKey);
  const env: Env = { tmp, dbPath: join(tmp, 'gateway.sqlite'), emulator: emu.child, emulatorUrl: emu.url, adminKey, gatewayEnv: gwEnv.env, configVars: { set: gwEnv.set, missing: gwEnv.missing } };
  const children: Child[] = [emu.child];
  const baseline: Baseline | undefined = baselineRef ? prepareBaseline(baselineRef) : undefined;
  const clients: Client[] = [];
  try {
    await setTokenDelay(env, 0);
    const gw = await startGateway(env, 'floor');
    children.push(gw.child);
    const key = await createUserKey(gw, adminKey);
    const plain = await startFloor('graphql-ws', emu.url, tmp);
    const yoga = await startFloor('yoga-ws', emu.url, tmp);
    children.push(plain.child, yoga.child);
    const [plainWs, yogaWs, gwWs] = await Promise.all([connectWs(plain.wsUrl, 'none'), connectWs(yoga.wsUrl, 'none'), connectWs(gw.wsUrl, key)]);
    clients.push(plainWs, yogaWs, gwWs);
    let baseWs: Client | undefined;
    if (baseline) {
      // Its own database file: the two gateways must not share one writer queue.
      const base = await startGateway({ ...env, gatewayEnv: gatewayEnv(join(tmp, 'baseline.sqlite'), emu.url, adminKey, baseline.root).env }, 'floor-baseline', [], false, baseline.root);
      children.push(base.child);
      baseWs = await connectWs(base.wsUrl, await createUserKey(base, adminKey));
      clients.push(baseWs);
    }
    const direct = new DirectTarget(emu.url);
    const overWs = (client: Client): Runner => (_w, spec, sink, signal) => wsStream(client, spec, sink, signal);
    const lanes: Lane[] = [
      { name: 'direct (ollama client)', run: (_w, spec, sink, signal) => direct.stream(spec, sink, signal) },
      { name: 'floor: graphql-ws + graphql-js', run: overWs(plainWs) },
      { name: 'floor: yoga envelop + graphql-ws', run: overWs(yogaWs) },
      { name: 'gateway (ws)', run: overWs(gwWs) },
    ];
    if (baseline && baseWs) lanes.push({ name: `gateway (ws), baseline ${baseline.ref} (${baseline.commit.slice(0, 7)})`, run: overWs(baseWs) });
    const other = otherCpuMeter(children.map((c) => c.pid));
    log(`floor: ${ROUNDS} rounds of ${lanes.length} lanes`);
    const measured = await interleavedFirstTokens(
      lanes.map((l) => l.run),
      { model: SHORT_MODEL, prompt: PROMPT, maxTokens: 1 },
      WARMUP_ROUNDS,
      ROUNDS,
    );
    const otherCpuPct = other();
    const direct50 = summary(measured[0].samples).p50;
    const rows = lanes.map((l, k) => {
      const s = summary(measured[k].samples);
      return { lane: l.name, n: s.n, p50: round(s.p50, 3), p90: round(s.p90, 3), added: k === 0 ? null : round(s.p50 - direct50, 3), errors: measured[k].errors };
    });
    const head = ['path', 'n', 'first token p50, ms', 'p90, ms', 'added p50 vs direct, ms', 'errors'];
    const cells = rows.map((x) => [x.lane, x.n, fmt(x.p50, 3), fmt(x.p90, 3), x.added === null ? '' : `+${fmt(x.added, 3)}`, x.errors]);
    const title = `First-token floor: 1-token streams at 0 ms/token, ${ROUNDS} rounds interleaved; other CPU ${fmt(otherCpuPct, 0)} % of a core`;
    process.stdout.write(`${table(title, head, cells)}\n`);
    const name = `floor-${stamp(startedAt)}`;
    const md = `# ${title}\n\nMachine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; gateway ${machine.gitCommit ?? ''}\n\n${markdownTable('', head, cells)}\n`;
    writeFileSync(join(RESULTS, `${name}.md`), md);
    writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify({ startedAt, machine: { cpuModel: machine.cpuModel, cores: machine.cores, node: machine.node, gitCommit: machine.gitCommit }, rounds: ROUNDS, otherCpuPct, rows }, null, 2)}\n`);
    log(`written bench/results/${name}.md`);
  } finally {
    await closeSockets(clients);
    for (const c of children.reverse()) await c.stop(5000);
    rmSync(tmp, { recursive: true, force: true });
    baseline?.remove();
  }
}

await main();
