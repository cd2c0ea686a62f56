/** A failure carried through a stream as its last item (see `EventStreamOptions.failuresAsItems`). */
export interface StreamFailure {
  readonly streamFailure: unknown;
}

export const isStreamFailure = (v: unknown): v is StreamFailure => typeof v === 'object' && v !== null && 'streamFailure' in v;

/** Rethrows a failure item, returns anything else: the `resolve` of a subscription fed with `failuresAsItems`. */
export function rethrowFailure<T>(item: T | StreamFailure): T {
  if (isStreamFailure(item)) throw item.streamFailure;
  return item;
}

export interface EventStreamOptions<T> {
  /** The caller went away (e.g. its HTTP request closed): the same as `return()`. */
  signal?: AbortSignal;
  /**
   * Deliver a failure of the source as one last item instead of throwing it, so a GraphQL
   * subscription's `resolve` can rethrow it as a typed error in a normal result (graphql-ws and
   * SSE alike) followed by completion, instead of a dropped operation.
   */
  failuresAsItems?: boolean;
  /** After such an item the source is pulled at once, while the consumer is still sending it on (e.g. a phase event). */
  prefetchAfter?(item: T): boolean;
  /** After such an item the work is done: closing the stream then aborts nothing (e.g. the final event). */
  isFinal?(item: T): boolean;
}

/** Opens the source, given the stream's abort signal (and its controller, for registries that cancel with a reason). */
export type StreamStart<T> = (signal: AbortSignal, controller: AbortController) => AsyncIterator<T> | Promise<AsyncIterator<T>>;

/** After an abort, how long a consumer that stopped pulling (a client not reading) gets before the source is closed for it. */
export const PARKED_AFTER_ABORT_MS = 1000;

/**
 * The one adapter between a source of events and whoever consumes it (GraphQL subscriptions, the
 * non-streaming paths, `/v1`): the whole early-stop protocol lives here.
 * - Lazy start: `start` runs on the first `next()`, with the stream's abort signal, so preparing
 *   (images, a session) can already be cancelled.
 * - Abort: `return()` (client completed or disconnected) and the caller's `signal` abort at once,
 *   even while the source waits on the network; the source sees it through the same signal.
 * - A parked consumer: a source suspended at a `yield` never sees an abort, so once aborted and
 *   not pulled for `PARKED_AFTER_ABORT_MS`, the source is closed for the consumer (its `finally`
 *   settles the bookkeeping).
 * - Prefetch after chosen items, and failures delivered as items.
 */
export function eventStream<T>(start: StreamStart<T>, options: EventStreamOptions<T> & { failuresAsItems: true }): AsyncIterableIterator<T | StreamFailure>;
export function eventStream<T>(start: StreamStart<T>, options?: EventStreamOptions<T>): AsyncIterableIterator<T>;
export function eventStream<T>(start: StreamStart<T>, options: EventStreamOptions<T> = {}): AsyncIterableIterator<T | StreamFailure> {
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort();
  if (options.signal?.aborted) controller.abort();
  else options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  let source: Promise<AsyncIterator<T>> | undefined;
  const opened = () => (source ??= Promise.resolve().then(() => start(controller.signal, controller)));
  let pulling = 0;
  let ended = false;
  let finalSent = false;
  let parkedCheck: NodeJS.Timeout | undefined;
  let prefetched: Promise<IteratorResult<T | StreamFailure>> | undefined;

  const closeSource = async (value?: unknown) => {
    if (!source) return;
    const it = await source.catch(() => undefined);
    await it?.return?.(value as undefined);
  };
  const closeIfParked = () => {
    if (ended) return;
    if (pulling === 0) return void closeSource().catch(() => {});
    parkedCheck = setTimeout(closeIfParked, PARKED_AFTER_ABORT_MS);
    parkedCheck.unref();
  };
  const onAbort = () => {
    parkedCheck = setTimeout(closeIfParked, PARKED_AFTER_ABORT_MS);
    parkedCheck.unref();
  };
  controller.signal.addEventListener('abort', onAbort, { once: true });
  const end = () => {
    ended = true;
    clearTimeout(parkedCheck);
    controller.signal.removeEventListener('abort', onAbort);
    options.signal?.removeEventListener('abort', onOuterAbort);
  };

  const pull = async (): Promise<IteratorResult<T | StreamFailure>> => {
    if (ended) return { done: true, value: undefined };
    pulling++;
    try {
      const r = await (await opened()).next();
      if (r.done) end();
      else if (options.isFinal?.(r.value)) finalSent = true;
      return r;
    } catch (e) {
      end();
      if (options.failuresAsItems) return { done: false, value: { streamFailure: e } };
      throw e;
    } finally {
      pulling--;
    }
  };

  return {
    next: async () => {
      if (prefetched) {
        const p = prefetched;
        prefetched = undefined;
        return p;
      }
      const r = await pull();
      if (!r.done && !isStreamFailure(r.value) && options.prefetchAfter?.(r.value) && !controller.signal.aborted) {
        prefetched = pull();
        prefetched.catch(() => {}); // reported to the consumer when it asks for it
      }
      return r;
    },
    return: async (value?: unknown) => {
      // Abort first: the source may be parked on a network read that only an abort ends.
      if (!finalSent) controller.abort();
      end();
      await closeSource(value);
      return { done: true, value: undefined };
    },
    throw: async (error?: unknown) => {
      controller.abort();
      end();
      await closeSource();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
