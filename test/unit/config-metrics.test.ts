import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('METRICS_TOKEN', () => {
  it('is optional, and when set must be 16+ characters; a bad one is named but never echoed', () => {
    expect(loadConfig({}).metricsToken).toBeUndefined();
    expect(loadConfig({ METRICS_TOKEN: '' }).metricsToken).toBeUndefined();
    expect(loadConfig({ METRICS_TOKEN: 'a-long-enough-token' }).metricsToken).toBe('a-long-enough-token');
    let error: unknown;
    try {
      loadConfig({ METRICS_TOKEN: 'shortsecret' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('METRICS_TOKEN: must be at least 16 characters');
    expect((error as Error).message).not.toContain('shortsecret');
  });
});
