import type { ConnectionRegistry } from '../platform/connections.js';
import { ErrorCode, GatewayError } from '../platform/errors.js';
import type { ActiveStreams } from '../generation/active-streams.js';
import type { KeyEventBus } from './key-events.js';
import type { Logger } from '../platform/logger.js';

/** Time for the UNAUTHENTICATED error of an ended stream to reach its client before its connection closes. */
const CLOSE_AFTER_MS = 100;

/**
 * Makes a revoked key stop working at once on this instance: its running generations end with
 * UNAUTHENTICATED (their rows are written as CANCELLED), then its websockets and SSE responses
 * are closed. Returns the function that stops listening.
 */
export function enforceRevocations(deps: { events: KeyEventBus; activeStreams: ActiveStreams; connections: ConnectionRegistry; log: Logger }): () => void {
  return deps.events.subscribe(async (event) => {
    if (event.type !== 'revoked') return;
    const reason = new GatewayError(ErrorCode.UNAUTHENTICATED, 'The API key was revoked.');
    const streamsEnded = await deps.activeStreams.cancelOwner(event.keyId, reason);
    if (streamsEnded > 0) await new Promise((r) => setTimeout(r, CLOSE_AFTER_MS));
    const connectionsClosed = deps.connections.closeOwner(event.keyId);
    deps.log.info({ key: event.prefix, keyId: event.keyId, streamsEnded, connectionsClosed }, 'api key revoked');
  });
}
