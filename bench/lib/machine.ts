// What the numbers were measured on: CPU, cores, memory, Node, kernel, the file system under the
// SQLite file and how long an fsync takes there (the gateway commits with synchronous=FULL), and
// which commit of the gateway (plus how many uncommitted files under src/) was measured.

import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { percentile, round } from './stats.js';

function sh(cmd: string, args: string[], cwd?: string): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** write(4 KiB) + fsync, `n` times, in `dir`: the floor under every durable SQLite commit. */
export function fsyncLatency(dir: string, n = 100): { p50Ms: number | null; p99Ms: number | null } {
  const file = join(dir, `fsync-probe-${process.pid}`);
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(4096, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      writeSync(fd, buf, 0, buf.length, (i % 16) * 4096);
      fsyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return { p50Ms: round(percentile(times, 50), 3), p99Ms: round(percentile(times, 99), 3) };
}

export function machineInfo(root: string, dbDir: string) {
  const cpus = os.cpus();
  const dirty = sh('git', ['status', '--porcelain', '--', 'src'], root);
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    hostname: os.hostname(),
    dbDir,
    dbFilesystem: sh('stat', ['-f', '-c', '%T', dbDir]),
    fsync: fsyncLatency(dbDir),
    loadAverage: os.loadavg().map((v) => round(v, 2)),
    gitCommit: sh('git', ['rev-parse', '--short', 'HEAD'], root),
    uncommittedSrcFiles: dirty === null ? null : dirty.split('\n').filter(Boolean).length,
  };
}

export type MachineInfo = ReturnType<typeof machineInfo>;
