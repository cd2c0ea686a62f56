import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/server.js';
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway-process.js';
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
    let gateway: GatewayProcess | undefined;
    try {
      gateway = await startGatewayProcess({ ollamaUrl: emulator.url, dbFile: join(dir, 'gw.sqlite'), preload: ['./scripts/memory-breakdown.mjs'], env: { MEMORY_BREAKDOWN_FILE: breakdownFile } });
      const { url, child } = gateway;
      // It serves (the hold is released after start, not left on for good: not observable from here).
      expect((await fetch(`${url}/health`)).status).toBe(200);

      child.kill('SIGUSR2'); // memory-breakdown.mjs writes the heap spaces
      const breakdown = await until(() => parsedIfPresent(breakdownFile), 30_000, 'the memory breakdown');
      const young = breakdown.spaces.new_space;
      expect(young).toBeDefined();
      expect(young!.resident).toBeLessThanOrEqual(8);
    } finally {
      await gateway?.stop();
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
