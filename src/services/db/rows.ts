import type BetterSqlite3 from 'better-sqlite3';
import { type DataSource, type EntityManager, QueryFailedError } from 'typeorm';

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
