import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteClient } from '../../src/services/db/sqlite-client.js';
import { CHECKPOINT_DONE, WalCheckpointer } from '../../src/services/db/wal-checkpointer.js';

// src/services/db/wal-checkpointer.ts: the writer's connection never checkpoints on the event
// loop; a thread of its own does, and the writer pauses when the WAL has not started over.
describe('SQLite checkpoints run on their own thread, and the WAL stays bounded', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gw-checkpoint-'));
    file = path.join(dir, 'wal.sqlite');
    const setup = new BetterSqlite3(file);
    setup.pragma('journal_mode = WAL');
    setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    setup.close();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const payload = 'x'.repeat(3000); // about one 4 KiB page per row
  const insert = (client: SqliteClient) => client.transaction((tx) => tx.run('INSERT INTO t (v) VALUES (?)', [payload]));
  /** Frames in the WAL now, read from a connection of the test's own (its PASSIVE checkpoint also copies them). */
  const walFrames = () => {
    const probe = new BetterSqlite3(file);
    try {
      return (probe.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0].log;
    } finally {
      probe.close();
    }
  };

  const autoCheckpoint = async (client: SqliteClient) => (await client.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'))?.wal_autocheckpoint;

  it('a busy writer commits past 1,000 pages without checkpointing on its own connection', async () => {
    // A checkpointer thread that never gets to run in this test: only the writer's own connection could checkpoint.
    const client = new SqliteClient(file, undefined, { intervalMs: 600_000 });
    try {
      for (let i = 0; i < 1500; i++) await insert(client);
      expect(await autoCheckpoint(client)).toBe(0);
      // With SQLite's default (checkpoint at 1,000 frames, then the WAL starts over) this is under 1,000.
      expect(walFrames()).toBeGreaterThanOrEqual(1500);
    } finally {
      await client.close();
    }
  });

  it("a lightly used writer keeps SQLite's own checkpoints and starts no thread", async () => {
    const lines: string[] = [];
    const client = new SqliteClient(file, (line) => lines.push(line), { busyCommitsPerSecond: 1000, intervalMs: 1 });
    try {
      for (let i = 0; i < 50; i++) await insert(client);
      expect(await autoCheckpoint(client)).toBe(1000);
      expect(lines.filter((l) => l.startsWith('-- wal_checkpoint'))).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('hands checkpoints back to SQLite once the writer has been quiet', async () => {
    const lines: string[] = [];
    const client = new SqliteClient(file, (line) => lines.push(line), { busyCommitsPerSecond: 20, intervalMs: 5, quietMs: 200 });
    try {
      for (let i = 0; i < 100; i++) await insert(client);
      expect(await autoCheckpoint(client)).toBe(0);
      // Now one commit now and then: each is followed by a checkpoint, and the first one after
      // `quietMs` without a busy second stops the thread.
      await expect
        .poll(
          async () => {
            await insert(client);
            return autoCheckpoint(client);
          },
          { timeout: 20_000, interval: 100 },
        )
        .toBe(1000);
      expect(lines.filter((l) => l.startsWith(CHECKPOINT_DONE)).length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('checkpoints on its thread after commits, copying every frame of an idle WAL', async () => {
    const lines: string[] = [];
    const client = new SqliteClient(file, (line) => lines.push(line), { intervalMs: 10 });
    try {
      for (let i = 0; i < 300; i++) await insert(client);
      const done = () => lines.filter((l) => l.startsWith(CHECKPOINT_DONE));
      await expect.poll(() => done().length, { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);
      // The writer is idle now: the next checkpoint copies everything there is.
      await expect
        .poll(
          () => {
            const last = /log=(\d+) checkpointed=(\d+)/.exec(done().at(-1) ?? '');
            return last !== null && Number(last[1]) > 0 && last[1] === last[2];
          },
          { timeout: 20_000, interval: 20 },
        )
        .toBe(true);
      expect(Number(((await client.get<{ n: number }>('SELECT COUNT(*) AS n FROM t')) ?? { n: 0 }).n)).toBe(300);
    } finally {
      await client.close();
    }
  });

  it('keeps the WAL bounded under a writer that never pauses, losing no transaction', async () => {
    // 8 writers, each starting its next transaction as soon as the last one is acknowledged: some
    // transaction commits during every checkpoint, so without the pause the WAL never starts over
    // and ends at about one frame per row (6,000 frames, over 24 MB).
    const lines: string[] = [];
    const client = new SqliteClient(file, (line) => lines.push(line), { intervalMs: 5, pauseFrames: 500 });
    const total = 6000;
    let started = 0;
    try {
      const writer = async () => {
        while (started < total) {
          started++;
          await insert(client);
        }
      };
      await Promise.all(Array.from({ length: 8 }, writer));
      expect(Number(((await client.get<{ n: number }>('SELECT COUNT(*) AS n FROM t')) ?? { n: 0 }).n)).toBe(total);
      expect(lines.filter((l) => l.startsWith(CHECKPOINT_DONE)).length).toBeGreaterThan(0);
      // The file only grows to the longest the WAL has been: under 3,000 frames of 4 KiB (the
      // pause comes at the first group after a checkpoint that found over 500, on a busy machine
      // some thousand frames later).
      expect(statSync(`${file}-wal`).size).toBeLessThan(3000 * 4096);
    } finally {
      await client.close();
    }
  });

  it('gives up its thread when it cannot checkpoint, gives checkpoints back to SQLite, and says so once', async () => {
    const failures: unknown[] = [];
    const writer: boolean[] = [];
    const checkpointer = new WalCheckpointer(path.join(dir, 'missing.sqlite'), {
      busyCommitsPerSecond: 1,
      intervalMs: 1,
      onFailure: (e) => failures.push(e),
      writerCheckpoints: (on) => writer.push(on),
    });
    try {
      checkpointer.committed();
      await expect.poll(() => failures.length, { timeout: 20_000, interval: 20 }).toBe(1);
      expect(String(failures[0])).toMatch(/WAL checkpoint failed|unable to open|directory does not exist/i);
      expect(writer).toEqual([false, true]);
      expect(checkpointer.active).toBe(false);
      expect(checkpointer.wantsPause).toBe(false);
      checkpointer.committed(); // no second thread, no second report
      await new Promise((r) => setTimeout(r, 50));
      expect(failures).toHaveLength(1);
      expect(writer).toEqual([false, true]);
    } finally {
      await checkpointer.close();
    }
  });
});
