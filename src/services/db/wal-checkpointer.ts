import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** What `trace` sees when a checkpoint starts and when it is done (with SQLite's frame counts). */
export const CHECKPOINT_STARTED = '-- wal_checkpoint(PASSIVE)';
export const CHECKPOINT_DONE = '-- wal_checkpoint(PASSIVE) done';

/** One PASSIVE checkpoint's answer: frames in the WAL, and how many of them are now in the database file. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

export interface WalCheckpointerOptions {
  /** Group commits within one second that start the thread (fewer: SQLite checkpoints on the writer's connection, as by default). */
  busyCommitsPerSecond?: number;
  /** The thread stops, and SQLite's own checkpoints resume, after this long without a busy second. */
  quietMs?: number;
  /** While the thread runs, a checkpoint follows this long after the first commit since the last one. */
  intervalMs?: number;
  /** With more frames than this left in the WAL, the writer pauses once for a checkpoint (see the class comment). */
  pauseFrames?: number;
  busyTimeoutMs?: number;
  /** Sees CHECKPOINT_STARTED and CHECKPOINT_DONE (debugging, tests). */
  trace?: (line: string) => void;
  /** Turns SQLite's auto-checkpoint of the writer's connection off (the thread runs) or back on. */
  writerCheckpoints?: (on: boolean) => void;
  /** The checkpointer could not run (its thread failed): the writer checkpoints on its own again, for good. */
  onFailure?: (error: unknown) => void;
}

/** SQLite's default auto-checkpoint threshold, in WAL frames. */
export const SQLITE_AUTO_CHECKPOINT_FRAMES = 1000;

/** Default: a few hundred milliseconds of writes per checkpoint, so each stays small. */
const DEFAULT_INTERVAL_MS = 250;
/** About ten streams a second (a reservation and a settlement each): below that a stall every 1,000 pages touches little. */
const DEFAULT_BUSY_COMMITS_PER_SECOND = 20;
const DEFAULT_QUIET_MS = 60_000;
/** 4,000 frames is 16 MiB with 4 KiB pages, four times SQLite's own auto-checkpoint threshold. */
const DEFAULT_PAUSE_FRAMES = 4_000;

// The thread's code, evaluated (no file of its own, so it runs the same from src/ under vitest and
// from dist/). Its own connection only ever checkpoints: PASSIVE takes no lock a writer waits for.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true, timeout: workerData.busyTimeoutMs });
db.pragma('wal_autocheckpoint = 0');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, result: row });
  } catch (error) {
    parentPort.postMessage({ ok: false, error: String(error && error.message || error) });
  }
});
`;

/**
 * SQLite's checkpoints (copying the WAL's pages back into the database file, with an fsync of
 * each) off the event loop while the gateway is busy. With the default auto-checkpoint, the
 * COMMIT that takes the WAL past 1,000 pages runs the whole checkpoint on the committing
 * connection: with better-sqlite3 that is the event loop, which then stood still for 2–6 ms on an
 * idle disk (more on a slow one), every stream with it. Once the writer commits
 * `busyCommitsPerSecond` groups within a second, its auto-checkpoint is turned off and this runs
 * PASSIVE checkpoints on a connection of its own, on a worker thread; after `quietMs` without such
 * a second the thread stops and SQLite's own checkpoints resume. A worker thread costs about
 * 16 MiB while it runs (and leaves some of it behind), which an idle or lightly used gateway
 * does not pay.
 *
 * A PASSIVE checkpoint never blocks the writer, but the WAL only starts over from its beginning
 * when a write transaction begins while every frame is already checkpointed. A writer that commits
 * again during every checkpoint would let it grow without bound, so once a checkpoint finds the WAL
 * longer than `pauseFrames` frames, the writer pauses once (`wantsPause`, awaited between two
 * groups in SqliteClient's queue): with nothing committing, the next checkpoint copies every frame
 * and the writer's next transaction starts the WAL over. The event loop keeps running meanwhile;
 * only transactions wait.
 */
export class WalCheckpointer {
  private readonly intervalMs: number;
  private readonly pauseFrames: number;
  private worker: Worker | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CheckpointResult | undefined> | undefined;
  private pending: ((answer: { ok: true; result: CheckpointResult } | { ok: false; error: string }) => void) | undefined;
  /** The WAL was longer than `pauseFrames` at the last checkpoint. */
  private behind = false;
  private failed = false;
  private closed = false;
  private readonly busyCommitsPerSecond: number;
  private readonly quietMs: number;
  /** The thread runs the checkpoints (the writer's auto-checkpoint is off). */
  private threaded = false;
  private windowStart = 0;
  private windowCommits = 0;
  private lastBusyAt = 0;

  constructor(
    private readonly file: string,
    private readonly options: WalCheckpointerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.pauseFrames = options.pauseFrames ?? DEFAULT_PAUSE_FRAMES;
    this.busyCommitsPerSecond = options.busyCommitsPerSecond ?? DEFAULT_BUSY_COMMITS_PER_SECOND;
    this.quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
  }

  /** The thread runs the checkpoints now (the writer's connection does not). */
  get active(): boolean {
    return this.threaded;
  }

  /** The writer committed a group: counted, and while threaded a checkpoint follows within `intervalMs`. Synchronous and cheap. */
  committed(): void {
    if (this.closed || this.failed) return;
    const now = performance.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.windowCommits = 0;
    }
    const busySecond = ++this.windowCommits >= this.busyCommitsPerSecond;
    if (busySecond) this.lastBusyAt = now;
    if (!this.threaded) {
      if (!busySecond) return;
      this.threaded = true;
      this.options.writerCheckpoints?.(false);
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.checkpoint().then(() => {
        if (this.threaded && performance.now() - this.lastBusyAt >= this.quietMs) void this.stopThread();
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Back to SQLite's own checkpoints on the writer's connection; the thread exits. */
  private async stopThread(): Promise<void> {
    if (!this.threaded || this.closed || this.failed) return;
    this.threaded = false;
    this.behind = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.options.writerCheckpoints?.(true);
    await this.closeThread();
  }

  /** The WAL held more than `pauseFrames` frames at the last checkpoint: the writer should wait for `catchUp` before its next transaction. */
  get wantsPause(): boolean {
    return this.behind && !this.failed && !this.closed;
  }

  /**
   * A checkpoint while the writer waits (nothing commits meanwhile, so it can copy every frame).
   * Once per time the WAL was found too long: a reader elsewhere that keeps old frames in use
   * (another process's long read) must not make every transaction wait.
   */
  async catchUp(): Promise<void> {
    await this.running;
    if (this.threaded) await this.checkpoint(); // not when the thread was stopped meanwhile
    this.behind = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.closeThread();
  }

  private async closeThread(): Promise<void> {
    await this.running;
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage('close');
    await exited;
  }

  /** One PASSIVE checkpoint on the thread (one at a time); undefined when it could not run. */
  private checkpoint(): Promise<CheckpointResult | undefined> {
    if (this.closed || this.failed) return Promise.resolve(undefined);
    this.running ??= this.runOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runOnce(): Promise<CheckpointResult | undefined> {
    this.options.trace?.(CHECKPOINT_STARTED);
    let answer: { ok: true; result: CheckpointResult } | { ok: false; error: string };
    try {
      const worker = this.thread();
      // Referenced while a checkpoint runs, so that whoever awaits it keeps the process alive; idle, it keeps nothing alive.
      worker.ref();
      answer = await new Promise((resolve) => {
        this.pending = resolve;
        worker.postMessage('checkpoint');
      });
      worker.unref();
    } catch (e) {
      answer = { ok: false, error: String(e instanceof Error ? e.message : e) };
    }
    if (!answer.ok) {
      this.fail(new Error(`WAL checkpoint failed: ${answer.error}`));
      return undefined;
    }
    const { result } = answer;
    // A long WAL means it has not started over lately (see the class comment).
    this.behind = result.log > this.pauseFrames;
    this.options.trace?.(`${CHECKPOINT_DONE} log=${result.log} checkpointed=${result.checkpointed}`);
    return result;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), file: this.file, busyTimeoutMs: this.options.busyTimeoutMs ?? 5_000 },
    });
    worker.unref();
    worker.on('message', (answer) => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.(answer);
    });
    worker.on('error', (error) => {
      const pending = this.pending;
      this.pending = undefined;
      if (pending) pending({ ok: false, error: String(error.message) });
      else this.fail(error);
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      const pending = this.pending;
      this.pending = undefined;
      pending?.({ ok: false, error: 'the checkpoint thread exited' });
    });
    this.worker = worker;
    return worker;
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.threaded = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
    this.options.writerCheckpoints?.(true);
    this.options.onFailure?.(error);
  }
}
