// The processes of a run: the bench emulator and gateways (production build), and the key and
// websockets the clients use.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'graphql-ws';
import { connectWs, gql } from './clients.js';
import { ISSUE16_STREAM_TOKENS, NUM_PARALLEL, ROOT, cfg, log } from './context.js';
import { type Child, firstLine, freePort, spawnNode, waitForHttp } from './procs.js';

export interface Gateway {
  child: Child;
  label: string;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  logFile: string;
  inspectPort?: number;
}

export interface Env {
  tmp: string;
  dbPath: string;
  emulator: Child;
  emulatorUrl: string;
  adminKey: string;
  gatewayEnv: Record<string, string>;
  configVars: { set: string[]; missing: string[] };
}

/** Environment for children: ours minus NODE_OPTIONS (tsx's loader must not reach the gateway). */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  delete base.NODE_OPTIONS;
  return { ...base, ...extra };
}

export async function startEmulator(tmp: string): Promise<{ child: Child; url: string }> {
  const child = spawnNode(['--import', 'tsx', join('bench', 'emulator.ts')], {
    cwd: ROOT,
    env: childEnv({ BENCH_EMU_TOKEN_DELAY_MS: '0', BENCH_LONG_REPLY_TOKENS: String(Math.max(cfg.streamTokens, ISSUE16_STREAM_TOKENS) + 16), BENCH_EMU_NUM_PARALLEL: String(NUM_PARALLEL) }),
    logFile: join(tmp, 'emulator.log'),
    stdoutPipe: true,
  });
  const { url } = JSON.parse(await firstLine(child)) as { url: string };
  return { child, url };
}

export async function setTokenDelay(env: Env, ms: number): Promise<void> {
  const res = await fetch(`${env.emulatorUrl}/__emulator/token-delay`, { method: 'POST', body: JSON.stringify({ ms }) });
  if (!res.ok) throw new Error(`could not set the emulator token delay: ${res.status}`);
  await res.arrayBuffer();
}

/** Gateway variables the benchmark wants, each set only if src/config.ts knows it. */
export function gatewayEnv(dbPath: string, emulatorUrl: string, adminKey: string, root = ROOT): { env: Record<string, string>; set: string[]; missing: string[] } {
  const wanted: Record<string, string> = {
    HOST: '127.0.0.1',
    DB_PATH: dbPath,
    OLLAMA_HOST: emulatorUrl,
    ADMIN_API_KEY: adminKey,
    DEFAULT_CREDITS: '1000000000',
    LOG_LEVEL: 'info',
    OLLAMA_NUM_PARALLEL: String(NUM_PARALLEL),
    RATE_LIMIT_REQUESTS_PER_MINUTE: '0',
    RATE_LIMIT_TOKENS_PER_MINUTE: '0',
    MAX_CONCURRENT_STREAMS_PER_KEY: '0',
    // Per-address and per-key connection caps: every benchmark client is one key on 127.0.0.1.
    MAX_SOCKETS_PER_IP: '0',
    MAX_CONNECTIONS_PER_IP: '0',
    MAX_SUBSCRIPTIONS_PER_SOCKET: '0',
    MAX_SOCKETS_PER_KEY: '0',
    MAX_CONCURRENT_STREAMS_PER_IP: '0',
    NVIDIA_SMI_PATH: 'off',
    SHUTDOWN_GRACE_MS: '2000',
  };
  const source = readFileSync(join(root, 'src', 'config.ts'), 'utf8');
  const env: Record<string, string> = { NODE_ENV: 'production' };
  const set: string[] = [];
  const missing: string[] = [];
  for (const [k, v] of Object.entries(wanted)) {
    if (source.includes(k)) {
      env[k] = v;
      set.push(k);
    } else missing.push(k);
  }
  return { env, set, missing };
}

/** Starts `<root>/dist/main.js` (root: this checkout, or a baseline's worktree). */
export async function startGateway(env: Env, label: string, nodeArgs: string[] = [], inspect = false, root = ROOT): Promise<Gateway> {
  const port = await freePort();
  const inspectPort = inspect ? await freePort() : undefined;
  const logFile = join(env.tmp, `gateway-${label}.log`);
  const args = [...nodeArgs, ...(inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : []), join('dist', 'main.js')];
  const child = spawnNode(args, { cwd: root, env: childEnv({ ...env.gatewayEnv, PORT: String(port) }), logFile });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/health`, 60_000, () => child.proc.exitCode === null);
  } catch (e) {
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
    throw new Error(`gateway (${label}) did not start: ${String(e)}\n${tail}`);
  }
  return { child, label, url, graphqlUrl: `${url}/graphql`, wsUrl: `ws://127.0.0.1:${port}/graphql`, logFile, inspectPort };
}

export async function createUserKey(gw: Gateway, adminKey: string): Promise<string> {
  const mutation = (withLimits: boolean) => `mutation {
    createApiKey(input: { name: "bench", role: USER, credits: 1000000000${withLimits ? ', limits: { requestsPerMinute: 0, tokensPerMinute: 0, maxConcurrentStreams: 0 }' : ''} }) { secret }
  }`;
  try {
    return (await gql<{ createApiKey: { secret: string } }>(gw.graphqlUrl, adminKey, mutation(true))).createApiKey.secret;
  } catch (e) {
    log(`createApiKey with limits failed (${String(e)}); retrying without limits`);
    return (await gql<{ createApiKey: { secret: string } }>(gw.graphqlUrl, adminKey, mutation(false))).createApiKey.secret;
  }
}

/** Opens `n` authenticated graphql-ws connections, `batch` at a time. */
export async function openSockets(gw: Gateway, key: string, n: number, batch = 100): Promise<{ clients: Client[]; ms: number }> {
  const clients: Client[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) {
    const size = Math.min(batch, n - i);
    clients.push(...(await Promise.all(Array.from({ length: size }, () => connectWs(gw.wsUrl, key)))));
  }
  return { clients, ms: performance.now() - t0 };
}

export async function closeSockets(clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => Promise.resolve(c.dispose()).catch(() => {})));
}
