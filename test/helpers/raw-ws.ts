import WebSocket from 'ws';
import type { TestGateway } from './gateway.js';

export interface RawSocket {
  ws: WebSocket;
  /** Messages received, parsed as JSON. */
  messages: Array<Record<string, unknown>>;
  /** Resolves with the close code and reason (1006 for a dropped connection). */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves with the HTTP status when the upgrade was refused. */
  refused: Promise<number>;
  opened: Promise<void>;
  send(message: unknown): void;
  /** Waits for a message matching `pred`. */
  next(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** A websocket speaking graphql-transport-ws by hand, for protocol-level tests. */
export function rawSocket(gw: TestGateway, options: WebSocket.ClientOptions = {}, protocol = 'graphql-transport-ws'): RawSocket {
  const ws = new WebSocket(gw.wsUrl, protocol, options);
  const messages: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    try {
      messages.push(JSON.parse(String(data)) as Record<string, unknown>);
    } catch {
      messages.push({ unparsed: String(data) });
    }
    for (const w of waiters) w();
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  const refused = new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error('closed before open')));
  });
  opened.catch(() => {});
  return {
    ws,
    messages,
    closed,
    refused,
    opened,
    send: (message) => ws.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message)),
    next: (pred, timeoutMs = 3000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = messages.find(pred);
          if (!hit) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      }),
  };
}

/** Opens a socket and completes connection_init with `secret`. */
export async function initSocket(gw: TestGateway, secret: string, options: WebSocket.ClientOptions = {}): Promise<RawSocket> {
  const s = rawSocket(gw, options);
  await s.opened;
  s.send({ type: 'connection_init', payload: { 'x-api-key': secret } });
  await s.next((m) => m.type === 'connection_ack');
  return s;
}
