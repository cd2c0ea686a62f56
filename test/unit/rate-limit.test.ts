import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/services/platform/errors.js';
import type { Principal } from '../../src/services/access/keys.js';
import { type Counter, type CounterState, KeyRateLimiter, MemoryRateLimitStore, type RateLimitStore } from '../../src/services/access/rate-limit.js';

/** A store with a hand-driven clock: windows end when the test says so, not after real time. */
class ManualStore implements RateLimitStore {
  now = 0;
  readonly counters = new Map<string, { value: number; resetAt: number | null }>();
  counter(name: string, windowSeconds: number): Counter {
    const windowMs = windowSeconds * 1000;
    const state = (k: string): CounterState => {
      const c = this.counters.get(`${name}:${k}`);
      if (!c || (c.resetAt !== null && c.resetAt <= this.now)) return { consumed: 0, msBeforeReset: -1 };
      return { consumed: c.value, msBeforeReset: c.resetAt === null ? -1 : c.resetAt - this.now };
    };
    return {
      add: async (k, points) => {
        const current = state(k);
        const resetAt = current.consumed === 0 && current.msBeforeReset === -1 ? (windowMs ? this.now + windowMs : null) : this.counters.get(`${name}:${k}`)!.resetAt;
        this.counters.set(`${name}:${k}`, { value: current.consumed + points, resetAt });
        return state(k);
      },
      peek: async (k) => state(k),
    };
  }
}

const principal = (id: string, limits?: Principal['limits']): Principal => ({ id, name: id, prefix: 'llmgw_x', role: 'USER', limits });
const defaults = { requestsPerMinute: 3, tokensPerMinute: 100, maxConcurrentStreams: 2, windowSeconds: 60 };

async function refusal(p: Promise<unknown>): Promise<GatewayError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GatewayError);
  return e as GatewayError;
}

describe('KeyRateLimiter', () => {
  it('refuses the request over the per-minute limit with RATE_LIMITED and the seconds until the window resets, then recovers', async () => {
    const store = new ManualStore();
    const limiter = new KeyRateLimiter(defaults, store);
    const a = principal('a');
    for (let i = 0; i < 3; i++) (await limiter.admit(a))({ totalTokens: 0 });
    store.now = 15_500;
    const e = await refusal(limiter.admit(a));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.details).toEqual({ retryAfterSeconds: 45, limit: 'requestsPerMinute' });
    // Another key is not affected.
    (await limiter.admit(principal('b')))({ totalTokens: 0 });
    store.now = 60_000;
    await expect(limiter.admit(a)).resolves.toBeTypeOf('function');
  });

  it('uses the key\'s own limits over the defaults; null follows the default and 0 is unlimited', async () => {
    const limiter = new KeyRateLimiter(defaults, new ManualStore());
    const own = principal('own', { requestsPerMinute: 1, tokensPerMinute: null, maxConcurrentStreams: null });
    (await limiter.admit(own))({ totalTokens: 0 });
    expect((await refusal(limiter.admit(own))).details.limit).toBe('requestsPerMinute');

    const unlimited = principal('free', { requestsPerMinute: 0, tokensPerMinute: 0, maxConcurrentStreams: 0 });
    const releases = [];
    for (let i = 0; i < 50; i++) releases.push(await limiter.admit(unlimited));
    for (const r of releases) r({ totalTokens: 1000 });
    await expect(limiter.admit(unlimited)).resolves.toBeTypeOf('function');

    expect(limiter.effective({ requestsPerMinute: 5, tokensPerMinute: null, maxConcurrentStreams: 0 })).toEqual({
      requestsPerMinute: 5,
      tokensPerMinute: 100,
      maxConcurrentStreams: 0,
    });
    expect(limiter.effective(undefined)).toEqual({ requestsPerMinute: 3, tokensPerMinute: 100, maxConcurrentStreams: 2 });
  });

  it('counts tokens when a request ends and refuses new requests once the window\'s tokens are used', async () => {
    const store = new ManualStore();
    const limiter = new KeyRateLimiter({ ...defaults, requestsPerMinute: 0 }, store);
    const a = principal('a');
    (await limiter.admit(a))({ totalTokens: 60 });
    const second = await limiter.admit(a); // 60 < 100: admitted
    second({ totalTokens: 50 });
    store.now = 20_000;
    const e = await refusal(limiter.admit(a));
    expect(e.details).toEqual({ retryAfterSeconds: 40, limit: 'tokensPerMinute' });
    store.now = 60_001;
    await expect(limiter.admit(a)).resolves.toBeTypeOf('function');
  });

  it('limits generations running at once and frees the slot on release (once, however often release is called)', async () => {
    const limiter = new KeyRateLimiter({ ...defaults, requestsPerMinute: 0 }, new ManualStore());
    const a = principal('a');
    const one = await limiter.admit(a);
    const two = await limiter.admit(a);
    const e = await refusal(limiter.admit(a));
    expect(e.details).toEqual({ retryAfterSeconds: 1, limit: 'maxConcurrentStreams' });
    one({ totalTokens: 0 });
    one({ totalTokens: 0 });
    const three = await limiter.admit(a);
    await refusal(limiter.admit(a)); // still two running: the double release freed one slot only
    two({ totalTokens: 0 });
    three({ totalTokens: 0 });
  });

  it('works on the in-memory rate-limiter-flexible store with real windows', async () => {
    const limiter = new KeyRateLimiter({ requestsPerMinute: 2, tokensPerMinute: 0, maxConcurrentStreams: 0, windowSeconds: 1 }, new MemoryRateLimitStore());
    const a = principal('mem');
    (await limiter.admit(a))({ totalTokens: 0 });
    (await limiter.admit(a))({ totalTokens: 0 });
    const e = await refusal(limiter.admit(a));
    expect(e.details).toEqual({ retryAfterSeconds: 1, limit: 'requestsPerMinute' });
    await new Promise((r) => setTimeout(r, 1050));
    await expect(limiter.admit(a)).resolves.toBeTypeOf('function');
  });
});
