// Child processes (emulator, gateway) and what the benchmark reads about them from /proc.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process in milliseconds (from /proc/<pid>/stat, CLK_TCK resolution). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm may hold spaces and parentheses: the fields we need come after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time of this (benchmark client) process in ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The soft open-files limit of processes started from here (`ulimit -n`), and the hard one. */
export function fileLimits(): { soft: number; hard: number } {
  const read = (flag: string) => {
    const out = execFileSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(out);
  };
  return { soft: read('-Sn'), hard: read('-Hn') };
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Waits for exit after SIGTERM (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

function wrap(proc: ChildProcess): Child {
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
  return {
    proc,
    pid: proc.pid!,
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Spawns `node <args>` through `sh -c 'ulimit -n <hard>; exec node ...'` so the child can hold as
 * many sockets as the hard limit allows (exec keeps the pid, so /proc readings are the node process).
 */
export function spawnNode(args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string; logFile?: string; stdoutPipe?: boolean }): Child {
  const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${quoted}`;
  const logFd = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
  const proc = spawn('sh', ['-c', script], {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', opts.stdoutPipe ? 'pipe' : logFd, logFd],
  });
  if (typeof logFd === 'number') closeSync(logFd);
  return wrap(proc);
}

/** Reads the first stdout line of a child (the emulator prints its URL as JSON). */
export function firstLine(child: Child, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.proc.stdout! });
    const timer = setTimeout(() => reject(new Error('child did not report in time')), timeoutMs);
    rl.once('line', (line) => {
      clearTimeout(timer);
      rl.close();
      child.proc.stdout!.resume(); // keep draining
      resolve(line);
    });
    child.proc.once('exit', (code) => reject(new Error(`child exited with ${code} before reporting`)));
  });
}

/** Polls GET url until it answers 200. */
export async function waitForHttp(url: string, timeoutMs = 30_000, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (alive && !alive()) throw new Error(`process for ${url} exited`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = new Error(`status ${res.status}`);
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${String(last)}`);
}

/** CPU time all processes on the machine spent busy (user+nice+system+irq+softirq+steal), ms, from /proc/stat. */
export function systemBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / CLK_TCK;
}
