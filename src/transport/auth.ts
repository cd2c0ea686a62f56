import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CloseCode } from 'graphql-ws';
import type { WebSocket } from 'ws';
import { keyFromHeaders } from '../context.js';
import type { ApiKey } from '../entities/api-key.js';
import type { ConnectionRegistry } from '../services/platform/connections.js';
import { ErrorCode, GatewayError } from '../services/platform/errors.js';
import type { KeyService } from '../services/access/keys.js';
import { type Principal, toPrincipal } from '../services/access/keys.js';
import { AuthFailureThrottle } from '../services/access/limits/auth-throttle.js';
import { clientIp } from '../services/access/limits/client-ip.js';
import { ConcurrencyLimit } from '../services/access/limits/concurrency.js';
import type { Logger } from '../services/platform/logger.js';
import type { RateLimitStore } from '../services/access/rate-limit.js';
import { WsClose } from './graphql-ws.js';

/** What the edge made of a presented key. */
export type AuthOutcome =
  | { kind: 'key'; key: ApiKey; principal: Principal; ip: string }
  /** No key presented: only `health` and the GraphiQL page are served. */
  | { kind: 'none'; ip: string }
  /** A wrong key (401) or an address throttled for failed authentications (429). */
  | { kind: 'refused'; status: 401 | 429; error: GatewayError; headers: Record<string, string>; ip: string };

export interface AuthEdgeOptions {
  keys: KeyService;
  connections: ConnectionRegistry;
  trustProxy: boolean;
  authFailureLimit: number;
  authFailureWindowSeconds: number;
  maxSocketsPerKey: number;
  store?: RateLimitStore;
  log?: Logger;
}

/** Responses that stay open (SSE, multipart subscriptions): revoking the key closes them. Media types are case-insensitive. */
const LONG_LIVED = /text\/event-stream|multipart\/mixed/i;

const headerGetter = (req: IncomingMessage) => ({
  get: (name: string) => {
    const v = req.headers[name.toLowerCase()];
    return (Array.isArray(v) ? v[0] : v) ?? null;
  },
});

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The one authentication edge of the gateway. Every entry point hands it the presented key and
 * the client's address and gets a principal or a typed refusal: HTTP GraphQL and SSE
 * (http-router.ts), graphql-ws `connection_init` and per-operation keys, `/v1`, the CSV export and
 * `/metrics`. Here, and only here: failed keys are counted per address (AUTH_FAILURE_LIMIT) and
 * a throttled address is refused without a key lookup; long-lived responses and sockets are
 * registered so revoking the key closes them; sockets are counted per key (MAX_SOCKETS_PER_KEY)
 * however the key arrived.
 *
 * A new HTTP route (e.g. the Ollama-compatible `/api/*`) authenticates with one call:
 * `const auth = await edge.request(req)`, then answers `auth.kind === 'refused'` with
 * `auth.status` / `auth.error` (and `auth.headers`), refuses `'none'` with 401, and passes
 * `auth.principal` and `auth.ip` (as RequestMeta.clientIp) to the services.
 */
export class AuthEdge {
  private readonly throttle: AuthFailureThrottle;
  private readonly socketsPerKey: ConcurrencyLimit;
  /** Keys each socket was counted and registered for (a GraphiQL socket may use several). */
  private readonly socketKeys = new WeakMap<WebSocket, Set<string>>();

  constructor(private readonly opts: AuthEdgeOptions) {
    this.throttle = new AuthFailureThrottle(opts.authFailureLimit, opts.authFailureWindowSeconds, opts.store);
    this.socketsPerKey = new ConcurrencyLimit(opts.maxSocketsPerKey);
  }

  ipOf(req: IncomingMessage | undefined): string {
    return clientIp(req, this.opts.trustProxy);
  }

  /** Seconds a throttled address must wait before presenting a key again; 0 when it may. */
  blockedFor(ip: string): Promise<number> {
    return this.throttle.blockedFor(ip);
  }

  /** Looks a presented key up, unless the address is throttled; a wrong key counts against the address. */
  async authenticate(presented: string | undefined, ip: string): Promise<AuthOutcome> {
    if (!presented) return { kind: 'none', ip };
    const blocked = await this.throttleRefusal(ip);
    if (blocked) return blocked;
    const key = await this.opts.keys.authenticate(presented);
    if (key) return { kind: 'key', key, principal: toPrincipal(key), ip };
    return this.failed(ip);
  }

  /** The key of an HTTP request (`x-api-key` or `Authorization: Bearer`). */
  request(req: IncomingMessage): Promise<AuthOutcome> {
    return this.authenticate(keyFromHeaders(headerGetter(req)), this.ipOf(req));
  }

  /**
   * A shared secret that is not an API key (METRICS_TOKEN): compared in constant time, failures
   * throttled like wrong keys.
   */
  async checkToken(presented: string | undefined, expected: string, ip: string): Promise<AuthOutcome | { kind: 'token'; ip: string }> {
    const blocked = presented ? await this.throttleRefusal(ip) : undefined;
    if (blocked) return blocked;
    if (presented !== undefined && timingSafeEqual(digest(presented), digest(expected))) return { kind: 'token', ip };
    if (!presented) return { kind: 'refused', status: 401, error: new GatewayError(ErrorCode.UNAUTHENTICATED, 'A valid token is required.'), headers: {}, ip };
    return this.failed(ip);
  }

  /** Counts a failed authentication of `ip` that happened outside `authenticate` (e.g. a key gone between two operations). */
  async recordFailure(ip: string): Promise<void> {
    await this.throttle.recordFailure(ip);
  }

  /** Registers an HTTP response that stays open (SSE, multipart), so revoking the key closes it. */
  watchResponse(accept: string | null | undefined, res: ServerResponse, keyId: string): void {
    if (!accept || !LONG_LIVED.test(accept)) return;
    res.once('close', this.opts.connections.add(keyId, { close: () => res.destroy() }));
  }

  /**
   * Counts a websocket for a key (at `connection_init`, or at the first operation that carries
   * that key) and registers it for revocation. False when the key has MAX_SOCKETS_PER_KEY open:
   * the socket is then closed with WsClose.TRY_AGAIN_LATER.
   */
  admitSocket(socket: WebSocket, keyId: string): boolean {
    let keys = this.socketKeys.get(socket);
    if (keys?.has(keyId)) return true;
    const release = this.socketsPerKey.acquire(keyId);
    if (!release) {
      socket.close(WsClose.TRY_AGAIN_LATER, 'Too many open websockets for this API key');
      return false;
    }
    if (!keys) this.socketKeys.set(socket, (keys = new Set()));
    keys.add(keyId);
    const unregister = this.opts.connections.add(keyId, { close: () => socket.close(CloseCode.Forbidden, 'API key revoked') });
    socket.once('close', () => {
      release();
      unregister();
    });
    return true;
  }

  /** Open websockets counted for a key (tests and metrics). */
  socketsOf(keyId: string): number {
    return this.socketsPerKey.count(keyId);
  }

  private async throttleRefusal(ip: string): Promise<AuthOutcome | undefined> {
    const wait = await this.throttle.blockedFor(ip);
    if (!wait) return undefined;
    const error = AuthFailureThrottle.error(wait);
    this.opts.log?.info({ ip, outcome: 'throttled', retryAfterSeconds: wait }, 'authentication refused');
    return { kind: 'refused', status: 429, error, headers: { 'retry-after': String(wait) }, ip };
  }

  private async failed(ip: string): Promise<AuthOutcome> {
    await this.throttle.recordFailure(ip);
    this.opts.log?.info({ ip, outcome: 'bad-key' }, 'authentication refused');
    return { kind: 'refused', status: 401, error: new GatewayError(ErrorCode.UNAUTHENTICATED, 'The API key is invalid or revoked.'), headers: {}, ip };
  }
}

/** The refusal for a request that presented no key where one is required. */
export const keyRequired = (ip: string): Extract<AuthOutcome, { kind: 'refused' }> => ({
  kind: 'refused',
  status: 401,
  error: new GatewayError(ErrorCode.UNAUTHENTICATED, 'A valid API key is required (x-api-key or Authorization: Bearer).'),
  headers: {},
  ip,
});
