import type { ExecutionResult, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../services/platform/errors.js';
import type { GatewayMetrics } from '../services/platform/metrics.js';

const codeOf = (e: GraphQLError): string => {
  const code = e.extensions?.code;
  if (typeof code === 'string') return code;
  return e.originalError instanceof GatewayError ? e.originalError.code : 'INTERNAL_SERVER_ERROR';
};

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> => typeof v === 'object' && v !== null && Symbol.asyncIterator in v;

/**
 * Counts the errors GraphQL results carry, by `extensions.code` (HTTP, SSE and websockets alike),
 * into `llm_gateway_errors_total{api="graphql"}`. Codes are the server's own, so labels stay bounded.
 */
export function useErrorMetrics(metrics: GatewayMetrics): Plugin<GatewayContext> {
  const count = (result: ExecutionResult) => {
    for (const e of result.errors ?? []) metrics.recordError(codeOf(e), 'graphql');
  };
  const onResult = ({ result }: { result: unknown }) => {
    if (!isAsyncIterable(result)) return count(result as ExecutionResult);
    return { onNext: ({ result: r }: { result: ExecutionResult }) => count(r) };
  };
  return {
    onExecute: () => ({ onExecuteDone: onResult }),
    onSubscribe: () => ({
      onSubscribeResult: onResult,
      onSubscribeError: ({ error }) => metrics.recordError(error instanceof GatewayError ? error.code : 'INTERNAL_SERVER_ERROR', 'graphql'),
    }),
  };
}
