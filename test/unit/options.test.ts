import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { optionsSchema, toOllamaOptions } from '../../src/services/generation/options.js';

/** What toOllamaOptions accepts must be exactly what the zod schema accepts (its fast path only skips zod). */
describe('toOllamaOptions', () => {
  const anyValue = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.constantFrom(0, 1, 2, 256, 1000, 131_072, 131_073, 1_048_576, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 1e300),
    fc.array(fc.string({ maxLength: 210 }), { maxLength: 18 }),
    fc.string(),
    fc.constant(null),
  );
  const fields = ['temperature', 'maxTokens', 'repetitionPenalty', 'topP', 'topK', 'seed', 'stop', 'numCtx'];

  it('accepts and rejects what the schema does, with the same translation', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...fields), anyValue), (options) => {
        const present = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== null && v !== undefined));
        const reference = optionsSchema.safeParse(present);
        let result: unknown;
        let error: unknown;
        try {
          result = toOllamaOptions(options as never);
        } catch (e) {
          error = e;
        }
        expect(error === undefined).toBe(reference.success);
        if (reference.success) {
          const o = reference.data;
          expect(result).toEqual({
            ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
            ...(o.maxTokens !== undefined ? { num_predict: o.maxTokens } : {}),
            ...(o.repetitionPenalty !== undefined ? { repeat_penalty: o.repetitionPenalty } : {}),
            ...(o.topP !== undefined ? { top_p: o.topP } : {}),
            ...(o.topK !== undefined ? { top_k: o.topK } : {}),
            ...(o.seed !== undefined ? { seed: o.seed } : {}),
            ...(o.stop !== undefined ? { stop: o.stop } : {}),
            ...(o.numCtx !== undefined ? { num_ctx: o.numCtx } : {}),
          });
        }
      }),
      { numRuns: 3000 },
    );
  });
});
