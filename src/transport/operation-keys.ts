import { CloseCode } from 'graphql-ws';
import type { WebSocket } from 'ws';
import { keyFromConnectionParams } from '../context.js';
import type { ApiKey } from '../entities/api-key.js';
import { ErrorCode, GatewayError } from '../services/platform/errors.js';
import type { AuthEdge } from './auth.js';

/** Time a socket opened without a key has to send an operation with a valid one. */
export const KEYLESS_GRACE_MS = 10_000;

interface KeylessSocket {
  timer?: NodeJS.Timeout;
}

/** What an operation's key came to. */
export type OperationKey = { kind: 'key'; key: ApiKey } | { kind: 'refused' | 'over-limit'; error: GatewayError };

/**
 * Websockets whose key comes with each operation instead of `connectionParams`. GraphiQL (yoga's
 * and graphiql's graphql-ws fetcher) opens the socket with an empty `connection_init` payload and
 * sends the headers editor's content in every subscribe message as `payload.extensions.headers`.
 * Such a socket is accepted at connection init; each of its operations must carry a valid key,
 * it is closed (CloseCode.Unauthorized) when none has arrived within KEYLESS_GRACE_MS. Keys go through the edge
 * (src/transport/auth.ts): a wrong one counts against the address, and the first operation with
 * a key counts the socket against that key's MAX_SOCKETS_PER_KEY and registers it, so revoking
 * the key closes it like any other socket of that key.
 */
export class OperationKeys {
  private readonly sockets = new WeakMap<WebSocket, KeylessSocket>();

  constructor(
    private readonly edge: AuthEdge,
    private readonly graceMs = KEYLESS_GRACE_MS,
  ) {}

  /** Accepts a socket that presented no key at all (a bad key is still refused by the caller). */
  acceptKeyless(socket: WebSocket): true {
    const state: KeylessSocket = {};
    state.timer = setTimeout(() => socket.close(CloseCode.Unauthorized, 'Unauthorized: send the API key with the operation'), this.graceMs);
    state.timer.unref();
    socket.once('close', () => clearTimeout(state.timer));
    this.sockets.set(socket, state);
    return true;
  }

  isKeyless(socket: WebSocket): boolean {
    return this.sockets.has(socket);
  }

  /** The key in an operation's `extensions` (`headers` nested, as GraphiQL sends it); null when none was presented. */
  async authenticate(socket: WebSocket, ip: string, extensions: unknown): Promise<OperationKey | null> {
    const state = this.sockets.get(socket);
    const presented = extensions && typeof extensions === 'object' ? keyFromConnectionParams(extensions as Record<string, unknown>) : undefined;
    if (!state || !presented) return null;
    const auth = await this.edge.authenticate(presented, ip);
    if (auth.kind === 'refused') return { kind: 'refused', error: auth.error };
    if (auth.kind !== 'key') return null;
    if (!this.edge.admitSocket(socket, auth.key.id)) {
      return { kind: 'over-limit', error: new GatewayError(ErrorCode.RATE_LIMITED, 'Too many open websockets for this API key.', { limit: 'maxSocketsPerKey', retryAfterSeconds: 1 }) };
    }
    clearTimeout(state.timer);
    return { kind: 'key', key: auth.key };
  }
}
