import { InvalidArgumentError } from 'commander';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { type GatewayDatabase, openDatabase } from '../services/db/database.js';

/** Exit codes: 0 done, 1 the operation failed (bad rows, unknown key...), 2 bad usage or configuration. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;

/** A failure the CLI reports as one message (no stack) and an exit code. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.FAILED,
  ) {
    super(message);
  }
}

/** Where a command writes: results to `out` (stdout), messages and progress to `err` (stderr). */
export interface CliIO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export const line = (stream: NodeJS.WritableStream, text = '') => void stream.write(`${text}\n`);

/** The gateway's configuration from the environment; bad values are a usage error (exit 2). */
export function configFrom(io: CliIO): Config {
  try {
    return loadConfig(io.env);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message, EXIT.USAGE);
    throw e;
  }
}

/** Opens the configured database (DATABASE_URL or DB_PATH) with pending migrations run, as the gateway does at start. */
export async function withDatabase<T>(io: CliIO, work: (db: GatewayDatabase, config: Config) => Promise<T>): Promise<T> {
  const config = configFrom(io);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dbPath: config.dbPath });
  try {
    return await work(db, config);
  } finally {
    await db.close();
  }
}

/**
 * Progress on stderr: a line rewritten in place on a terminal, else a line at most every
 * `everyMs` (and always the last), so logs of scripted runs stay short.
 */
export class Progress {
  private last = 0;
  private shown = false;

  constructor(
    private readonly io: CliIO,
    private readonly everyMs = 1000,
  ) {}

  update(text: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < this.everyMs) return;
    this.last = now;
    if (this.io.err.isTTY) {
      this.io.err.write(`\r\u001b[2K${text}`);
      this.shown = true;
    } else line(this.io.err, text);
  }

  /** Prints the final state on its own line. */
  done(text: string): void {
    if (this.shown) this.io.err.write('\r\u001b[2K');
    line(this.io.err, text);
  }
}

/** Parses a whole number option or argument; commander reports the message as a usage error. */
export function wholeNumber(name: string, min = -Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number${min > -Number.MAX_SAFE_INTEGER ? ` of at least ${min}` : ''}.`);
    return n;
  };
}

/** Parses an ISO-8601 date option. */
export function isoDate(name: string) {
  return (value: string): Date => {
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`${name} must be an ISO-8601 date such as 2026-01-31 or 2026-01-31T12:00:00Z.`);
    return d;
  };
}

/** Left-aligned columns for terminal tables. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n');
}

export const formatBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
