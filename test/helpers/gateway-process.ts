import { type ChildProcess, spawn } from 'node:child_process';
import { until } from './wait.js';

export interface GatewayProcess {
  child: ChildProcess;
  /** The gateway's base URL (http://127.0.0.1:port), from its "listening" log line. */
  url: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * `src/main.ts` as its own process (through tsx), on port 0 and loopback, with `--import`s to load
 * before it (the memory and module recorders of scripts/), once it has logged its URL.
 */
export async function startGatewayProcess(opts: { ollamaUrl: string; dbFile: string; preload?: string[]; env?: Record<string, string> }): Promise<GatewayProcess> {
  const imports = (opts.preload ?? []).flatMap((p) => ['--import', p]);
  const child = spawn(process.execPath, ['--import', 'tsx', ...imports, 'src/main.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DB_PATH: opts.dbFile, OLLAMA_HOST: opts.ollamaUrl, NVIDIA_SMI_PATH: 'off', LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
  };
  const urlLine = /"url":"(http:[^"]+)\/graphql"/;
  try {
    await until(() => urlLine.test(out), 60_000, 'the gateway to log its URL');
  } catch (error) {
    await stop();
    throw error;
  }
  return { child, url: urlLine.exec(out)![1]!, output: () => out, stop };
}
