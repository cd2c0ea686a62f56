// Units behind security round 2: the per-address gate, the rate limiter's non-counting check,
// CSV neutralising, display prefixes and the mapping of Ollama's error texts.
import { describe, expect, it } from 'vitest';
import { ErrorCode, GatewayError } from '../../src/services/platform/errors.js';
import { displayPrefix } from '../../src/services/access/keys.js';
import { ConcurrencyGate } from '../../src/services/access/limits/concurrency-gate.js';
import { mapUpstreamError, upstreamText } from '../../src/services/ollama/errors.js';
import { KeyRateLimiter } from '../../src/services/access/rate-limit.js';
import { neutraliseFormula } from '../../src/services/access/usage-csv.js';

const responseError = (status_code: number, error: string) => Object.assign(new Error(error), { name: 'ResponseError', error, status_code });

describe('ConcurrencyGate', () => {
  it('counts per address, refuses past the limit with RATE_LIMITED, and check() counts nothing', () => {
    const gate = new ConcurrencyGate(2);
    const a = gate.enter('10.0.0.1');
    gate.enter('10.0.0.1');
    expect(() => gate.check('10.0.0.1')).toThrow(expect.objectContaining({ code: ErrorCode.RATE_LIMITED, details: expect.objectContaining({ limit: 'maxConcurrentStreamsPerIp' }) }));
    expect(() => gate.enter('10.0.0.1')).toThrow(GatewayError);
    expect(gate.running('10.0.0.1')).toBe(2);
    gate.check('10.0.0.2');
    expect(gate.running('10.0.0.2')).toBe(0);
    a();
    a(); // idempotent
    expect(gate.running('10.0.0.1')).toBe(1);
    expect(() => gate.enter('10.0.0.1')).not.toThrow();
  });
});

describe('KeyRateLimiter.check', () => {
  it('refuses what admit would refuse, without counting a request', async () => {
    const limiter = new KeyRateLimiter({ requestsPerMinute: 2, tokensPerMinute: 0, maxConcurrentStreams: 1, windowSeconds: 60 });
    const principal = { id: 'k', name: 'k', prefix: 'llmgw_k', role: 'USER' as const };
    for (let i = 0; i < 5; i++) await limiter.check(principal); // counts nothing
    const release = await limiter.admit(principal);
    await expect(limiter.check(principal)).rejects.toMatchObject({ code: ErrorCode.RATE_LIMITED, details: { limit: 'maxConcurrentStreams' } });
    release({ totalTokens: 0 });
    await limiter.check(principal);
    (await limiter.admit(principal))({ totalTokens: 0 });
    await expect(limiter.check(principal)).rejects.toMatchObject({ details: { limit: 'requestsPerMinute' } });
  });
});

describe('CSV and key prefixes', () => {
  it.each(['=1+1', '+1', '-1', '@SUM(A1)', '\tx', '\rx'])('neutralises %j', (v) => expect(neutraliseFormula(v)).toBe(`'${v}`));
  it.each(['plain', '1-2', ' =x', ''])('leaves %j', (v) => expect(neutraliseFormula(v)).toBe(v));
  it('keeps llmgw_ and 4 characters, or 4 characters of a chosen secret', () => {
    expect(displayPrefix('llmgw_AbCdEfGhIjKl')).toBe('llmgw_AbCd');
    expect(displayPrefix('my-own-admin-secret-of-24')).toBe('my-o');
  });
});

describe("Ollama's error texts", () => {
  const SECRET = 'open /var/lib/ollama/models/blobs/sha256-abc: no such file';
  it.each([
    [responseError(500, SECRET), ErrorCode.UPSTREAM_ERROR, 'Ollama failed (HTTP 500).'],
    [responseError(400, SECRET), ErrorCode.BAD_USER_INPUT, 'Ollama rejected the request as invalid (HTTP 400).'],
    [responseError(400, `registry.ollama.ai/library/x:latest does not support vision ${SECRET}`), ErrorCode.CAPABILITY_MISSING, 'Model "x" does not support what the request asks for (vision).'],
    [new Error(SECRET), ErrorCode.UPSTREAM_ERROR, 'Ollama reported an error during generation.'],
  ])('maps %s to its code with the gateway\'s message; the text stays in the cause', (e, code, message) => {
    const mapped = mapUpstreamError(e, 'x');
    expect(mapped).toMatchObject({ code, message });
    expect(upstreamText(mapped)).toContain(SECRET);
  });
});
