import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/server.js';
import { until } from '../helpers/wait.js';

interface Breakdown {
  spaces: Record<string, { used: number; resident: number }>;
}

// src/services/platform/young-generation.ts: start-up's burst of allocation must not leave V8's
// young generation at its maximum (2 × 16 MiB) in an idle gateway. Without the hold it is 16–32 MiB
// resident after start; with it, the initial 1 MiB semi-spaces (2 MiB).
describe('the young generation of a gateway idle after start (src/main.ts)', () => {
  it('stays at a few MiB instead of growing to its maximum during start-up', { timeout: 120_000 }, async () => {
    const emulator = await startEmulator({ tokenDelayMs: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'young-generation-'));
    const breakdownFile = join(dir, 'breakdown.json');
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './scripts/memory-breakdown.mjs', 'src/main.ts'], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DB_PATH: join(dir, 'gw.sqlite'), OLLAMA_HOST: emulator.url, NVIDIA_SMI_PATH: 'off', LOG_LEVEL: 'info', MEMORY_BREAKDOWN_FILE: breakdownFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      await until(() => /"url":"(http:[^"]+)\/graphql"/.test(out), 60_000, 'the gateway to log its URL');
      const url = /"url":"(http:[^"]+)\/graphql"/.exec(out)![1]!;
      // It serves (the hold is released after start, not left on for good: not observable from here).
      expect((await fetch(`${url}/health`)).status).toBe(200);

      child.kill('SIGUSR2'); // memory-breakdown.mjs writes the heap spaces
      const breakdown = await until(() => parsedIfPresent(breakdownFile), 30_000, 'the memory breakdown');
      const young = breakdown.spaces.new_space;
      expect(young).toBeDefined();
      expect(young!.resident).toBeLessThanOrEqual(8);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function parsedIfPresent(file: string): Breakdown | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Breakdown;
  } catch {
    return null;
  }
}
