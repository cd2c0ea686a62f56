// The CLI entry as a child process: env configuration, printed URL, clean stop on SIGTERM/SIGINT.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';

function launch(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/emulator/main.ts'], {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`emulator exited early with ${code}: ${out}`)));
  });
  return { child, url };
}

// Child processes start under tsx (seconds on a busy machine): generous bounds that only stop a hang.
describe('tsx src/emulator/main.ts', { timeout: 90_000 }, () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('serves on EMULATOR_HOST/PORT with EMULATOR_TOKEN_DELAY_MS and stops on %s', async (signal) => {
    const { child, url } = launch({ EMULATOR_HOST: '127.0.0.1', EMULATOR_PORT: '0', EMULATOR_TOKEN_DELAY_MS: '15' });
    try {
      const base = await url;
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await (await fetch(`${base}/`)).text()).toBe('Ollama is running');
      const t0 = Date.now();
      const r = await fetch(`${base}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: 'llama3.2', prompt: 'x', stream: false, options: { num_predict: 5 } }),
      });
      expect((await r.json()).eval_count).toBe(5);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(70); // 5 tokens x 15 ms
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code] = await exited;
      expect(code).toBe(0);
      await expect(fetch(`${base}/`)).rejects.toThrow('fetch failed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('takes Ollama\'s scheduling settings from EMULATOR_* variables, and refuses bad ones', async () => {
    const { child, url } = launch({
      EMULATOR_PORT: '0',
      EMULATOR_NUM_PARALLEL: '2',
      EMULATOR_MAX_QUEUE: '7',
      EMULATOR_MAX_LOADED_MODELS: '1',
      EMULATOR_VRAM_BYTES: '0',
      EMULATOR_KEEP_ALIVE_SECONDS: '-1',
      EMULATOR_PULL_VERIFY_MS: '1500',
    });
    try {
      const config = await (await fetch(`${await url}/__emulator/config`)).json();
      expect(config).toEqual({ numParallel: 2, maxQueue: 7, maxLoadedModels: 1, vramBytes: 0, defaultKeepAliveSeconds: -1, tokenDelayMs: 20, pullVerifyMs: 1500 });
    } finally {
      child.kill('SIGKILL');
    }
    const bad = launch({ EMULATOR_PORT: '0', EMULATOR_NUM_PARALLEL: '0' });
    let err = '';
    bad.child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = await once(bad.child, 'exit');
    await bad.url.catch(() => undefined);
    expect(code).toBe(2);
    expect(err).toContain('numParallel must be an integer >= 1');
  });
});
