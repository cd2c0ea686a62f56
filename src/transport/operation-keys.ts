import type { WebSocket } from 'ws';
import { keyFromConnectionParams } from '../context.js';
import type { ApiKey } from '../entities/api-key.js';
import type { ConnectionRegistry } from '../services/connections.js';
import type { KeyService } from '../services/keys.js';

/** Time a socket opened without a key has to send an operation with a valid one. */
export const KEYLESS_GRACE_MS = 10_000;
/** graphql-ws' own code for "not authorised yet". */
const UNAUTHORIZED = 4401;

interface KeylessSocket {
  timer?: NodeJS.Timeout;
  /** Keys this socket has used, each registered once for revocation. */
  keys: Set<string>;
}

/**
 * Websockets whose key comes with each operation instead of `connectionParams`. GraphiQL (yoga's
 * and graphiql's graphql-ws fetcher) opens the socket with an empty `connection_init` payload and
 * sends the headers editor's content in every subscribe message as `payload.extensions.headers`.
 * Such a socket is accepted at connection init; each of its operations must carry a valid key,
 * it is closed (4401) when none has arrived within KEYLESS_GRACE_MS, and revoking a key it used
 * closes it like any other socket of that key.
 */
export class OperationKeys {
  private readonly sockets = new WeakMap<WebSocket, KeylessSocket>();

  constructor(
    private readonly keys: KeyService,
    private readonly connections: ConnectionRegistry,
    private readonly graceMs = KEYLESS_GRACE_MS,
  ) {}

  /** Accepts a socket that presented no key at all (a bad key is still refused by the caller). */
  acceptKeyless(socket: WebSocket): true {
    const state: KeylessSocket = { keys: new Set() };
    state.timer = setTimeout(() => socket.close(UNAUTHORIZED, 'Unauthorized: send the API key with the operation'), this.graceMs);
    state.timer.unref();
    socket.once('close', () => clearTimeout(state.timer));
    this.sockets.set(socket, state);
    return true;
  }

  isKeyless(socket: WebSocket): boolean {
    return this.sockets.has(socket);
  }

  /** The active key in an operation's `extensions` (`headers` nested, as GraphiQL sends it), or null. */
  async authenticate(socket: WebSocket, extensions: unknown): Promise<ApiKey | null> {
    const state = this.sockets.get(socket);
    const presented = extensions && typeof extensions === 'object' ? keyFromConnectionParams(extensions as Record<string, unknown>) : undefined;
    const key = state && presented ? await this.keys.authenticate(presented) : null;
    if (!state || !key) return null;
    clearTimeout(state.timer);
    if (!state.keys.has(key.id)) {
      state.keys.add(key.id);
      socket.once('close', this.connections.add(key.id, { close: () => socket.close(4403, 'API key revoked') }));
    }
    return key;
  }

  /** Whether the operation presented a key at all (to count a wrong one as a failed authentication). */
  presented(extensions: unknown): boolean {
    return Boolean(extensions && typeof extensions === 'object' && keyFromConnectionParams(extensions as Record<string, unknown>));
  }
}
