// Child process: the Ollama emulator with two benchmark models, on loopback. Started by bench/run.ts
// as `node --import tsx bench/emulator.ts`; prints one JSON line {"url": ...} once listening.
// Env: BENCH_EMU_PORT (0 = any), BENCH_EMU_TOKEN_DELAY_MS (0), BENCH_LONG_REPLY_TOKENS (8192),
// BENCH_EMU_NUM_PARALLEL (1024).
// The token delay is changed between phases through the emulator's control route
// POST /__emulator/token-delay {"ms": n}.

import { type EmulatedModel, type EmulatorOptions, startEmulator } from '../src/emulator/server.js';
import { tokenize } from '../src/emulator/script.js';

const VOCAB = [
  ' the', ' gateway', ' relays', ' tokens', ' from', ' a', ' local', ' model', ' to', ' clients', ' over',
  ' one', ' port', ' and', ' every', ' answer', ' is', ' stored', ' before', ' final', ' event', ' sent',
  ' streaming', ' latency', ' matters', ' throughput', ' café', ' naïve', ' résumé', ' 🦙', ' — ', ' 42',
  ' GraphQL', ' subscription', ' websocket', ' credits', ' usage', ' log', ' in', ' of', ' it', ' we',
];

/** A deterministic reply of exactly `count` emulator tokens (words with their leading space, punctuation). */
export function benchReply(count: number): string {
  let seed = 0x2545f491;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  const parts: string[] = ['Benchmark'];
  let n = 1;
  while (n < count) {
    const r = rnd();
    if (r % 11 === 0 && n + 1 < count) {
      parts.push(r % 2 ? ',' : '.');
      n += 1;
    }
    parts.push(VOCAB[rnd() % VOCAB.length]);
    n += 1;
  }
  const text = parts.join('');
  const tokens = tokenize(text);
  return tokens.slice(0, count).join('');
}

function model(name: string, reply: string): EmulatedModel {
  return {
    name,
    size: 1_000_000_000,
    family: 'llama',
    parameterSize: '1B',
    quantizationLevel: 'Q4_K_M',
    capabilities: ['completion'],
    contextLength: 131_072,
    reply,
  };
}

const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return n;
};

const longTokens = num('BENCH_LONG_REPLY_TOKENS', 8192);
// numParallel (Ollama's OLLAMA_NUM_PARALLEL: slots per model) matches the gateway's, so neither side
// queues the other's streams. Passed through a loosely typed object: an emulator without the option
// ignores it, and this compiles with or without it in EmulatorOptions.
const options: Record<string, unknown> = {
  host: '127.0.0.1',
  port: num('BENCH_EMU_PORT', 0),
  tokenDelayMs: num('BENCH_EMU_TOKEN_DELAY_MS', 0),
  numParallel: num('BENCH_EMU_NUM_PARALLEL', 1024),
  // bench-bg: the background streams of the TTFT runs (~10 s at 10 ms/token). The emulator tokenizes and
  // hashes a whole reply when a request starts, so long replies make stream starts expensive for it.
  models: [model('bench-long:latest', benchReply(longTokens)), model('bench-short:latest', benchReply(64)), model('bench-bg:latest', benchReply(1000))],
  defaultKeepAliveSeconds: 3600,
};
const emulator = await startEmulator(options as EmulatorOptions);
process.stdout.write(`${JSON.stringify({ url: emulator.url, pid: process.pid })}\n`);

const stop = () => {
  emulator.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
