// The configuration is defined once (src/config.ts); the documentation's table must list exactly
// the variables it reads, wherever the table lives (README.md or docs/).
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config.js';

const ROOT = new URL('../../', import.meta.url);

/** Variables named in the first column of the "Configuration" section's table, in the file that has it. */
function documentedVariables(): string[] {
  const files = ['README.md', ...readdirSync(new URL('docs/', ROOT)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const file of files) {
    const text = readFileSync(new URL(file, ROOT), 'utf8');
    const heading = /^#{2,3} Configuration[^\n]*\n/m.exec(text);
    if (!heading) continue;
    const rest = text.slice(heading.index + heading[0].length);
    const next = rest.search(/^#{1,3} /m);
    const section = next < 0 ? rest : rest.slice(0, next);
    const names = [...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
    if (names.length) return names;
  }
  return [];
}

describe('configuration documentation', () => {
  it('lists every variable the gateway reads, once, and nothing else', () => {
    const documented = documentedVariables();
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });
});
