/**
 * An iterator whose source is prepared asynchronously on the first `next()` (e.g. fetching images,
 * loading a session). Unlike wrapping with an async generator and `yield*`, `return()` reaches the
 * source at once even while a `next()` is pending, so cancellation still aborts the upstream call.
 */
export function lazyStream<T>(prepare: () => Promise<AsyncIterator<T>>): AsyncIterableIterator<T> {
  let source: Promise<AsyncIterator<T>> | undefined;
  let closed = false;
  return {
    async next() {
      if (closed) return { done: true, value: undefined };
      source ??= prepare();
      return (await source).next();
    },
    async return() {
      closed = true;
      if (source) {
        const it = await source.catch(() => undefined);
        await it?.return?.();
      }
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
