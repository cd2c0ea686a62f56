import { ErrorCode, GatewayError } from '../errors.js';

export interface RetryPolicy {
  /** Further attempts after the first; 0 = no retry. */
  retries: number;
  delayMs: number;
  /** Called before each retry (logging). */
  onRetry?(attempt: number, error: GatewayError): void;
}

/** Failures worth one more try: the connection to Ollama failed or dropped before it answered. */
const retryable = (e: unknown): e is GatewayError => e instanceof GatewayError && e.code === ErrorCode.UPSTREAM_UNAVAILABLE;

/**
 * Streams from `open()`, opening it again (up to `policy.retries` times) when it fails with
 * UPSTREAM_UNAVAILABLE before Ollama sent a single chunk. Once a chunk has arrived nothing is
 * retried: the client may already have tokens, and a second answer would be a second charge.
 * The caller reserves credits and writes its usage-log row once, around the whole thing.
 */
export function retryBeforeFirstChunk<T>(open: () => AsyncIterable<T>, policy: RetryPolicy, signal: AbortSignal): AsyncGenerator<T> {
  let inner: AsyncIterator<T> | undefined;
  let received = false;
  const first = async (): Promise<IteratorResult<T>> => {
    for (let attempt = 0; ; ) {
      inner = open()[Symbol.asyncIterator]();
      try {
        const r = await inner.next();
        received = true;
        return r;
      } catch (e) {
        if (attempt >= policy.retries || signal.aborted || !retryable(e)) throw e;
        attempt++;
        policy.onRetry?.(attempt, e);
        await pause(policy.delayMs * attempt, signal);
        if (signal.aborted) throw e;
      }
    }
  };
  // Once a chunk has arrived, every next() goes straight to the upstream iterator (no layer per token).
  const it = {
    next: (): Promise<IteratorResult<T>> => (received ? inner!.next() : first()),
    return: async (value?: unknown): Promise<IteratorResult<T>> => {
      await inner?.return?.(value);
      return { done: true, value: value as T };
    },
    throw: async (error?: unknown): Promise<IteratorResult<T>> => {
      await inner?.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it as unknown as AsyncGenerator<T>;
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
