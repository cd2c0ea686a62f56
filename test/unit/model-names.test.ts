import { describe, expect, it } from 'vitest';
import { canonicalModelName, normalizeAlias, requireModelName } from '../../src/services/ollama/model-names.js';

describe('canonicalModelName', () => {
  it('adds the default tag, drops the default registry and namespace, and lower-cases', () => {
    expect(canonicalModelName('llama3.2')).toBe('llama3.2:latest');
    expect(canonicalModelName('  Llama3.2:LATEST ')).toBe('llama3.2:latest');
    expect(canonicalModelName('library/llama3.2')).toBe('llama3.2:latest');
    expect(canonicalModelName('registry.ollama.ai/library/qwen3:0.6b')).toBe('qwen3:0.6b');
    expect(canonicalModelName('user/model:q4_K_M')).toBe('user/model:q4_k_m');
    expect(canonicalModelName('localhost:5000/team/model')).toBe('localhost:5000/team/model:latest');
  });

  it('refuses names Ollama would refuse', () => {
    for (const bad of ['', '   ', 'bad name', 'x:', ':tag', 'a/b/c/d', '-lead', 'name:ta g', 'ns.dot/model', 'a'.repeat(81), 'emoji🦙']) {
      expect(canonicalModelName(bad), bad).toBeNull();
    }
    expect(() => requireModelName('bad name')).toThrow(/not a valid Ollama model name/);
  });
});

describe('normalizeAlias', () => {
  it('lower-cases and treats empty as none', () => {
    expect(normalizeAlias(' Fast ')).toBe('fast');
    expect(normalizeAlias('')).toBeNull();
    expect(normalizeAlias(null)).toBeNull();
  });

  it('refuses ":" and "/" (those always mean Ollama names) and other characters', () => {
    for (const bad of ['a:b', 'a/b', 'with space', '-x', 'x'.repeat(65)]) expect(() => normalizeAlias(bad), bad).toThrow(/Alias/);
  });
});
