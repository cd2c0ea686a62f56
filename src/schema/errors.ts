import { GraphQLError } from 'graphql';
import { ErrorCode, GatewayError } from '../services/platform/errors.js';
import type { Logger } from '../services/platform/logger.js';
import { upstreamText } from '../services/ollama/errors.js';

// Duck-typed on purpose: under some loaders graphql's CJS and ESM builds coexist, and
// `instanceof GraphQLError` is then false for errors made by the other copy.
const isGraphQLErrorLike = (e: unknown): e is GraphQLError =>
  e instanceof Error && e.name === 'GraphQLError' && 'extensions' in e;

const findGatewayError = (error: unknown): GatewayError | undefined => {
  for (let cur = error, depth = 0; cur && depth < 5; depth++) {
    if (cur instanceof GatewayError) return cur;
    cur = isGraphQLErrorLike(cur) ? cur.originalError : (cur as { cause?: unknown }).cause;
  }
  return undefined;
};

/**
 * yoga's `maskedErrors.maskError`: gateway errors become typed GraphQL errors
 * (`extensions.code` plus details such as `retryAfterSeconds`); GraphQL errors raised on purpose
 * pass through; anything else is logged with an error id and masked.
 */
export function createMaskError(log: Logger) {
  return (error: unknown, _message: string): Error => {
    const gatewayError = findGatewayError(error);
    const located = isGraphQLErrorLike(error) ? error : undefined;
    if (gatewayError) {
      const upstreamError = upstreamText(gatewayError);
      if (upstreamError) log.warn({ errorCode: gatewayError.code, upstreamError }, 'Ollama reported an error');
      return new GraphQLError(gatewayError.message, {
        nodes: located?.nodes,
        source: located?.source,
        positions: located?.positions,
        path: located?.path,
        extensions: { ...gatewayError.details, code: gatewayError.code },
      });
    }
    if (located && (!located.originalError || isGraphQLErrorLike(located.originalError))) {
      // Validation, parsing, auth scopes: raised deliberately, safe to show. Default their code.
      if (located.extensions?.code) return located;
      return new GraphQLError(located.message, {
        nodes: located.nodes,
        source: located.source,
        positions: located.positions,
        path: located.path,
        originalError: located.originalError,
        extensions: { ...located.extensions, code: ErrorCode.BAD_USER_INPUT },
      });
    }
    const errorId = crypto.randomUUID();
    log.error({ err: located?.originalError ?? error, errorId }, 'unexpected error');
    // Never the original message (SQL, paths), nor yoga's bare "Unexpected error." (`_message`).
    return new GraphQLError(`Internal server error (errorId ${errorId}); the details are in the gateway's log.`, {
      nodes: located?.nodes,
      path: located?.path,
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, errorId },
    });
  };
}
