// CLI entry (`npm run emulator` / `tsx src/emulator/main.ts`): an Ollama stand-in for people without
// a GPU. Env: EMULATOR_HOST (127.0.0.1), EMULATOR_PORT (11434), EMULATOR_TOKEN_DELAY_MS (20), and
// Ollama's scheduling settings under the emulator's prefix (defaults as in Ollama's envconfig):
// EMULATOR_NUM_PARALLEL (1), EMULATOR_MAX_QUEUE (512), EMULATOR_MAX_LOADED_MODELS (3),
// EMULATOR_VRAM_BYTES (24 GiB; 0 = CPU only), EMULATOR_KEEP_ALIVE_SECONDS (300; negative = forever),
// and EMULATOR_PULL_VERIFY_MS (the silent digest check of a pull).

import { startEmulator } from './server.js';

function envNumber(name: string, fallback: number, allowNegative = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || (n < 0 && !allowNegative)) {
    console.error(`${name} must be a ${allowNegative ? '' : 'non-negative '}number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const optional = (name: string, allowNegative = false) =>
  process.env[name]?.trim() ? envNumber(name, 0, allowNegative) : undefined;

let emulator;
try {
  emulator = await startEmulator({
    host: process.env.EMULATOR_HOST || '127.0.0.1',
    port: envNumber('EMULATOR_PORT', 11434),
    tokenDelayMs: envNumber('EMULATOR_TOKEN_DELAY_MS', 20),
    numParallel: optional('EMULATOR_NUM_PARALLEL'),
    maxQueue: optional('EMULATOR_MAX_QUEUE'),
    maxLoadedModels: optional('EMULATOR_MAX_LOADED_MODELS'),
    vramBytes: optional('EMULATOR_VRAM_BYTES'),
    defaultKeepAliveSeconds: optional('EMULATOR_KEEP_ALIVE_SECONDS', true),
    pullVerifyMs: optional('EMULATOR_PULL_VERIFY_MS'),
  });
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(2);
}
console.log(`Ollama emulator listening on ${emulator.url}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    emulator.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
}
