import { type FileHandle, open } from 'node:fs/promises';
import BetterSqlite3 from 'better-sqlite3';
import { nextTurn } from '../platform/event-loop.js';
import { type SqlClient, SqlError, type SqlRow, type SqlTx, type SqlValue } from './sql-client.js';
import { sqliteDateText } from './sql-values.js';
import { SQLITE_AUTO_CHECKPOINT_FRAMES, WalCheckpointer, type WalCheckpointerOptions } from './wal-checkpointer.js';

export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/**
 * Per connection, so on TypeORM's connection too: synchronous is not kept in the file, and a
 * reopened WAL database would otherwise fall back to NORMAL.
 */
export function applySqlitePragmas(db: BetterSqlite3.Database): void {
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
}

/** What `trace` sees when a flush of the WAL starts and when it is done. */
export const FLUSH_STARTED = '-- fdatasync WAL';
export const FLUSH_DONE = '-- fdatasync WAL done';

/** In WAL mode, the file SQLite appends each commit to. */
const walFileOf = (file: string) => `${file}-wal`;

/** Most transactions committed in one group (bounds how long the write lock is held). */
const MAX_GROUP = 256;

type Job =
  | { grouped: true; work: (tx: SqlTx) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void }
  | { grouped: false; run: () => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void };

/**
 * The SQLite side of the SqlClient: its own better-sqlite3 connection to the gateway's file, its
 * statements prepared once and called directly (synchronous, no await inside a statement).
 *
 * Group commit: transactions are queued (SQLite has one writer anyway) and the ones that queued up
 * meanwhile are committed together: one BEGIN IMMEDIATE … COMMIT (one fsync) for the group, each
 * `work` in its own SAVEPOINT, so a `work` that throws is rolled back alone and rejects alone,
 * exactly as its own transaction would. Every caller's promise settles only after the COMMIT.
 *
 * Locking: TypeORM has a second connection to the same file (migrations, admin CRUD). A write
 * transaction held open on one connection across an await blocks the other's writes, and
 * better-sqlite3 waits out busy_timeout on the thread itself, so the holder could never finish.
 * Both therefore take turns through this one queue: TypeORM's transactions run via `exclusive`,
 * alone, between groups. Statements of a group are synchronous and its works only run
 * statements, so a group holds the write lock within one turn of the event loop. Other processes
 * on the file (a second gateway, `db backup`) are waited for by busy_timeout, and BEGIN IMMEDIATE
 * takes the write lock before the first read.
 *
 * Durability off the event loop: with synchronous=FULL, SQLite's COMMIT fsyncs the WAL on the
 * calling thread, and better-sqlite3 calls it on the event loop, which then stood still for the
 * fsync (0.1–1 ms, longer on a busy disk) at every reservation and settlement: no token, no
 * upstream chunk and no other stream moved meanwhile. This connection therefore commits with
 * synchronous=NORMAL (the commit is appended to the WAL, not yet flushed) and then flushes the WAL
 * with fdatasync on libuv's thread pool; every caller's promise settles only after that flush, so
 * nothing is acknowledged before it is on disk, exactly as with FULL. A flush that started before
 * a commit may not cover it, so a commit waits for the next one (flushes are shared: one at a time,
 * each covering every commit before it started). SQLite keeps the WAL file (same inode) while any
 * connection has the database open, so the handle stays valid while this one is open.
 *
 * Checkpoints off the event loop too, while the gateway is busy: a WalCheckpointer then turns this
 * connection's auto-checkpoint off, runs the checkpoints on a thread of its own, and may ask the
 * queue to pause between two groups so the WAL can start over (see wal-checkpointer.ts).
 */
export class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private readonly waiting: Job[] = [];
  /** A drain is scheduled or running. */
  private busy = false;
  private drained: Promise<void> = Promise.resolve();
  /** The WAL flushed off the event loop (see the class comment); false when the file is not in WAL mode (or in memory). */
  private readonly flushesWal: boolean;
  private wal: Promise<FileHandle> | undefined;
  private flushing: Promise<void> | undefined;
  private nextFlush: Promise<void> | undefined;
  /** Checkpoints of the WAL on their own thread; undefined when not in WAL mode. */
  private readonly checkpointer: WalCheckpointer | undefined;

  constructor(
    file: string,
    /** Sees every statement run, each flush of the WAL as FLUSH_STARTED and FLUSH_DONE, and each checkpoint (debugging, tests). */
    private readonly trace?: (sql: string) => void,
    checkpoints: Pick<WalCheckpointerOptions, 'busyCommitsPerSecond' | 'quietMs' | 'intervalMs' | 'pauseFrames'> = {},
  ) {
    this.db = new BetterSqlite3(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
    applySqlitePragmas(this.db);
    this.flushesWal = !this.db.memory && this.db.pragma('journal_mode', { simple: true }) === 'wal';
    if (this.flushesWal) {
      this.db.pragma('synchronous = NORMAL');
      this.checkpointer = new WalCheckpointer(file, {
        ...checkpoints,
        busyTimeoutMs: SQLITE_BUSY_TIMEOUT_MS,
        trace,
        // While its thread runs, this connection does not checkpoint; otherwise as SQLite does by default.
        writerCheckpoints: (on) => {
          if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${on ? SQLITE_AUTO_CHECKPOINT_FRAMES : 0}`);
        },
        // Not fatal (SQLite's own checkpoints take over), but an operator should hear of it.
        onFailure: (error) => process.emitWarning(`SQLite checkpoints run on the event loop again: ${String(error)}`, 'GatewayWarning'),
      });
    }
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.execute(sql, params, (s, values) => s.run(...values).changes);
  }

  async get<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R | undefined> {
    return this.execute(sql, params, (s, values) => s.get(...values) as R | undefined);
  }

  async all<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    return this.execute(sql, params, (s, values) => s.all(...values) as R[]);
  }

  transaction<T>(work: (tx: SqlTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => this.enqueue({ grouped: true, work, resolve: resolve as (v: unknown) => void, reject }));
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => this.enqueue({ grouped: false, run: fn, resolve: resolve as (v: unknown) => void, reject }));
  }

  async close(): Promise<void> {
    while (this.busy) await this.drained;
    // Before this connection closes: the last connection to close checkpoints and removes the WAL.
    await this.checkpointer?.close();
    while (this.flushing || this.nextFlush) await (this.nextFlush ?? this.flushing)?.catch(() => undefined);
    const wal = this.wal;
    this.wal = undefined;
    await wal?.then((handle) => handle.close()).catch(() => undefined);
    if (this.db.open) this.db.close();
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  private execute<T>(sql: string, params: readonly SqlValue[], call: (statement: BetterSqlite3.Statement, values: unknown[]) => T): T {
    this.trace?.(sql);
    try {
      let statement = this.statements.get(sql);
      if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
      return call(statement, params.map(bindable));
    } catch (e) {
      throw new SqlError(sql, e);
    }
  }

  private enqueue(job: Job): void {
    this.waiting.push(job);
    if (this.busy) return;
    this.busy = true;
    // One turn of the event loop first, so the transactions of requests that arrived together commit together.
    this.drained = nextTurn().then(() => this.drain());
  }

  private async drain(): Promise<void> {
    // `busy` ends in the same step that finds the queue empty: a job queued after it starts a new drain.
    for (;;) {
      if (!this.waiting.length) {
        this.busy = false;
        return;
      }
      const first = this.waiting[0];
      if (!first.grouped) {
        this.waiting.shift();
        await Promise.resolve().then(first.run).then(first.resolve, first.reject);
        continue;
      }
      // The WAL has not started over for a while: let a checkpoint copy all of it before the next write.
      if (this.checkpointer?.wantsPause) await this.checkpointer.catchUp();
      const batch: Extract<Job, { grouped: true }>[] = [];
      while (batch.length < MAX_GROUP && this.waiting[0]?.grouped) batch.push(this.waiting.shift() as Extract<Job, { grouped: true }>);
      await this.commitTogether(batch);
    }
  }

  private async commitTogether(batch: Extract<Job, { grouped: true }>[]): Promise<void> {
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      await this.run('BEGIN IMMEDIATE');
    } catch (e) {
      for (const job of batch) job.reject(e);
      return;
    }
    try {
      for (const job of batch) {
        await this.run('SAVEPOINT work');
        try {
          results.push({ ok: true, value: await job.work(this) });
        } catch (e) {
          await this.run('ROLLBACK TO work'); // only this work is undone
          results.push({ ok: false, value: e });
        }
        await this.run('RELEASE work');
      }
      await this.run('COMMIT');
    } catch (e) {
      // The group could not commit (or a savepoint could not be rolled back): nothing of it is stored.
      try {
        if (this.db.inTransaction) this.db.prepare('ROLLBACK').run();
      } catch {
        // Nothing left to undo: SQLite rolled the transaction back itself.
      }
      for (const job of batch) job.reject(e);
      return;
    }
    this.checkpointer?.committed();
    const settle = () => batch.forEach((job, i) => (results[i].ok ? job.resolve(results[i].value) : job.reject(results[i].value)));
    if (!this.flushesWal) return settle();
    // Not awaited: the next group may begin and commit while this one's flush runs (its own flush covers both).
    this.flushWal().then(settle, (e: unknown) => {
      // Committed but perhaps not on disk: no caller is told it succeeded. What this leaves is what a crash would.
      const error = new SqlError('fdatasync of the WAL', e);
      for (const job of batch) job.reject(error);
    });
  }

  /** Resolves once everything committed before the call is on disk (one flush at a time, shared by every commit before it). */
  private flushWal(): Promise<void> {
    if (!this.flushing) {
      this.trace?.(FLUSH_STARTED);
      const flush: Promise<void> = this.walHandle()
        .then((handle) => handle.datasync())
        .then(() => this.trace?.(FLUSH_DONE))
        .finally(() => {
          if (this.flushing === flush) this.flushing = undefined;
        });
      this.flushing = flush;
      return flush;
    }
    // The running flush may have started before this commit: the next one covers it.
    this.nextFlush ??= this.flushing
      .catch(() => undefined)
      .then(() => {
        this.nextFlush = undefined;
        return this.flushWal();
      });
    return this.nextFlush;
  }

  private walHandle(): Promise<FileHandle> {
    this.wal ??= open(walFileOf(this.db.name), 'r');
    // A failed open is tried again at the next flush.
    return this.wal.catch((e: unknown) => {
      this.wal = undefined;
      throw e;
    });
  }
}

/** better-sqlite3 binds no Date or boolean: stored as TypeORM stores them (UTC datetime text, 0/1). */
function bindable(value: SqlValue): unknown {
  if (value === undefined) return null;
  if (value instanceof Date) return sqliteDateText(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}
