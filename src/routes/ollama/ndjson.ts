import type { ServerResponse } from 'node:http';
import { writeWithBackpressure } from '../api-request.js';

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
  return writeWithBackpressure(res, `${JSON.stringify(value)}\n`, slowMs);
}
