import type { ApiKey } from '../../entities/api-key.js';
import type { SqlExecutor, SqlRow } from './sql-client.js';
import { readDate, readInt, readNullableInt } from './sql-values.js';

// The api_keys statements of every request: the key lookup and the conditional credit updates.

const COLUMNS = 'id, name, prefix, secret_hash, role, credits, requests_per_minute, tokens_per_minute, max_concurrent_streams, created_at, last_used_at, revoked_at';

/**
 * A row of api_keys with the fields of the entity TypeORM would have loaded, as a plain object:
 * the entity class (decorators) would load TypeORM, which the hot path does without.
 */
function toApiKey(row: SqlRow): ApiKey {
  return {
    id: String(row.id),
    name: String(row.name),
    prefix: String(row.prefix),
    secretHash: String(row.secret_hash),
    role: row.role as ApiKey['role'],
    credits: readInt(row.credits),
    requestsPerMinute: readNullableInt(row.requests_per_minute),
    tokensPerMinute: readNullableInt(row.tokens_per_minute),
    maxConcurrentStreams: readNullableInt(row.max_concurrent_streams),
    createdAt: readDate(row.created_at)!,
    lastUsedAt: readDate(row.last_used_at),
    revokedAt: readDate(row.revoked_at),
  } as ApiKey;
}

/** The key that is not revoked, by id or by the SHA-256 of its secret; null when there is none. */
export async function findActiveKey(db: SqlExecutor, by: { id: string } | { secretHash: string }): Promise<ApiKey | null> {
  const row =
    'id' in by
      ? await db.get(`SELECT ${COLUMNS} FROM api_keys WHERE id = ? AND revoked_at IS NULL`, [by.id])
      : await db.get(`SELECT ${COLUMNS} FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL`, [by.secretHash]);
  return row ? toApiKey(row) : null;
}

/** The key, revoked or not (inside a transaction: as that transaction sees it). */
export async function findKey(db: SqlExecutor, id: string): Promise<ApiKey | null> {
  const row = await db.get(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`, [id]);
  return row ? toApiKey(row) : null;
}

export async function touchKey(db: SqlExecutor, id: string, at: Date): Promise<void> {
  await db.run('UPDATE api_keys SET last_used_at = ? WHERE id = ?', [at, id]);
}

/** Takes `amount` credits from an active key holding at least that many; false when it does not. */
export async function takeCredits(tx: SqlExecutor, id: string, amount: number): Promise<boolean> {
  return (await tx.run('UPDATE api_keys SET credits = credits - ? WHERE id = ? AND credits >= ? AND revoked_at IS NULL', [amount, id, amount])) > 0;
}

export async function giveCredits(tx: SqlExecutor, id: string, amount: number): Promise<void> {
  await tx.run('UPDATE api_keys SET credits = credits + ? WHERE id = ?', [amount, id]);
}

/** Adds `delta` (negative: takes) when the balance stays within 0..max; false otherwise or without the key. */
export async function adjustCredits(tx: SqlExecutor, id: string, delta: number, max: number): Promise<boolean> {
  return (await tx.run('UPDATE api_keys SET credits = credits + ? WHERE id = ? AND credits + ? >= 0 AND credits + ? <= ?', [delta, id, delta, delta, max])) > 0;
}

export async function creditBalance(db: SqlExecutor, id: string): Promise<number> {
  return readInt((await db.get('SELECT credits FROM api_keys WHERE id = ?', [id]))?.credits);
}

/** Every key, revoked ones included. */
export async function countKeys(db: SqlExecutor): Promise<number> {
  return readInt((await db.get('SELECT COUNT(*) AS n FROM api_keys'))?.n);
}

/** Whether a key (revoked or not) has this secret's SHA-256. */
export async function keyWithSecretExists(db: SqlExecutor, secretHash: string): Promise<boolean> {
  return (await db.get('SELECT 1 AS found FROM api_keys WHERE secret_hash = ?', [secretHash])) !== undefined;
}

/** A new key row, every column set. */
export async function insertKey(tx: SqlExecutor, key: ApiKey): Promise<void> {
  await tx.run(`INSERT INTO api_keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
    key.id,
    key.name,
    key.prefix,
    key.secretHash,
    key.role,
    key.credits,
    key.requestsPerMinute,
    key.tokensPerMinute,
    key.maxConcurrentStreams,
    key.createdAt,
    key.lastUsedAt,
    key.revokedAt,
  ]);
}
