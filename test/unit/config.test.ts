import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

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
  ])('stops with a message naming %s when it is %j', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^Invalid configuration:\\n\\s+${variable}:`));
  });

  it('never echoes a secret value in the message', () => {
    try {
      loadConfig({ ADMIN_API_KEY: 'tooshort' });
      expect.unreachable();
    } catch (e) {
      expect(String(e)).not.toContain('tooshort');
    }
  });
});
