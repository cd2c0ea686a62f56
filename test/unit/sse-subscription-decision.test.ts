import { describe, expect, it } from 'vitest';
import { OperationTypeCache, nonStreamProcessor } from '../../src/transport/sse-request.js';

// What src/transport/sse-request.ts decides (for sse-subscriptions.ts) before running anything: which operation a
// document selects (only subscriptions are served there) and how yoga would answer a result that
// is not a stream for a given Accept header (multipart is left to yoga).

describe('the operation a document selects, from its top-level tokens', () => {
  const types = new OperationTypeCache(1000);

  it('reads anonymous, named and shorthand operations', () => {
    expect(types.selected('subscription { generate(input: {model: "m", prompt: "p"}) { type } }', undefined)).toBe('subscription');
    expect(types.selected('subscription Gen($input: GenerateInput! = {model: "m"}) @x(a: [1]) { generate(input: $input) { type } }', undefined)).toBe('subscription');
    expect(types.selected('{ health { status } }', undefined)).toBe('query');
    expect(types.selected('mutation { a }', null)).toBe('mutation');
  });

  it('selects by operationName among several, and skips fragments', () => {
    const doc = 'query Q { a } fragment F on Subscription { b } subscription S { ...F } # subscription T { c }';
    expect(types.selected(doc, 'S')).toBe('subscription');
    expect(types.selected(doc, 'Q')).toBe('query');
    expect(types.selected(doc, 'T')).toBeUndefined(); // a comment, not an operation
    expect(types.selected(doc, undefined)).toBeUndefined(); // ambiguous: yoga answers it
  });

  it('does not guess: a field named subscription, unbalanced brackets, type definitions, bad tokens', () => {
    expect(types.selected('query { subscription { a } }', undefined)).toBe('query');
    expect(types.selected('subscription { generate(', undefined)).toBeUndefined();
    expect(types.selected('type Subscription { a: Int }', undefined)).toBeUndefined();
    expect(types.selected('subscription { a } }', undefined)).toBeUndefined();
    expect(types.selected('subscription { "unterminated }', undefined)).toBeUndefined();
  });

  it('gives up past MAX_TOKENS, leaving the refusal to armor in yoga', () => {
    const small = new OperationTypeCache(10);
    expect(small.selected('subscription { a b c }', undefined)).toBe('subscription');
    expect(small.selected('subscription { a b c d e f g h i j }', undefined)).toBeUndefined();
  });
});

describe("the processor yoga would pick for a result that is not a stream", () => {
  it('is SSE when only text/event-stream is asked for', () => {
    expect(nonStreamProcessor('text/event-stream')).toEqual({ kind: 'sse' });
    expect(nonStreamProcessor('text/event-stream; charset=utf-8')).toEqual({ kind: 'sse' });
  });

  it('is JSON when JSON is asked for too (the last match in yoga order wins)', () => {
    expect(nonStreamProcessor('text/event-stream, application/json')).toEqual({ kind: 'regular', mediaType: 'application/json' });
    expect(nonStreamProcessor('application/graphql-response+json, text/event-stream')).toEqual({ kind: 'regular', mediaType: 'application/graphql-response+json' });
    expect(nonStreamProcessor('text/event-stream, */*')).toEqual({ kind: 'regular', mediaType: 'application/json' });
  });

  it('is left to yoga when multipart would answer, or text/event-stream is not named', () => {
    expect(nonStreamProcessor('text/event-stream, multipart/mixed')).toBeUndefined();
    expect(nonStreamProcessor('*/*')).toBeUndefined();
    expect(nonStreamProcessor('text/event-stream; charset=latin1')).toBeUndefined();
  });
});
