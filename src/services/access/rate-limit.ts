// Its own file, not the package index, which loads every store (rate-limiter-memory.d.ts).
import RateLimiterMemory from 'rate-limiter-flexible/lib/RateLimiterMemory.js';
import type { RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { ErrorCode, GatewayError } from '../platform/errors.js';
import type { AdmissionRelease, RequestAdmission } from '../generation/hooks.js';
import type { KeyLimits, Principal } from './keys.js';

/** Limits as they apply to a key: its own values, else the configured defaults. 0 = unlimited. */
export interface EffectiveLimits {
  requestsPerMinute: number;
  tokensPerMinute: number;
  maxConcurrentStreams: number;
}

export interface RateLimitDefaults extends EffectiveLimits {
  /** Length of the counting window in seconds (60 in production; tests shorten it). */
  windowSeconds: number;
}

/** A counter's state: points counted in the current window, and ms until it resets (-1 = never). */
export interface CounterState {
  consumed: number;
  msBeforeReset: number;
}

/** A per-key counter in a fixed window that starts with the first point counted. */
export interface Counter {
  /** Adds `points` (negative to give back) and returns the new state. Never refuses. */
  add(key: string, points: number): Promise<CounterState>;
  peek(key: string): Promise<CounterState>;
}

/**
 * Where counters live. In-process now; a Redis store (rate-limiter-flexible's RateLimiterRedis
 * with the same options) makes the limits hold across gateway instances.
 */
export interface RateLimitStore {
  /** A named counter family; `windowSeconds` 0 = never resets (used as a gauge). */
  counter(name: string, windowSeconds: number): Counter;
}

/**
 * Wraps a rate-limiter-flexible limiter as a plain counter: `penalty`/`reward` count without
 * refusing, so the limit can differ per key (and change mid-window) and is compared here.
 */
export function counterFrom(limiter: RateLimiterAbstract): Counter {
  const state = (r: RateLimiterRes | null): CounterState =>
    r ? { consumed: r.consumedPoints, msBeforeReset: r.msBeforeNext } : { consumed: 0, msBeforeReset: -1 };
  return {
    add: async (key, points) => state(points >= 0 ? await limiter.penalty(key, points) : await limiter.reward(key, -points)),
    peek: async (key) => state(await limiter.get(key)),
  };
}

export class MemoryRateLimitStore implements RateLimitStore {
  counter(name: string, windowSeconds: number): Counter {
    return counterFrom(new RateLimiterMemory({ keyPrefix: name, points: Number.MAX_SAFE_INTEGER, duration: windowSeconds }));
  }
}

const retryAfter = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * Per-key limits on generation requests (streamed or not): requests and tokens per window, and
 * generations running at once. Implements the generation service's admission hook.
 */
export class KeyRateLimiter implements RequestAdmission {
  private readonly requests: Counter;
  private readonly tokens: Counter;
  private readonly running: Counter;

  constructor(
    private readonly defaults: RateLimitDefaults,
    store: RateLimitStore = new MemoryRateLimitStore(),
  ) {
    this.requests = store.counter('rl:req', defaults.windowSeconds);
    this.tokens = store.counter('rl:tok', defaults.windowSeconds);
    this.running = store.counter('rl:run', 0);
  }

  /** The limits that apply to a key (null in the key's own limits = the configured default). */
  effective(own: Partial<KeyLimits> | undefined): EffectiveLimits {
    return {
      requestsPerMinute: own?.requestsPerMinute ?? this.defaults.requestsPerMinute,
      tokensPerMinute: own?.tokensPerMinute ?? this.defaults.tokensPerMinute,
      maxConcurrentStreams: own?.maxConcurrentStreams ?? this.defaults.maxConcurrentStreams,
    };
  }

  get windowSeconds(): number {
    return this.defaults.windowSeconds;
  }

  /** Throws RATE_LIMITED when `admit` would refuse the key now; counts nothing. */
  async check(principal: Principal): Promise<void> {
    const limits = this.effective(principal.limits);
    const key = principal.id;
    if (limits.tokensPerMinute > 0) {
      const used = await this.tokens.peek(key);
      if (used.consumed >= limits.tokensPerMinute) throw limited(`This key has used its ${limits.tokensPerMinute} tokens for this minute.`, 'tokensPerMinute', retryAfter(used.msBeforeReset));
    }
    if (limits.requestsPerMinute > 0) {
      const used = await this.requests.peek(key);
      if (used.consumed >= limits.requestsPerMinute) throw limited(`This key may start ${limits.requestsPerMinute} requests per minute.`, 'requestsPerMinute', retryAfter(used.msBeforeReset));
    }
    if (limits.maxConcurrentStreams > 0 && (await this.running.peek(key)).consumed >= limits.maxConcurrentStreams) {
      throw limited(`This key may run ${limits.maxConcurrentStreams} generations at once.`, 'maxConcurrentStreams', 1);
    }
  }

  /**
   * Admits a request or throws RATE_LIMITED with `retryAfterSeconds`. Tokens are known only when a
   * request ends, so a key is admitted while it has used fewer than its tokens in this window;
   * refused requests count against the request limit (hammering does not shorten the wait).
   */
  async admit(principal: Principal): Promise<AdmissionRelease> {
    const limits = this.effective(principal.limits);
    const key = principal.id;

    if (limits.tokensPerMinute > 0) {
      const used = await this.tokens.peek(key);
      if (used.consumed >= limits.tokensPerMinute) {
        throw limited(`This key has used its ${limits.tokensPerMinute} tokens for this minute.`, 'tokensPerMinute', retryAfter(used.msBeforeReset));
      }
    }
    // Counted even without a limit, so a limit set mid-window applies to the whole window.
    const counted = await this.requests.add(key, 1);
    if (limits.requestsPerMinute > 0 && counted.consumed > limits.requestsPerMinute) {
      throw limited(`This key may start ${limits.requestsPerMinute} requests per minute.`, 'requestsPerMinute', retryAfter(counted.msBeforeReset));
    }
    const running = await this.running.add(key, 1);
    if (limits.maxConcurrentStreams > 0 && running.consumed > limits.maxConcurrentStreams) {
      await this.running.add(key, -1);
      // No way to know when a running stream ends; a second is a fair first retry.
      throw limited(`This key may run ${limits.maxConcurrentStreams} generations at once.`, 'maxConcurrentStreams', 1);
    }

    let released = false;
    return ({ totalTokens }) => {
      if (released) return;
      released = true;
      void this.running.add(key, -1);
      if (totalTokens > 0) void this.tokens.add(key, totalTokens);
    };
  }
}

function limited(message: string, limit: keyof EffectiveLimits, retryAfterSeconds: number): GatewayError {
  return new GatewayError(ErrorCode.RATE_LIMITED, `${message} Retry in ${retryAfterSeconds} s.`, { retryAfterSeconds, limit });
}
