import 'reflect-metadata';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { DataSource, type EntityManager, QueryFailedError } from 'typeorm';
import { entities } from '../entities/all.js';
import { migrations } from '../migrations/all.js';

export interface DatabaseOptions {
  /** PostgreSQL connection string; when unset the SQLite file at `dbPath` is used. */
  databaseUrl?: string;
  dbPath: string;
  /** PostgreSQL schema, for test isolation. Created if missing. */
  schema?: string;
  logging?: boolean;
}

const SQLITE_BUSY_TIMEOUT_MS = 5_000;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Builds the DataSource for SQLite or PostgreSQL; not initialized, migrations not run. */
export function createDataSource(opts: DatabaseOptions): DataSource {
  const common = {
    entities,
    migrations,
    synchronize: false,
    migrationsRun: false,
    migrationsTransactionMode: 'each',
    logging: opts.logging ?? false,
  } as const;

  if (opts.databaseUrl) {
    if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
      throw new Error(`invalid PostgreSQL schema name: ${JSON.stringify(opts.schema)}`);
    }
    const dataSource = new DataSource({
      ...common,
      type: 'postgres',
      url: opts.databaseUrl,
      schema: opts.schema,
      // Raw SQL (query builder expressions, ds.query) must resolve unqualified names in the schema too.
      extra: opts.schema ? { options: `-c search_path=${opts.schema}` } : undefined,
    });
    storeDatesAsTimestamptz(dataSource);
    return dataSource;
  }

  return new DataSource({
    ...common,
    type: 'better-sqlite3',
    database: opts.dbPath,
    timeout: SQLITE_BUSY_TIMEOUT_MS,
    // Runs on every connection the driver opens: synchronous is per connection and is not kept
    // in the file, so a reopened WAL database would otherwise fall back to NORMAL.
    prepareDatabase: (db: BetterSqlite3.Database) => {
      db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    },
  });
}

/**
 * Opens the database: creates the SQLite folder (or the PostgreSQL schema), initializes the
 * DataSource and runs pending migrations, one transaction each. Never synchronizes.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<DataSource> {
  if (opts.databaseUrl) {
    if (opts.schema) await ensureSchema(opts.databaseUrl, opts.schema);
  } else {
    await mkdir(path.dirname(path.resolve(opts.dbPath)), { recursive: true });
  }
  const dataSource = createDataSource(opts);
  await dataSource.initialize();
  try {
    await dataSource.runMigrations({ transaction: 'each' });
  } catch (error) {
    await dataSource.destroy();
    throw error;
  }
  return dataSource;
}

/** `SELECT 1` round trip; false when the database is unreachable or the DataSource is closed. */
export async function databaseHealthy(ds: DataSource): Promise<boolean> {
  if (!ds.isInitialized) return false;
  try {
    await ds.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

async function ensureSchema(databaseUrl: string, schema: string): Promise<void> {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${JSON.stringify(schema)}`);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } finally {
    await client.end();
  }
}

/**
 * Entities declare their timestamps as `type: Date`, the one type both drivers accept (SQLite maps
 * it to `datetime`, stored as UTC text with milliseconds). TypeORM maps `Date` to `timestamp
 * without time zone` on PostgreSQL, where node-pg writes and reads wall-clock time in the Node
 * process's zone: instants would shift when that zone changes and repeat in a DST fall-back hour.
 * The migrations create `timestamptz` instead; this keeps this DataSource's metadata in step with
 * them, so schema diffs stay empty. Value conversion is the same for both types in the driver.
 */
function storeDatesAsTimestamptz(dataSource: DataSource): void {
  const driver = dataSource.driver;
  const normalizeType = driver.normalizeType.bind(driver);
  driver.normalizeType = (column) => (column.type === Date ? 'timestamp with time zone' : normalizeType(column));
}

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

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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

/** An entity's table name, escaped for the driver and qualified with its schema when it has one. */
function qualifiedTable(ds: DataSource, metadata: { schema?: string; tableName: string }): string {
  const escape = (name: string) => ds.driver.escape(name);
  return metadata.schema ? `${escape(metadata.schema)}.${escape(metadata.tableName)}` : escape(metadata.tableName);
}

/**
 * INSERTs and UPDATEs of one entity as plain SQL, built once per column list and run as a prepared
 * statement on SQLite, through the transaction's query runner on PostgreSQL: the hot path's writes
 * without the query builder's per-call SQL generation. Values are converted by the driver exactly
 * as the entity manager converts them (dates, simple-json, booleans), on SQLite and PostgreSQL.
 */
export class RowWriter<E extends object> {
  private readonly metadata;
  private readonly table: string;
  private readonly statements = new Map<string, string>();

  constructor(
    private readonly ds: DataSource,
    entity: new () => E,
  ) {
    this.metadata = ds.getMetadata(entity);
    this.table = qualifiedTable(ds, this.metadata);
  }

  /** INSERT of the given properties (the others take their column defaults). */
  async insert(tx: EntityManager, values: Partial<E>): Promise<void> {
    const props = Object.keys(values) as (keyof E & string)[];
    const sql = this.statement(`i:${props.join(',')}`, () => {
      const columns = props.map((p) => this.column(p).databaseName);
      return `INSERT INTO ${this.table} (${columns.map((c) => this.ds.driver.escape(c)).join(', ')}) VALUES (${props.map(() => '?').join(', ')})`;
    });
    await this.run(tx, sql, props.map((p) => this.value(p, values[p])));
  }

  /** UPDATE … SET `set` WHERE every property of `where` equals its value; returns the rows changed. */
  async update(tx: EntityManager, where: Partial<E>, set: Partial<E>): Promise<number> {
    const setProps = Object.keys(set) as (keyof E & string)[];
    const whereProps = Object.keys(where) as (keyof E & string)[];
    const sql = this.statement(`u:${setProps.join(',')}|${whereProps.join(',')}`, () => {
      const assign = setProps.map((p) => `${this.ds.driver.escape(this.column(p).databaseName)} = ?`).join(', ');
      const match = whereProps.map((p) => `${this.ds.driver.escape(this.column(p).databaseName)} = ?`).join(' AND ');
      return `UPDATE ${this.table} SET ${assign} WHERE ${match}`;
    });
    return this.run(tx, sql, [...setProps.map((p) => this.value(p, set[p])), ...whereProps.map((p) => this.value(p, where[p]))]);
  }

  private column(property: string) {
    const column = this.metadata.findColumnWithPropertyName(property);
    if (!column) throw new Error(`${this.metadata.name} has no column for property "${property}"`);
    return column;
  }

  private value(property: string, value: unknown): unknown {
    return this.ds.driver.preparePersistentValue(value, this.column(property));
  }

  private statement(key: string, build: () => string): string {
    let sql = this.statements.get(key);
    if (sql === undefined) {
      sql = placeholders(this.ds, build());
      this.statements.set(key, sql);
    }
    return sql;
  }

  private run(tx: EntityManager, sql: string, params: unknown[]): Promise<number> {
    return execute(tx, sql, params);
  }
}

/**
 * The embedded SQLite's one connection (TypeORM's better-sqlite3 driver has exactly one), for the
 * hot path's statements: a prepared statement called directly costs a fraction of TypeORM's query
 * path (query logging, subscriber broadcasts, several awaits). It is the same connection TypeORM
 * uses, so it sees exactly what TypeORM sees, open transactions included. Undefined on PostgreSQL.
 */
function sqliteConnection(ds: DataSource): BetterSqlite3.Database | undefined {
  if (ds.options.type !== 'better-sqlite3') return undefined;
  const connection = (ds.driver as unknown as { databaseConnection?: BetterSqlite3.Database }).databaseConnection;
  return connection?.open ? connection : undefined;
}

const sqliteStatements = new WeakMap<BetterSqlite3.Database, Map<string, BetterSqlite3.Statement>>();

/** `sql` prepared once per connection; errors come as TypeORM's QueryFailedError, as through the query runner. */
function runSqlite<T>(connection: BetterSqlite3.Database, sql: string, params: unknown[], call: (statement: BetterSqlite3.Statement, values: unknown[]) => T): T {
  // better-sqlite3 binds no booleans (TypeORM's runner converts them the same way).
  const values = params.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
  try {
    let cache = sqliteStatements.get(connection);
    if (!cache) sqliteStatements.set(connection, (cache = new Map()));
    let statement = cache.get(sql);
    if (!statement) cache.set(sql, (statement = connection.prepare(sql)));
    return call(statement, values);
  } catch (e) {
    throw new QueryFailedError(sql, values, e as Error);
  }
}

/** Runs one write statement (already in the dialect's placeholder style) and returns the rows it changed. */
export async function execute(tx: EntityManager, sql: string, params: unknown[]): Promise<number> {
  const sqlite = sqliteConnection(tx.connection);
  if (sqlite) return runSqlite(sqlite, sql, params, (statement, values) => statement.run(...values).changes);
  const runner = tx.queryRunner;
  if (runner) return ((await runner.query(sql, params, true)) as { affected?: number }).affected ?? 0;
  const own = tx.connection.createQueryRunner();
  try {
    return ((await own.query(sql, params, true)) as { affected?: number }).affected ?? 0;
  } finally {
    await own.release();
  }
}

const numberedCache = new Map<string, string>();

/** `sql` with `?` placeholders, numbered ($1, $2, …) for PostgreSQL. */
export function placeholders(ds: DataSource, sql: string): string {
  if (ds.options.type !== 'postgres') return sql;
  let numbered = numberedCache.get(sql);
  if (numbered === undefined) {
    let n = 0;
    numbered = sql.replace(/\?/g, () => `$${++n}`);
    numberedCache.set(sql, numbered);
  }
  return numbered;
}

/**
 * `findOne` by equality (a null value matches IS NULL) as plain SQL built once per shape, hydrated
 * with the driver's conversions as the entity manager does (no relations): the lookups every
 * request makes (its key, its model, settings) without the query builder; on SQLite a prepared
 * statement called directly. Still a query per call, so what another process or instance wrote is
 * seen at once.
 */
export class RowReader<E extends object> {
  private readonly metadata;
  private readonly select: string;
  private readonly table: string;
  private readonly statements = new Map<string, string>();

  constructor(
    private readonly ds: DataSource,
    entity: new () => E,
  ) {
    this.metadata = ds.getMetadata(entity);
    this.table = qualifiedTable(ds, this.metadata);
    this.select = this.metadata.columns.map((c) => ds.driver.escape(c.databaseName)).join(', ');
  }

  async findOne(where: { [K in keyof E]?: E[K] | null }, tx: EntityManager = this.ds.manager): Promise<E | null> {
    const props = Object.keys(where) as (keyof E & string)[];
    const shape = props.map((p) => (where[p] === null ? `${p}=null` : p)).join(',');
    let sql = this.statements.get(shape);
    if (sql === undefined) {
      const match = props.map((p) => `${this.ds.driver.escape(this.column(p).databaseName)} ${where[p] === null ? 'IS NULL' : '= ?'}`).join(' AND ');
      sql = placeholders(this.ds, `SELECT ${this.select} FROM ${this.table} WHERE ${match} LIMIT 1`);
      this.statements.set(shape, sql);
    }
    const params = props.filter((p) => where[p] !== null).map((p) => this.ds.driver.preparePersistentValue(where[p], this.column(p)));
    const sqlite = sqliteConnection(this.ds);
    const row = sqlite
      ? runSqlite(sqlite, sql, params, (statement, values) => statement.get(...values) as Record<string, unknown> | undefined)
      : ((await tx.query(sql, params)) as Record<string, unknown>[])[0];
    if (!row) return null;
    const entity = Object.create((this.metadata.target as new () => E).prototype) as E;
    for (const column of this.metadata.columns) column.setEntityValue(entity, this.ds.driver.prepareHydratedValue(row[column.databaseName], column));
    return entity;
  }

  private column(property: string) {
    const column = this.metadata.findColumnWithPropertyName(property);
    if (!column) throw new Error(`${this.metadata.name} has no column for property "${property}"`);
    return column;
  }
}
