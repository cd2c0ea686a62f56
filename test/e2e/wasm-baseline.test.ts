import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/server.js';
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway-process.js';
import { until } from '../helpers/wait.js';

const rssMiB = (pid: number) => Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

// src/services/platform/wasm-baseline.ts: undici's HTTP parser (WebAssembly) stays on V8's
// baseline compiler. With V8's default tiering, about a second after the first request to Ollama
// a background compile left the gateway about 9 MiB larger for good (measured +9 to +11 MiB
// after the first /health; with the flag about +2.5 MiB).
describe('a gateway after its first request to Ollama (src/main.ts)', () => {
  it('does not grow by a tiered-up WebAssembly parser', { timeout: 120_000 }, async () => {
    const emulator = await startEmulator({ tokenDelayMs: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'wasm-baseline-'));
    let gateway: GatewayProcess | undefined;
    try {
      gateway = await startGatewayProcess({ ollamaUrl: emulator.url, dbFile: join(dir, 'gw.sqlite') });
      const { url } = gateway;
      const pid = gateway.child.pid!;
      // Start-up's own settling first: RSS steady over half a second.
      let before = rssMiB(pid);
      await until(
        async () => {
          await new Promise((r) => setTimeout(r, 500));
          const now = rssMiB(pid);
          const steady = Math.abs(now - before) < 0.5;
          before = now;
          return steady;
        },
        30_000,
        'RSS to settle after start',
      );
      const health = (await (await fetch(`${url}/health`)).json()) as { upstream: boolean };
      expect(health.upstream).toBe(true); // the request reached Ollama through undici
      // V8 tiers up within a second or two of the first request; watch for five.
      let grown = 0;
      for (let waited = 0; waited < 5000; waited += 250) {
        await new Promise((r) => setTimeout(r, 250));
        grown = Math.max(grown, rssMiB(pid) - before);
      }
      expect(grown).toBeLessThan(6);
    } finally {
      await gateway?.stop();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
