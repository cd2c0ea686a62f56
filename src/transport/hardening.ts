import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import { keyFromHeaders } from '../context.js';
import { useArmor } from '../plugins/use-armor.js';
import { useStreamLimitPerIp } from '../plugins/use-stream-limit-per-ip.js';
import type { Services } from '../services/container.js';
import { ErrorCode } from '../services/errors.js';
import { AuthFailureThrottle } from '../services/limits/auth-throttle.js';
import { clientIp } from '../services/limits/client-ip.js';
import { ConcurrencyLimit } from '../services/limits/concurrency.js';
import { WsClose, type WsExtra, type WsTransportOptions } from './graphql-ws.js';
import { bodyTooLarge, guardSlowResponse, hasUndeclaredBody, readBodyWithin, sendJsonError } from './http-guards.js';

type VerifyCallback = (result: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void;

const headerGetter = (req: IncomingMessage) => ({
  get: (name: string) => {
    const v = req.headers[name.toLowerCase()];
    return (Array.isArray(v) ? v[0] : v) ?? null;
  },
});

/**
 * The limits that keep hostile or broken clients from hurting the gateway, in one place for
 * server.ts to wire in: graphql-armor and per-address stream limits (yoga plugins), the
 * failed-authentication throttle, body size, sockets per address and per key, slow readers.
 * Every limit comes from `config.limits` (0 turns it off).
 */
export function createHardening(config: Config, services: Services) {
  const limits = config.limits;
  const log = services.log;
  const ipOf = (req: IncomingMessage | undefined) => clientIp(req, limits.trustProxy);
  const authThrottle = new AuthFailureThrottle(limits.authFailureLimit, limits.authFailureWindowSeconds, services.redis?.rateLimitStore());
  const socketsPerIp = new ConcurrencyLimit(limits.maxSocketsPerIp);
  const socketsPerKey = new ConcurrencyLimit(limits.maxSocketsPerKey);
  const streamsPerIp = new ConcurrencyLimit(limits.maxConcurrentStreamsPerIp);
  const slowClient = { maxBufferedBytes: limits.maxClientBufferedBytes, timeoutMs: limits.slowClientTimeoutMs };

  const plugins: Plugin[] = [
    ...useArmor({
      maxDepth: limits.graphqlMaxDepth,
      maxCost: limits.graphqlMaxCost,
      maxAliases: limits.graphqlMaxAliases,
      maxDirectives: limits.graphqlMaxDirectives,
      maxTokens: limits.graphqlMaxTokens,
    }),
    useStreamLimitPerIp(streamsPerIp) as Plugin,
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
    counters: { socketsPerIp, socketsPerKey, streamsPerIp },

    /**
     * Before any route (except /health): an address throttled for failed authentications that
     * presents a key gets 429 RATE_LIMITED without the key being looked up. False = answered.
     */
    async screen(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
      if (!keyFromHeaders(headerGetter(req))) return true;
      const wait = await authThrottle.blockedFor(ipOf(req));
      if (!wait) return true;
      const error = AuthFailureThrottle.error(wait);
      sendJsonError(res, 429, error.message, { ...error.details, code: error.code }, { 'retry-after': String(wait) });
      return false;
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

    /** Counts a failed authentication of an HTTP request (the context factory found no valid key). */
    async authFailed(req: IncomingMessage | undefined): Promise<void> {
      await authThrottle.recordFailure(ipOf(req));
    },

    /** ws `verifyClient`: refuses the upgrade (429) for throttled addresses and past MAX_SOCKETS_PER_IP. */
    verifyUpgrade(info: { req: IncomingMessage }, done: VerifyCallback): void {
      const ip = ipOf(info.req);
      authThrottle.blockedFor(ip).then(
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

    /** graphql-ws onConnect, before the key is looked up: false when the address is throttled (closed 1013). */
    async admitInit(extra: WsExtra): Promise<boolean> {
      const wait = await authThrottle.blockedFor(extra.ip);
      if (!wait) return true;
      extra.socket.close(WsClose.TRY_AGAIN_LATER, `Too many failed authentications; retry in ${wait} s`);
      return false;
    },

    /** graphql-ws onConnect after a bad key: counts it against the address. */
    async initFailed(extra: WsExtra): Promise<void> {
      await authThrottle.recordFailure(extra.ip);
    },

    /** graphql-ws onConnect with a valid key: false when the key has MAX_SOCKETS_PER_KEY open (closed 1013). */
    admitSocketForKey(extra: WsExtra, keyId: string): boolean {
      const release = socketsPerKey.acquire(keyId);
      if (!release) {
        extra.socket.close(WsClose.TRY_AGAIN_LATER, 'Too many open websockets for this API key');
        return false;
      }
      extra.socket.once('close', release);
      return true;
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
