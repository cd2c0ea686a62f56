import pg from 'pg';
import { type SqlClient, SqlError, type SqlExecutor, type SqlRow, type SqlTx, type SqlValue } from './sql-client.js';

/** Connections of the hot path's pool (TypeORM keeps its own pool for admin CRUD). */
const POOL_SIZE = 10;

const numbered = new Map<string, string>();

/** `sql` with `?` placeholders numbered ($1, $2, …), once per statement text. */
function numberPlaceholders(sql: string): string {
  let text = numbered.get(sql);
  if (text === undefined) {
    let n = 0;
    text = sql.replace(/\?/g, () => `$${++n}`);
    numbered.set(sql, text);
  }
  return text;
}

/** node-pg converts Date (to the instant, for timestamptz) and boolean itself; undefined is NULL. */
const bindable = (params: readonly SqlValue[]) => params.map((v) => (v === undefined ? null : v));

async function query(on: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult<SqlRow>> {
  try {
    return await on.query<SqlRow>(numberPlaceholders(sql), bindable(params));
  } catch (e) {
    throw new SqlError(sql, e);
  }
}

function executor(on: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    dialect: 'postgres',
    run: async (sql, params = []) => (await query(on, sql, params)).rowCount ?? 0,
    get: async <R extends SqlRow>(sql: string, params: readonly SqlValue[] = []) => (await query(on, sql, params)).rows[0] as R | undefined,
    all: async <R extends SqlRow>(sql: string, params: readonly SqlValue[] = []) => (await query(on, sql, params)).rows as R[],
  };
}

/**
 * The PostgreSQL side of the SqlClient: a pg.Pool of its own on DATABASE_URL. Transactions run
 * concurrently, one pooled connection each; row locks serialize what must be serialized (the
 * conditional credit UPDATEs).
 */
export class PostgresClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly direct: SqlExecutor;

  constructor(connectionString: string, schema?: string) {
    this.pool = new pg.Pool({ connectionString, max: POOL_SIZE, options: schema ? `-c search_path=${schema}` : undefined });
    // An idle connection that breaks (server restart) is dropped by the pool; the next query reports the outage.
    this.pool.on('error', () => {});
    this.direct = executor(this.pool);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.direct.run(sql, params);
  }

  get<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R | undefined> {
    return this.direct.get<R>(sql, params);
  }

  all<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.direct.all<R>(sql, params);
  }

  async transaction<T>(work: (tx: SqlTx) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: unknown;
    try {
      await query(client, 'BEGIN', []);
      try {
        const value = await work(executor(client));
        await query(client, 'COMMIT', []);
        return value;
      } catch (e) {
        await query(client, 'ROLLBACK', []).catch((rollbackError: unknown) => (broken = rollbackError));
        throw e;
      }
    } finally {
      // A connection whose ROLLBACK failed is in an unknown state: the pool discards it.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
