/** A failure carried through a subscription's source stream as an item. */
export interface StreamFailure {
  readonly streamFailure: unknown;
}

export const isStreamFailure = (v: unknown): v is StreamFailure =>
  typeof v === 'object' && v !== null && 'streamFailure' in v;

/**
 * Turns an error thrown by a source stream into one last item. The field's `resolve` rethrows it,
 * so the client receives a normal result with a typed error (over graphql-ws and SSE alike)
 * and then completion, instead of a dropped operation or an untyped protocol error.
 * `return()` is forwarded untouched so cancellation reaches the source at once.
 */
export function failuresAsItems<T>(source: AsyncIterator<T>): AsyncIterableIterator<T | StreamFailure> {
  let failed = false;
  return {
    async next() {
      if (failed) return { done: true, value: undefined };
      try {
        return await source.next();
      } catch (streamFailure) {
        failed = true;
        return { done: false, value: { streamFailure } };
      }
    },
    async return(value?: unknown) {
      failed = true;
      await source.return?.(value);
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The `resolve` of a subscription fed by `failuresAsItems`. */
export function rethrowFailure<T>(item: T | StreamFailure): T {
  if (isStreamFailure(item)) throw item.streamFailure;
  return item;
}
