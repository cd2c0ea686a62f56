// CLI entry (`npm run emulator` / `tsx src/emulator/main.ts`): an Ollama stand-in for people without
// a GPU. Env: EMULATOR_HOST (127.0.0.1), EMULATOR_PORT (11434), EMULATOR_TOKEN_DELAY_MS (20).

import { startEmulator } from './server.js';

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const emulator = await startEmulator({
  host: process.env.EMULATOR_HOST || '127.0.0.1',
  port: envNumber('EMULATOR_PORT', 11434),
  tokenDelayMs: envNumber('EMULATOR_TOKEN_DELAY_MS', 20),
});
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
