import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('rate-limit configuration', () => {
  it('has sensible defaults', () => {
    expect(loadConfig({})).toMatchObject({
      rateLimitRequestsPerMinute: 120,
      rateLimitTokensPerMinute: 200_000,
      maxConcurrentStreamsPerKey: 8,
      rateLimitWindowSeconds: 60,
    });
  });

  it('reads values, with 0 meaning unlimited', () => {
    const c = loadConfig({ RATE_LIMIT_REQUESTS_PER_MINUTE: '0', RATE_LIMIT_TOKENS_PER_MINUTE: '5000', MAX_CONCURRENT_STREAMS_PER_KEY: '2', RATE_LIMIT_WINDOW_SECONDS: '10' });
    expect(c).toMatchObject({ rateLimitRequestsPerMinute: 0, rateLimitTokensPerMinute: 5000, maxConcurrentStreamsPerKey: 2, rateLimitWindowSeconds: 10 });
  });

  it.each([
    ['RATE_LIMIT_REQUESTS_PER_MINUTE', '-1'],
    ['RATE_LIMIT_REQUESTS_PER_MINUTE', 'lots'],
    ['RATE_LIMIT_TOKENS_PER_MINUTE', '1.5'],
    ['MAX_CONCURRENT_STREAMS_PER_KEY', '-3'],
    ['RATE_LIMIT_WINDOW_SECONDS', '0'],
    ['RATE_LIMIT_WINDOW_SECONDS', '7200'],
  ])('stops with a message naming %s when it is %j', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^Invalid configuration:\\n\\s+${variable}:`));
  });
});
