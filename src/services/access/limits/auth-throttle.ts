import { ErrorCode, GatewayError } from '../../platform/errors.js';
import { type Counter, MemoryRateLimitStore, type RateLimitStore } from '../rate-limit.js';

const retryAfter = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * Failed authentications per client address in a fixed window. Once an address reaches the
 * limit, every request from it that presents a key is refused (RATE_LIMITED with
 * retryAfterSeconds) until the window ends, without looking the key up: guessing keys cannot
 * load the database. Counters live in the rate-limit store (in process, or Redis).
 */
export class AuthFailureThrottle {
  private readonly failures: Counter | undefined;

  constructor(
    private readonly limit: number,
    windowSeconds: number,
    store: RateLimitStore = new MemoryRateLimitStore(),
  ) {
    this.failures = limit > 0 ? store.counter('auth:fail', windowSeconds) : undefined;
  }

  /** Seconds the address must wait before presenting a key again; 0 when it may. */
  async blockedFor(ip: string): Promise<number> {
    if (!this.failures) return 0;
    const state = await this.failures.peek(ip);
    return state.consumed >= this.limit ? retryAfter(state.msBeforeReset) : 0;
  }

  /** Counts a failed authentication; returns the wait when this one reached the limit, else 0. */
  async recordFailure(ip: string): Promise<number> {
    if (!this.failures) return 0;
    const state = await this.failures.add(ip, 1);
    return state.consumed >= this.limit ? retryAfter(state.msBeforeReset) : 0;
  }

  static error(retryAfterSeconds: number): GatewayError {
    return new GatewayError(
      ErrorCode.RATE_LIMITED,
      `Too many failed authentications from this address. Retry in ${retryAfterSeconds} s.`,
      { retryAfterSeconds, limit: 'authFailures' },
    );
  }
}
