// The examples' typed documents (gql.tada) read the schema from examples/graphql-env.d.ts; this
// fails when that file no longer matches schema.graphql (run `npm run examples:types`). The
// examples themselves are type-checked by `npm run typecheck` (tsconfig.json includes examples/).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { extractIntrospectionHeader, loadFromSDL, minifyIntrospection, outputIntrospectionFile } from '@gql.tada/internal';
import { describe, expect, it } from 'vitest';

const file = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

describe('examples/graphql-env.d.ts', () => {
  it('is what `npm run examples:types` generates from schema.graphql', async () => {
    const current = readFileSync(file('examples/graphql-env.d.ts'), 'utf8');
    const { introspection } = await loadFromSDL({ file: file('schema.graphql'), assumeValid: true }).load();
    const expected = outputIntrospectionFile(minifyIntrospection(introspection), {
      fileType: '.d.ts',
      shouldPreprocess: true,
      preamble: extractIntrospectionHeader(current) || undefined,
    });
    expect(current === expected, 'examples/graphql-env.d.ts is stale: run `npm run examples:types`').toBe(true);
  });
});
