import type { DataSource, EntityManager } from 'typeorm';
import { execute, placeholders } from '../db/rows.js';
import { ErrorCode, GatewayError } from '../platform/errors.js';

/** Optional per-model prices, in credits per 1,000 tokens. */
export interface ModelPricing {
  promptPricePer1k?: number | null;
  completionPricePer1k?: number | null;
}

/** Largest balance a key may hold (fits PostgreSQL's 32-bit integer with room for refunds). */
export const MAX_CREDITS = 1_000_000_000;

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** Credits a request costs: the flat request cost plus per-token prices, rounded up. */
export function costOf(usage: TokenUsage, pricing: ModelPricing, requestCost: number): number {
  const perToken = (tokens: number, pricePer1k: number | null | undefined) =>
    pricePer1k ? Math.ceil((tokens * pricePer1k) / 1000) : 0;
  return requestCost + perToken(usage.promptTokens, pricing.promptPricePer1k) + perToken(usage.completionTokens, pricing.completionPricePer1k);
}

/**
 * Credits move only through conditional atomic updates (plain SQL: this runs twice per request), so concurrent requests can never take a
 * balance below zero: reserve the worst case first, then refund what was not used.
 */
export class CreditLedger {
  /** Takes `amount` credits from the key or throws INSUFFICIENT_CREDITS; one conditional UPDATE. */
  async reserve(tx: EntityManager, apiKeyId: string, amount: number): Promise<void> {
    if (amount <= 0) return;
    const sql = placeholders(tx.connection, 'UPDATE api_keys SET credits = credits - ? WHERE id = ? AND credits >= ? AND revoked_at IS NULL');
    if (!(await execute(tx, sql, [amount, apiKeyId, amount]))) {
      throw new GatewayError(ErrorCode.INSUFFICIENT_CREDITS, `This request needs ${amount} credits and the key does not have them.`, {
        creditsNeeded: amount,
      });
    }
  }

  /** Throws INSUFFICIENT_CREDITS when the key holds fewer than `amount` credits now (a check before costly work; reserves nothing). */
  async requireAtLeast(db: DataSource | EntityManager, apiKeyId: string, amount: number): Promise<void> {
    const manager = 'manager' in db ? db.manager : db;
    const rows: Array<{ credits: number | string }> = await manager.query(placeholders(manager.connection, 'SELECT credits FROM api_keys WHERE id = ?'), [apiKeyId]);
    if (Number(rows[0]?.credits ?? 0) < amount) {
      throw new GatewayError(ErrorCode.INSUFFICIENT_CREDITS, `This request needs at least ${amount} credits and the key does not have them.`, { creditsNeeded: amount });
    }
  }

  /** Gives back credits that were reserved but not spent. */
  async refund(tx: EntityManager, apiKeyId: string, amount: number): Promise<void> {
    if (amount <= 0) return;
    await execute(tx, placeholders(tx.connection, 'UPDATE api_keys SET credits = credits + ? WHERE id = ?'), [amount, apiKeyId]);
  }

  /**
   * Adds `delta` credits (negative to take some away) in one conditional UPDATE that keeps the
   * balance within 0..MAX_CREDITS; false when the key does not exist or the result would leave
   * that range. Never read-then-write: it composes safely with running reservations.
   */
  async adjust(tx: EntityManager, apiKeyId: string, delta: number): Promise<boolean> {
    const sql = placeholders(tx.connection, 'UPDATE api_keys SET credits = credits + ? WHERE id = ? AND credits + ? >= 0 AND credits + ? <= ?');
    return (await execute(tx, sql, [delta, apiKeyId, delta, delta, MAX_CREDITS])) > 0;
  }
}
