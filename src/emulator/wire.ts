// Low-level HTTP writing shared by all handlers: Ollama's content types, error bodies and timestamps,
// and writes that never touch a closed socket.

import type { ServerResponse } from 'node:http';

export const JSON_TYPE = 'application/json; charset=utf-8';
export const NDJSON_TYPE = 'application/x-ndjson';
export const TEXT_TYPE = 'text/plain; charset=utf-8';

const hrStart = process.hrtime.bigint();
const wallStartNs = BigInt(Date.now()) * 1_000_000n;

/** Wall clock with nanosecond digits (hrtime-derived), like Go's time.Now(). */
export function nowNs(): bigint {
  return wallStartNs + (process.hrtime.bigint() - hrStart);
}

/** Go's RFC3339Nano in UTC: fraction digits with trailing zeros trimmed, none when zero. */
export function rfc3339Nano(ns: bigint = nowNs()): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac ? `.${frac}` : ''}Z`;
}

export function msToRfc3339(ms: number): string {
  return rfc3339Nano(BigInt(Math.round(ms)) * 1_000_000n);
}

export function isWritable(res: ServerResponse): boolean {
  return !res.destroyed && !res.writableEnded && !res.socket?.destroyed;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (!isWritable(res)) return;
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': JSON_TYPE, 'Content-Length': data.length });
  res.end(data);
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = TEXT_TYPE): void {
  if (!isWritable(res)) return;
  const data = Buffer.from(text);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': data.length });
  res.end(res.req.method === 'HEAD' ? undefined : data);
}

/** 200 with an empty body, as /api/delete and /api/copy answer. */
export function sendEmpty(res: ServerResponse): void {
  if (!isWritable(res)) return;
  res.writeHead(200, { 'Content-Length': 0 });
  res.end();
}

/** Resolve after `ms`, or early (false) when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolve when the signal aborts (a stalled stream waits here until the client gives up). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
