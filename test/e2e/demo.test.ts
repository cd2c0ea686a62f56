// `npm run demo` as a user runs it: phases before the answer, one DONE line with real usage and credits.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'gateway-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the demo until it prints its last line (it then waits for Ctrl-C), and stops it. */
function runDemo(): Promise<{ stdout: string; stderr: string; finished: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/demo.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', DB_PATH: join(dir, 'demo.sqlite'), DATABASE_URL: '', REDIS_URL: '', EMULATOR_TOKEN_DELAY_MS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let finished = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (!finished && stdout.includes('Ctrl-C to stop.')) {
        finished = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ stdout, stderr, finished });
    });
  });
}

describe('npm run demo', () => {
  it('prints the phases, then the answer, then one DONE line with usage and credits', async () => {
    const { stdout, stderr, finished } = await runDemo();
    expect(finished, stderr).toBe(true);
    const stream = stdout.slice(stdout.indexOf('Streaming a sample answer'), stdout.indexOf('Try it yourself'));
    expect(stream.match(/DONE:/g)).toHaveLength(1);
    expect(stream).not.toContain('null');
    expect(stream).toMatch(/DONE: usage \{"promptTokens":\d+,"completionTokens":[1-9]\d*\}, credits charged \d+/);
    // Phase lines, then the answer's text, then DONE.
    const [, phases, answer] = stream.match(/\n((?:\[[A-Z_]+(?: #\d+)?\]\n)+)([^]*?)\n\nDONE:/) ?? [];
    expect(phases?.trim().split('\n').at(-1)).toBe('[GENERATING]');
    expect(answer?.trim().length).toBeGreaterThan(0);
    expect(answer).not.toMatch(/\[[A-Z_]+\]|DONE/);
  }, 90_000);
});
