import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { ConfigError, loadConfig } from '../../src/config.js';
import { defaultInstanceId } from '../../src/services/container.js';

describe('loadConfig', () => {
  it('has working defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 4000, dbPath: './data/gateway.sqlite', ollamaHosts: ['http://127.0.0.1:11434'], defaultCredits: 500, requestCost: 1 });
    expect(c.databaseUrl).toBeUndefined();
  });

  it('reads values and lists', () => {
    const c = loadConfig({ PORT: '8080', OLLAMA_HOST: 'http://gpu1:11434, http://gpu2:11434', DEFAULT_CREDITS: '42', CORS_ORIGINS: 'https://a.example,https://b.example' });
    expect(c.port).toBe(8080);
    expect(c.ollamaHosts).toEqual(['http://gpu1:11434', 'http://gpu2:11434']);
    expect(c.defaultCredits).toBe(42);
    expect(c.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['OLLAMA_HOST', 'ftp://gpu'],
    ['DEFAULT_CREDITS', '-5'],
    ['DATABASE_URL', 'mysql://x'],
    ['LOG_LEVEL', 'loud'],
    ['ADMIN_API_KEY', 'short'],
    ['GPU_VRAM_BYTES', '24GB'],
    ['GPU_VRAM_BYTES', '0'],
    ['INSTANCE_ID', 'has spaces'],
    ['INSTANCE_ID', 'x'.repeat(65)],
    ['INSTANCE_TTL_MS', '10'],
    ['OLLAMA_HEALTH_CHECK_INTERVAL_MS', '-1'],
  ])('stops with a message naming %s when it is %j', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^Invalid configuration:\\n\\s+${variable}:`));
  });

  it('reads the host pool settings: one VRAM value for every host or one per host, in order', () => {
    const c = loadConfig({ OLLAMA_HOST: 'http://gpu1:11434,http://gpu2:11434', GPU_VRAM_BYTES: '24000000000,48000000000', INSTANCE_ID: 'gw-a:4000', INSTANCE_TTL_MS: '5000', OLLAMA_HEALTH_CHECK_INTERVAL_MS: '0' });
    expect(c).toMatchObject({ gpuVramBytes: [24e9, 48e9], instanceId: 'gw-a:4000', instanceTtlMs: 5000, ollamaHealthCheckIntervalMs: 0 });
    expect(loadConfig({ OLLAMA_HOST: 'http://gpu1:11434,http://gpu2:11434', GPU_VRAM_BYTES: '24000000000' }).gpuVramBytes).toEqual([24e9]);
    expect(loadConfig({})).toMatchObject({ instanceId: undefined, instanceTtlMs: 15_000, ollamaHealthCheckIntervalMs: 5000 });
  });

  it('names the instance INSTANCE_ID, else <hostname>:<port> (stable across restarts), else a random id on port 0', () => {
    expect(defaultInstanceId({ instanceId: 'gw-a', port: 4000 })).toBe('gw-a');
    expect(defaultInstanceId({ port: 4000 })).toBe(`${hostname()}:4000`.slice(-64));
    const random = [defaultInstanceId({ port: 0 }), defaultInstanceId({ port: 0 })];
    expect(random[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(random[0]).not.toBe(random[1]);
  });

  it('refuses a host listed twice, and per-host VRAM values that do not match the hosts', () => {
    expect(() => loadConfig({ OLLAMA_HOST: 'http://gpu1:11434,http://GPU1:11434/' })).toThrow(/OLLAMA_HOST: lists the same host twice/);
    expect(() => loadConfig({ OLLAMA_HOST: 'http://gpu1:11434,http://gpu2:11434', GPU_VRAM_BYTES: '1,2,3' })).toThrow(/GPU_VRAM_BYTES: give one value, or one per OLLAMA_HOST entry \(2\)/);
  });

  it('never echoes a secret value in the message', () => {
    // The error is taken outside any try, so a config that loads (no throw) fails here.
    const error = (() => {
      try {
        loadConfig({ ADMIN_API_KEY: 'tooshort' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).toMatch(/ADMIN_API_KEY: must be at least 24 characters/);
    expect(String(error)).not.toContain('tooshort');
  });
});

describe('security settings (issue 18)', () => {
  it('defaults: 16 images per request, 512 connections per address, HTTP timeouts, 100 operations per socket', () => {
    expect(loadConfig({}).limits).toMatchObject({
      maxImagesPerRequest: 16,
      maxConnectionsPerIp: 512,
      httpHeadersTimeoutMs: 10_000,
      httpRequestTimeoutMs: 60_000,
      httpKeepAliveTimeoutMs: 5000,
      maxSubscriptionsPerSocket: 100,
    });
  });

  it('reads them from the environment and refuses bad values by name', () => {
    const limits = loadConfig({ MAX_IMAGES_PER_REQUEST: '4', MAX_CONNECTIONS_PER_IP: '0', HTTP_REQUEST_TIMEOUT_MS: '2000', MAX_SUBSCRIPTIONS_PER_SOCKET: '7' }).limits;
    expect(limits).toMatchObject({ maxImagesPerRequest: 4, maxConnectionsPerIp: 0, httpRequestTimeoutMs: 2000, maxSubscriptionsPerSocket: 7 });
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '10' })).toThrow(/HTTP_HEADERS_TIMEOUT_MS/);
    expect(() => loadConfig({ MAX_IMAGES_PER_REQUEST: '-1' })).toThrow(/MAX_IMAGES_PER_REQUEST/);
  });
});
