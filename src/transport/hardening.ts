import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import { useArmor } from '../plugins/use-armor.js';
import type { Services } from '../services/container.js';
import { ErrorCode } from '../services/platform/errors.js';
import { ConcurrencyLimit } from '../services/access/limits/concurrency.js';
import type { AuthEdge } from './auth.js';
import { WsClose, type WsExtra, type WsTransportOptions } from './graphql-ws.js';
import { bodyTooLarge, guardSlowResponse, hasUndeclaredBody, readBodyWithin, sendJsonError } from './http-guards.js';

type VerifyCallback = (result: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void;

/**
 * The limits that keep hostile or broken clients from hurting the gateway, in one place for
 * server.ts to wire in: graphql-armor (yoga plugins), HTTP timeouts and connections per address,
 * body size, websockets per address, operations per socket, slow readers. Authentication and
 * what hangs on it (failed-key throttle, sockets per key) is the edge's (src/transport/auth.ts);
 * generations per address are counted in the generation service. Every limit comes from
 * `config.limits` (0 turns it off).
 */
export function createHardening(config: Config, services: Services, edge: AuthEdge) {
  const limits = config.limits;
  const log = services.log;
  const ipOf = (req: IncomingMessage | undefined) => edge.ipOf(req);
  const socketsPerIp = new ConcurrencyLimit(limits.maxSocketsPerIp);
  const connectionsPerIp = new ConcurrencyLimit(limits.maxConnectionsPerIp);
  const slowClient = { maxBufferedBytes: limits.maxClientBufferedBytes, timeoutMs: limits.slowClientTimeoutMs };

  const plugins: Plugin[] = [
    ...useArmor({
      maxDepth: limits.graphqlMaxDepth,
      maxCost: limits.graphqlMaxCost,
      maxAliases: limits.graphqlMaxAliases,
      maxDirectives: limits.graphqlMaxDirectives,
      maxTokens: limits.graphqlMaxTokens,
    }),
  ];

  const wsTransport: WsTransportOptions = {
    keepAliveMs: limits.wsKeepAliveMs,
    maxBufferedBytes: limits.maxClientBufferedBytes,
    slowClientTimeoutMs: limits.slowClientTimeoutMs,
    clientIp: ipOf,
    log,
  };

  return {
    ipOf,
    plugins,
    wsTransport,
    connectionInitWaitTimeout: limits.wsConnectionInitTimeoutMs,
    /** For tests and metrics. */
    counters: { socketsPerIp, connectionsPerIp },

    /**
     * node:http timeouts (headers, whole request, idle keep-alive) and open connections per
     * address: past MAX_CONNECTIONS_PER_IP a new connection is closed at accept. Behind a
     * reverse proxy (TRUST_PROXY) every connection comes from the proxy, so the cap is not applied.
     */
    protectServer(server: Server): void {
      server.headersTimeout = limits.httpHeadersTimeoutMs;
      server.requestTimeout = limits.httpRequestTimeoutMs;
      server.keepAliveTimeout = limits.httpKeepAliveTimeoutMs;
      if (limits.maxConnectionsPerIp <= 0 || limits.trustProxy) return;
      let refused = 0;
      server.on('connection', (socket) => {
        const ip = ipOf({ headers: {}, socket } as IncomingMessage);
        const release = connectionsPerIp.acquire(ip);
        if (!release) {
          // Logged once per hundred, or a flood of refused connections becomes a flood of log lines.
          if (refused++ % 100 === 0) log.warn({ ip, refused }, 'too many connections from this address: closed at accept');
          return void socket.destroy();
        }
        socket.once('close', release);
      });
    },

    /** graphql-ws onSubscribe, first: refuses an operation past MAX_SUBSCRIPTIONS_PER_SOCKET (counting itself). */
    operationsOverLimit(running: number): GraphQLError[] | undefined {
      const max = limits.maxSubscriptionsPerSocket;
      if (max <= 0 || running <= max) return undefined;
      return [
        new GraphQLError(`At most ${max} operations may run at once on one websocket.`, {
          extensions: { code: ErrorCode.RATE_LIMITED, limit: 'maxSubscriptionsPerSocket', retryAfterSeconds: 1 },
        }),
      ];
    },

    /**
     * Before yoga: a body of undeclared length (chunked) is read with a byte count and refused
     * with 413 past MAX_BODY_BYTES; the response is guarded against clients that stop reading.
     * False = answered.
     */
    async prepareGraphQL(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
      if (hasUndeclaredBody(req) && req.method !== 'GET' && req.method !== 'HEAD') {
        const body = await readBodyWithin(req, config.maxBodyBytes).catch(() => null);
        if (body === null) return false; // the client went away mid-body
        if (!body) {
          const { message, extensions } = bodyTooLarge(config.maxBodyBytes);
          sendJsonError(res, 413, message, extensions);
          return false;
        }
        // @whatwg-node/server takes a pre-read body from `req.body` instead of the stream.
        (req as IncomingMessage & { body?: Buffer }).body = body;
      }
      guardSlowResponse(res, slowClient, (reason, bufferedBytes) =>
        log.warn({ ip: ipOf(req), reason, bufferedBytes }, 'HTTP client is not reading: response destroyed, stream cancelled'),
      );
      return true;
    },

    /** ws `verifyClient`: refuses the upgrade (429) for throttled addresses and past MAX_SOCKETS_PER_IP. */
    verifyUpgrade(info: { req: IncomingMessage }, done: VerifyCallback): void {
      const ip = ipOf(info.req);
      edge.blockedFor(ip).then(
        (wait) => {
          if (wait) return done(false, 429, 'Too many failed authentications from this address', { 'retry-after': String(wait) });
          const release = socketsPerIp.acquire(ip);
          if (!release) return done(false, 429, 'Too many open websockets from this address', { 'retry-after': '1' });
          info.req.socket.once('close', release);
          done(true);
        },
        (err: unknown) => {
          log.error({ err, ip }, 'websocket upgrade check failed');
          done(false, 503);
        },
      );
    },

    /** graphql-ws onConnect, before the key is looked up: false when the address is throttled (closed with WsClose.TRY_AGAIN_LATER). */
    async admitInit(extra: WsExtra): Promise<boolean> {
      const wait = await edge.blockedFor(extra.ip);
      if (!wait) return true;
      extra.socket.close(WsClose.TRY_AGAIN_LATER, `Too many failed authentications; retry in ${wait} s`);
      return false;
    },

    /**
     * Wraps a graphql-ws onSubscribe hook: an unexpected failure becomes an error message with
     * INTERNAL_SERVER_ERROR and an errorId (logged), instead of closing the socket.
     */
    typedFailures<A extends unknown[], R>(hook: (...args: A) => Promise<R>): (...args: A) => Promise<R | GraphQLError[]> {
      return async (...args: A) => {
        try {
          return await hook(...args);
        } catch (err) {
          const errorId = randomUUID();
          log.error({ err, errorId }, 'unexpected error preparing a websocket operation');
          return [
            new GraphQLError(`Internal server error (errorId ${errorId}).`, { extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, errorId } }),
          ];
        }
      };
    },
  };
}

export type Hardening = ReturnType<typeof createHardening>;
