import { describe, expect, it } from 'vitest';
import { AuthFailureThrottle } from '../../src/services/access/limits/auth-throttle.js';
import { clientIp } from '../../src/services/access/limits/client-ip.js';
import { ConcurrencyLimit } from '../../src/services/access/limits/concurrency.js';

describe('ConcurrencyLimit', () => {
  it('counts per id up to max, releases once, and 0 means no limit', () => {
    const limit = new ConcurrencyLimit(2);
    const a = limit.acquire('x')!;
    const b = limit.acquire('x')!;
    expect(limit.acquire('x')).toBeUndefined();
    expect(limit.acquire('y')).toBeDefined();
    a();
    a();
    expect(limit.count('x')).toBe(1);
    expect(limit.acquire('x')).toBeDefined();
    b();
    const free = new ConcurrencyLimit(0);
    for (let i = 0; i < 100; i++) expect(free.acquire('x')).toBeDefined();
  });
});

describe('AuthFailureThrottle', () => {
  it('blocks an address once it reaches the limit, with the wait in seconds; 0 = off', async () => {
    const t = new AuthFailureThrottle(2, 60);
    expect(await t.recordFailure('1.2.3.4')).toBe(0);
    expect(await t.blockedFor('1.2.3.4')).toBe(0);
    expect(await t.recordFailure('1.2.3.4')).toBeGreaterThan(0);
    const wait = await t.blockedFor('1.2.3.4');
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    expect(await t.blockedFor('5.6.7.8')).toBe(0);
    const off = new AuthFailureThrottle(0, 60);
    for (let i = 0; i < 10; i++) await off.recordFailure('1.2.3.4');
    expect(await off.blockedFor('1.2.3.4')).toBe(0);
    expect(AuthFailureThrottle.error(7).details).toEqual({ retryAfterSeconds: 7, limit: 'authFailures' });
  });
});

describe('clientIp', () => {
  const req = (remoteAddress: string, xff?: string) => ({ socket: { remoteAddress }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as never;
  it('uses the peer address, unwrapping IPv4-mapped IPv6', () => {
    expect(clientIp(req('::ffff:127.0.0.1'), false)).toBe('127.0.0.1');
    expect(clientIp(req('::1', '9.9.9.9'), false)).toBe('::1');
  });
  it('with trustProxy, takes the last X-Forwarded-For entry (the one the proxy added)', () => {
    expect(clientIp(req('10.0.0.1', '6.6.6.6, 203.0.113.7'), true)).toBe('203.0.113.7');
    expect(clientIp(req('10.0.0.1'), true)).toBe('10.0.0.1');
  });
});
