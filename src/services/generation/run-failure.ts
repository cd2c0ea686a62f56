import { ErrorCode, GatewayError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { upstreamText } from '../ollama/errors.js';

/**
 * What a run's failure becomes for the client: the abort's reason (revocation, shutdown,
 * cancelGeneration), CANCELLED, the typed error, or a masked INTERNAL_SERVER_ERROR. Ollama's own
 * text and unexpected errors go to the log, never to the client.
 */
export function failureOf(e: unknown, signal: AbortSignal, log: Logger, ids: { requestId: string; generationId: string; host: string }): GatewayError {
  if (signal.aborted) return signal.reason instanceof GatewayError ? signal.reason : new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.');
  if (e instanceof GatewayError) {
    const upstreamError = upstreamText(e);
    if (upstreamError) log.warn({ ...ids, errorCode: e.code, upstreamError }, 'Ollama reported an error');
    return e;
  }
  log.error({ err: e, requestId: ids.requestId, generationId: ids.generationId }, 'generation crashed');
  return new GatewayError(ErrorCode.INTERNAL_SERVER_ERROR, 'Generation failed unexpectedly.', {}, { cause: e });
}
