import type { DataSource, EntityManager } from 'typeorm';
import { nextTurn } from '../platform/event-loop.js';

interface QueuedWork {
  work: (tx: EntityManager) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  yieldBeforeCommit: boolean;
}

export interface TransactionOptions {
  /**
   * SQLite: let the event loop turn once between the work and the COMMIT, so that network I/O the
   * work started (a request to Ollama) leaves before the COMMIT's fsync holds the thread.
   */
  yieldBeforeCommit?: boolean;
}


/** SQLite: transactions waiting for the next group commit, and whether one is running or scheduled. */
interface CommitGroup {
  waiting: QueuedWork[];
  busy: boolean;
}

const sqliteGroups = new WeakMap<DataSource, CommitGroup>();

/**
 * Runs `work` in a transaction and resolves once it is committed. TypeORM's better-sqlite3 driver
 * has a single connection, so two overlapping transactions would nest and fail ("cannot start a
 * transaction within a transaction"); on SQLite transactions are therefore queued (SQLite allows
 * one writer at a time anyway), and the ones that queued up meanwhile are committed together:
 * one BEGIN … COMMIT (one fsync) for the group, each `work` in its own SAVEPOINT, so a `work`
 * that throws is rolled back alone and rejects alone, exactly as its own transaction would.
 * Every caller's promise settles only after the group's COMMIT, so "committed before answering"
 * holds as before. PostgreSQL runs transactions concurrently from its pool. Keep network waits out
 * of `work`: it holds the SQLite queue.
 */
export function inTransaction<T>(ds: DataSource, work: (tx: EntityManager) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  if (ds.options.type !== 'better-sqlite3') return ds.transaction(work);
  let group = sqliteGroups.get(ds);
  if (!group) sqliteGroups.set(ds, (group = { waiting: [], busy: false }));
  const queued = group;
  return new Promise<T>((resolve, reject) => {
    queued.waiting.push({ work, resolve: resolve as (value: unknown) => void, reject, yieldBeforeCommit: options.yieldBeforeCommit === true });
    if (!queued.busy) {
      queued.busy = true;
      // One turn of the event loop, so the transactions of requests that arrived together commit together.
      setImmediate(() => void commitGroups(ds, queued));
    }
  });
}

async function commitGroups(ds: DataSource, group: CommitGroup): Promise<void> {
  while (group.waiting.length) {
    const batch = group.waiting.splice(0, MAX_GROUP);
    if (batch.length === 1) {
      // Alone: a plain transaction.
      const [item] = batch;
      const work = item.yieldBeforeCommit ? (tx: EntityManager) => item.work(tx).then(async (value) => (await nextTurn(), value)) : item.work;
      await ds.transaction(work).then(item.resolve, item.reject);
      continue;
    }
    await commitTogether(ds, batch);
  }
  group.busy = false;
}

/** Most transactions committed in one group (bounds how long the write lock is held). */
const MAX_GROUP = 256;

async function commitTogether(ds: DataSource, batch: QueuedWork[]): Promise<void> {
  const runner = ds.createQueryRunner();
  const results: { ok: boolean; value: unknown }[] = [];
  try {
    await runner.startTransaction();
  } catch (e) {
    for (const item of batch) item.reject(e);
    await runner.release();
    return;
  }
  try {
    for (const item of batch) {
      await runner.startTransaction(); // SAVEPOINT
      try {
        const value = await item.work(runner.manager);
        await runner.commitTransaction(); // RELEASE SAVEPOINT
        results.push({ ok: true, value });
      } catch (e) {
        await runner.rollbackTransaction(); // ROLLBACK TO SAVEPOINT: only this work is undone
        results.push({ ok: false, value: e });
      }
    }
    if (batch.some((item, i) => item.yieldBeforeCommit && results[i].ok)) await nextTurn();
    await runner.commitTransaction();
  } catch (e) {
    // The group could not commit (or a savepoint could not be rolled back): nothing of it is stored.
    for (let depth = 0; runner.isTransactionActive && depth <= batch.length + 1; depth++) await runner.rollbackTransaction().catch(() => {});
    for (const item of batch) item.reject(e);
    await runner.release();
    return;
  }
  await runner.release();
  batch.forEach((item, i) => (results[i].ok ? item.resolve(results[i].value) : item.reject(results[i].value)));
}
