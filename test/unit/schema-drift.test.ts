import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printSchemaSdl } from '../../src/schema/index.js';

describe('schema.graphql', () => {
  it('matches the schema the code builds (run `npm run schema:print` after changing the schema)', () => {
    const committed = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printSchemaSdl());
  });

  it('describes every type and field', () => {
    const sdl = printSchemaSdl();
    // Every type/field/arg definition line is preceded by a description block.
    const lines = sdl.split('\n');
    const undocumented = lines.filter((line, i) => {
      const isDefinition = /^(type|input|enum|scalar|interface|union) /.test(line) || /^\s{2}\w+(\(|:)/.test(line) || /^\s{2}[A-Z_]+$/.test(line);
      return isDefinition && !lines[i - 1]?.trim().endsWith('"""') && !lines[i - 1]?.trim().startsWith('"');
    });
    expect(undocumented).toEqual([]);
  });
});
