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
export async function* retryBeforeFirstChunk<T>(open: () => AsyncIterable<T>, policy: RetryPolicy, signal: AbortSignal): AsyncGenerator<T> {
  for (let attempt = 0; ; attempt++) {
    let received = false;
    try {
      for await (const chunk of open()) {
        received = true;
        yield chunk;
      }
      return;
    } catch (e) {
      if (received || attempt >= policy.retries || signal.aborted || !retryable(e)) throw e;
      policy.onRetry?.(attempt + 1, e);
      await pause(policy.delayMs * (attempt + 1), signal);
      if (signal.aborted) throw e;
    }
  }
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
