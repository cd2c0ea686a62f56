import { adjustCredits, creditBalance, giveCredits, takeCredits } from '../db/api-keys.js';
import type { SqlExecutor, SqlTx } from '../db/sql-client.js';
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
 * Credits move only through conditional atomic updates (plain SQL, services/db/api-keys.ts), so
 * concurrent requests can never take a balance below zero: reserve the worst case first, then
 * refund what was not used.
 */
export class CreditLedger {
  /** Takes `amount` credits from the key or throws INSUFFICIENT_CREDITS; one conditional UPDATE. */
  async reserve(tx: SqlTx, apiKeyId: string, amount: number): Promise<void> {
    if (amount <= 0) return;
    if (!(await takeCredits(tx, apiKeyId, amount))) {
      throw new GatewayError(ErrorCode.INSUFFICIENT_CREDITS, `This request needs ${amount} credits and the key does not have them.`, {
        creditsNeeded: amount,
      });
    }
  }

  /** Throws INSUFFICIENT_CREDITS when the key holds fewer than `amount` credits now (a check before costly work; reserves nothing). */
  async requireAtLeast(db: SqlExecutor, apiKeyId: string, amount: number): Promise<void> {
    if ((await creditBalance(db, apiKeyId)) < amount) {
      throw new GatewayError(ErrorCode.INSUFFICIENT_CREDITS, `This request needs at least ${amount} credits and the key does not have them.`, { creditsNeeded: amount });
    }
  }

  /** Gives back credits that were reserved but not spent. */
  async refund(tx: SqlTx, apiKeyId: string, amount: number): Promise<void> {
    if (amount <= 0) return;
    await giveCredits(tx, apiKeyId, amount);
  }

  /**
   * Adds `delta` credits (negative to take some away) in one conditional UPDATE that keeps the
   * balance within 0..MAX_CREDITS; false when the key does not exist or the result would leave
   * that range. Never read-then-write: it composes safely with running reservations.
   */
  async adjust(tx: SqlTx, apiKeyId: string, delta: number): Promise<boolean> {
    return adjustCredits(tx, apiKeyId, delta, MAX_CREDITS);
  }
}
