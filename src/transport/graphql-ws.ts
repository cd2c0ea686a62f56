import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { CloseCode, MessageType, type ServerOptions, handleProtocols, makeServer } from 'graphql-ws';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../services/platform/logger.js';

/** What every graphql-ws hook gets in `ctx.extra`. */
export interface WsExtra {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  /** The client's address (see src/services/access/limits/client-ip.ts). */
  readonly ip: string;
}

/**
 * WebSocket (RFC 6455) close codes the gateway uses. graphql-ws' own are its `CloseCode` list
 * (e.g. `CloseCode.Forbidden` for a refused key, `CloseCode.Unauthorized` for an operation
 * without one, `CloseCode.BadRequest`, `CloseCode.InternalServerError`); ws itself closes with
 * 1009 a message over MAX_WS_PAYLOAD_BYTES.
 */
export const WsClose = {
  /** The client does not read what it asked for; its streams are cancelled. */
  SLOW_CONSUMER: 1008,
  /** Over a connection limit (sockets per key) or failed-authentication throttle; retry later. */
  TRY_AGAIN_LATER: 1013,
  /** The gateway is shutting down. */
  GOING_AWAY: 1001,
} as const;

export interface WsTransportOptions {
  /** Ping interval; a peer that has not answered one ping by the next is dropped. 0 = off. */
  keepAliveMs: number;
  /** Bytes queued for a socket beyond which it counts as not reading. */
  maxBufferedBytes: number;
  /** Time a queued message may wait to be flushed before the socket counts as not reading. */
  slowClientTimeoutMs: number;
  clientIp(request: IncomingMessage): string;
  log: Logger;
}

class SlowConsumerError extends Error {
  override name = 'SlowConsumerError';
}

/**
 * Message types only a server may send. graphql-ws' makeServer throws a plain Error (text only,
 * no code) for a well-formed message of these types; the gateway recognises the case by the
 * message's type instead, read again only on that failure path.
 */
const SERVER_ONLY_TYPES = new Set<unknown>([MessageType.ConnectionAck, MessageType.Next, MessageType.Error]);
const isServerOnlyMessage = (text: string): boolean => {
  try {
    return SERVER_ONLY_TYPES.has((JSON.parse(text) as { type?: unknown } | null)?.type);
  } catch {
    return false;
  }
};

const textOf = (data: RawData): string =>
  Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');

/**
 * graphql-ws on a `ws` server: graphql-ws' `makeServer` on an adapter of our own (modelled on its
 * `useServer`), plus what a server on the network needs. Sends that a client does not drain are bounded (bytes queued and time
 * waiting); a client over either bound has its streams cancelled and its socket closed (SLOW_CONSUMER).
 * Hook failures are logged with an errorId and close with InternalServerError and a fixed reason (no
 * message text reaches the client). Messages of a type only a server may send close with BadRequest.
 */
export function serveGraphQLWs<P extends Record<string, unknown>, E extends Record<string, unknown>>(
  wss: WebSocketServer,
  options: ServerOptions<P, WsExtra & E>,
  transport: WsTransportOptions,
): { dispose(): Promise<void> } {
  const server = makeServer(options);
  const { log } = transport;
  (wss.options as { handleProtocols?: unknown }).handleProtocols = handleProtocols;

  wss.on('error', (err) => log.error({ err }, 'websocket server error'));
  wss.on('connection', (socket, request) => {
    const ip = transport.clientIp(request);
    // ws has already answered protocol errors (bad frames, 1009 too big) with a close; just note them.
    socket.on('error', (err) => log.info({ ip, err: err.message }, 'websocket protocol error'));

    let alive = true;
    socket.on('pong', () => (alive = true));
    const pinger =
      transport.keepAliveMs > 0
        ? setInterval(() => {
            if (!alive) return void socket.terminate();
            alive = false;
            socket.ping();
          }, transport.keepAliveMs)
        : undefined;
    pinger?.unref();

    // Sends waiting to be flushed; rejected at once when the socket is found not to read.
    const waiting = new Set<(e: Error) => void>();
    // The stall clock: when the sends still waiting last saw progress (a send started with none
    // waiting, or one was flushed). One timer checks it, re-armed only when it fires: a timer per
    // send (set and cleared on every event) was a visible part of the relay's per-event cost.
    let progressAt = 0;
    let stalled: NodeJS.Timeout | undefined;
    let slow = false;
    const checkStall = () => {
      stalled = undefined;
      if (!waiting.size || slow) return;
      const left = progressAt + transport.slowClientTimeoutMs - performance.now();
      if (left <= 0) return cutSlow('timeout');
      stalled = setTimeout(checkStall, left);
      stalled.unref();
    };
    const progress = () => {
      progressAt = performance.now();
      if (!stalled && waiting.size) {
        stalled = setTimeout(checkStall, transport.slowClientTimeoutMs);
        stalled.unref();
      }
    };
    const cutSlow = (reason: 'buffer' | 'timeout') => {
      if (slow) return;
      slow = true;
      clearTimeout(stalled);
      log.warn({ ip, reason, bufferedBytes: socket.bufferedAmount }, 'websocket client is not reading: streams cancelled, socket closed');
      const error = new SlowConsumerError('The client is not reading fast enough.');
      for (const reject of waiting) reject(error);
      waiting.clear();
      socket.close(WsClose.SLOW_CONSUMER, 'Client is not reading fast enough');
      // The close frame waits behind the unread data: do not wait for the handshake.
      setTimeout(() => socket.terminate(), 500).unref();
    };

    // The messages sent to a socket in one tick leave in one write (e.g. a DONE event and the
    // `complete` after it; operations multiplexed on one socket): the TCP socket (the upgrade
    // request's) is corked at the first send of a tick and uncorked after it. Each graphql-ws
    // message stays its own websocket message.
    const tcp = request.socket;
    let corked = false;
    const uncork = () => {
      corked = false;
      tcp.uncork();
    };
    const corkForTick = () => {
      if (corked) return;
      corked = true;
      tcp.cork();
      process.nextTick(uncork);
    };

    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            // A socket cut as slow is CLOSING until its close frame gets through (or it is
            // terminated): refuse sends meanwhile, or its streams would keep producing into it.
            if (slow) return reject(new SlowConsumerError('The client is not reading fast enough.'));
            if (socket.readyState !== socket.OPEN) return resolve();
            if (socket.bufferedAmount > transport.maxBufferedBytes) {
              cutSlow('buffer');
              return reject(new SlowConsumerError('The client is not reading fast enough.'));
            }
            const startedStall = waiting.size === 0;
            waiting.add(reject);
            if (startedStall) progress();
            corkForTick();
            socket.send(data, (err) => {
              if (!waiting.delete(reject)) return; // already rejected as slow
              progress(); // restart the clock for what is still queued
              if (err) reject(err);
              else resolve();
            });
            // Below the socket's high-water mark the operation goes on at once (as a stream's
            // write() returning true allows); above it, it waits until its message is flushed, so
            // a client that does not read still stops its streams (and trips the bounds above).
            if (socket.bufferedAmount < tcp.writableHighWaterMark) resolve();
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          socket.on('message', async (data) => {
            const text = textOf(data);
            try {
              await cb(text);
            } catch (err) {
              if (socket.readyState !== socket.OPEN) return;
              if (err instanceof SlowConsumerError) return;
              if (isServerOnlyMessage(text)) return void socket.close(CloseCode.BadRequest, 'Invalid message received');
              const errorId = randomUUID();
              log.error({ err, errorId, ip }, 'websocket message handling failed');
              socket.close(CloseCode.InternalServerError, `Internal server error (errorId ${errorId})`);
            }
          }),
      },
      { socket, request, ip } as WsExtra & E,
    );

    socket.once('close', (code, reason) => {
      clearInterval(pinger);
      clearTimeout(stalled);
      closed(code, reason.toString('utf8')).catch((err: unknown) => log.error({ err, ip }, 'websocket close handling failed'));
    });
  });

  return {
    async dispose() {
      for (const client of wss.clients) client.close(WsClose.GOING_AWAY, 'Going away');
      // A client that does not read never completes the close handshake (ws would wait 30 s).
      const cut = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
      }, 1000);
      cut.unref();
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
      clearTimeout(cut);
    },
  };
}
