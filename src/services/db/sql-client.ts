/**
 * The hot path's own database access: plain SQL with `?` placeholders, on a connection (SQLite)
 * or a pool (PostgreSQL) of its own beside TypeORM's. TypeORM keeps migrations and admin CRUD.
 */

export type Dialect = 'sqlite' | 'postgres';

/** A bound value: dates and booleans are converted by each dialect as TypeORM stores them. */
export type SqlValue = string | number | bigint | boolean | Date | Buffer | null | undefined;

export type SqlRow = Record<string, unknown>;

/** Statements on a connection, or inside a transaction. */
export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Runs a statement and resolves to the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** The first row, or undefined. */
  get<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R | undefined>;
  all<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
}

/** What a transaction's work gets: statements inside that transaction. */
export type SqlTx = SqlExecutor;

/**
 * `run`, `get` and `all` on the client itself are for reads; writes go through `transaction`, so
 * that on SQLite they take their turn with TypeORM's writes (see sqlite-client.ts).
 */
export interface SqlClient extends SqlExecutor {
  /**
   * Runs `work` in a transaction and resolves once it is committed; a `work` that throws is rolled
   * back and rejects. Keep network waits out of `work`: on SQLite it holds the write lock.
   */
  transaction<T>(work: (tx: SqlTx) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` while this client holds no write transaction and starts none (SQLite): how TypeORM's
   * own transactions on its other connection to the same file take their turn. PostgreSQL: `fn()`.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Waits for queued transactions, then closes. */
  close(): Promise<void>;
}

/** A failed statement, with the driver's error code (SQLITE_CONSTRAINT_UNIQUE, 23505, …). */
export class SqlError extends Error {
  readonly code: string | undefined;

  constructor(
    readonly sql: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'SqlError';
    this.code = (cause as { code?: unknown })?.code === undefined ? undefined : String((cause as { code?: unknown }).code);
  }
}
