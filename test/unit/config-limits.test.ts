import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('hardening limits configuration', () => {
  it('has safe defaults', () => {
    expect(loadConfig({}).limits).toEqual({
      graphqlMaxDepth: 10,
      graphqlMaxCost: 10_000,
      graphqlMaxAliases: 15,
      graphqlMaxDirectives: 50,
      graphqlMaxTokens: 1000,
      maxPromptChars: 1_000_000,
      wsConnectionInitTimeoutMs: 5000,
      wsKeepAliveMs: 12_000,
      maxSocketsPerIp: 256,
      maxSocketsPerKey: 64,
      maxConcurrentStreamsPerIp: 32,
      authFailureLimit: 20,
      authFailureWindowSeconds: 60,
      maxClientBufferedBytes: 4 * 1024 * 1024,
      slowClientTimeoutMs: 15_000,
      upstreamRetryRounds: 1,
      upstreamRetryDelayMs: 250,
      trustProxy: false,
      maxImagesPerRequest: 16,
      maxConnectionsPerIp: 512,
      httpHeadersTimeoutMs: 10_000,
      httpRequestTimeoutMs: 60_000,
      httpKeepAliveTimeoutMs: 5000,
      maxSubscriptionsPerSocket: 100,
      maxEmbedInputs: 256,
    });
  });

  it('reads values; 0 turns a limit off', () => {
    const c = loadConfig({ GRAPHQL_MAX_DEPTH: '0', MAX_SOCKETS_PER_IP: '0', AUTH_FAILURE_LIMIT: '5', UPSTREAM_RETRIES: '0', TRUST_PROXY: 'true', WS_KEEPALIVE_MS: '0' });
    expect(c.limits).toMatchObject({ graphqlMaxDepth: 0, maxSocketsPerIp: 0, authFailureLimit: 5, upstreamRetryRounds: 0, trustProxy: true, wsKeepAliveMs: 0 });
  });

  it.each([
    ['GRAPHQL_MAX_TOKENS', '-1'],
    ['GRAPHQL_MAX_COST', 'many'],
    ['MAX_PROMPT_CHARS', '0'],
    ['WS_CONNECTION_INIT_TIMEOUT_MS', '10'],
    ['MAX_CLIENT_BUFFERED_BYTES', '100'],
    ['SLOW_CLIENT_TIMEOUT_MS', '1.5'],
    ['UPSTREAM_RETRIES', '9'],
    ['AUTH_FAILURE_WINDOW_SECONDS', '0'],
    ['TRUST_PROXY', 'yes'],
  ])('stops with a message naming %s when it is %j', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^Invalid configuration:\\n\\s+${variable}:`));
  });
});
