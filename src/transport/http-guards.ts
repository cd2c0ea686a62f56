import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode } from '../services/platform/errors.js';

/** Writes a GraphQL-shaped JSON error (`errors[].extensions.code`) with an HTTP status. */
export function sendJsonError(
  res: ServerResponse,
  status: number,
  message: string,
  extensions: Record<string, unknown> & { code: string },
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify({ errors: [{ message, extensions }] }));
}

export const bodyTooLarge = (limit: number) => ({
  message: `Request body is larger than ${limit} bytes.`,
  extensions: { code: ErrorCode.BAD_USER_INPUT, limit: 'maxBodyBytes', maxBytes: limit },
});

/** True when a request carries a body whose size was not declared (chunked transfer encoding). */
export const hasUndeclaredBody = (req: IncomingMessage) =>
  req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined;

/**
 * Reads a body of undeclared length, counting bytes as they arrive. Resolves with the bytes, or
 * with undefined once more than `maxBytes` arrived: the rest is then read and dropped for a
 * moment (so the client sees the 413 instead of a reset) and the connection is cut if it keeps
 * sending.
 */
export function readBodyWithin(req: IncomingMessage, maxBytes: number, discardMs = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onData = (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      settled = true;
      chunks.length = 0;
      const cut = setTimeout(() => req.socket.destroy(), discardMs);
      cut.unref();
      req.once('end', () => clearTimeout(cut));
      resolve(undefined);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks, size));
    });
    req.once('error', (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
    req.once('close', () => {
      if (settled) return;
      settled = true;
      reject(new Error('request closed before its body ended'));
    });
  });
}

export interface SlowClientLimits {
  /** Output queued in the response beyond which the client counts as not reading. */
  maxBufferedBytes: number;
  /** Time queued output may wait for a 'drain' before the client counts as not reading. */
  timeoutMs: number;
}

/**
 * Bounds what a response (an SSE or multipart stream above all) may hold for a client that
 * stopped reading: once more than `maxBufferedBytes` is queued, or a full buffer has not drained
 * for `timeoutMs`, the response is destroyed. Destroying it aborts the request's signal, which
 * cancels the stream (upstream request aborted, partial answer stored as CANCELLED).
 */
export function guardSlowResponse(res: ServerResponse, limits: SlowClientLimits, onSlow: (reason: 'buffer' | 'timeout', bufferedBytes: number) => void): void {
  let timer: NodeJS.Timeout | undefined;
  const clear = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const cut = (reason: 'buffer' | 'timeout') => {
    clear();
    if (res.destroyed) return;
    onSlow(reason, res.writableLength);
    res.destroy();
  };
  res.on('drain', clear);
  res.once('close', clear);
  const write = res.write;
  res.write = function guardedWrite(this: ServerResponse, ...args: unknown[]): boolean {
    if (this.writableLength > limits.maxBufferedBytes) {
      cut('buffer');
      return false;
    }
    const ok = (write as (...a: unknown[]) => boolean).apply(this, args);
    if (!ok && !timer && !this.destroyed) {
      timer = setTimeout(() => cut('timeout'), limits.timeoutMs);
      timer.unref();
    }
    return ok;
  } as ServerResponse['write'];
}

/**
 * Answers a request the auth edge refused (401 or 429) in the shape the client asked for: an SSE
 * stream with one `next` holding the error and `complete` (text/event-stream), else JSON. The
 * body is never read: a request that still has one closes its connection.
 */
export function sendRefusal(req: IncomingMessage, res: ServerResponse, refusal: { status: number; error: { code: string; message: string; details: Record<string, unknown> }; headers: Record<string, string> }): void {
  if (res.headersSent) return void res.destroy();
  const body = { errors: [{ message: refusal.error.message, extensions: { ...refusal.error.details, code: refusal.error.code } }] };
  const unread = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...refusal.headers, ...(unread ? { connection: 'close' } : {}) };
  if (refusal.status === 401) headers['www-authenticate'] = 'Bearer';
  if (/text\/event-stream/i.test(req.headers.accept ?? '')) {
    res.writeHead(refusal.status, { ...headers, 'content-type': 'text/event-stream; charset=utf-8' });
    return void res.end(`event: next\ndata: ${JSON.stringify(body)}\n\nevent: complete\ndata:\n\n`);
  }
  res.writeHead(refusal.status, { ...headers, 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
