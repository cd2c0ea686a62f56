import type { ServerResponse } from 'node:http';

/** Whole (non-streamed) replies and errors: Ollama's `application/json; charset=utf-8`. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

/** Starts an NDJSON stream the way Ollama sends one. */
export function startNdjson(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no', ...headers });
  res.flushHeaders();
}

/**
 * Writes one NDJSON line with backpressure: waits for `drain`. A client that does not read for
 * `slowMs` is cut off (SLOW_CLIENT_TIMEOUT_MS), which aborts its generation instead of holding a
 * model slot.
 */
export function writeLine(res: ServerResponse, value: unknown, slowMs: number): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  if (res.write(`${JSON.stringify(value)}\n`)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => res.destroy(), slowMs);
    const done = () => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
