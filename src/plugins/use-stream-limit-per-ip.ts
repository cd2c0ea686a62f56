import { type DocumentNode, GraphQLError, Kind, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GatewayContext } from '../context.js';
import { ErrorCode } from '../services/errors.js';
import type { ConcurrencyLimit } from '../services/limits/concurrency.js';

/** Root fields that run a generation (mutations and subscriptions alike). */
const GENERATION_FIELDS = new Set(['generate', 'chat']);

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> => typeof v === 'object' && v !== null && Symbol.asyncIterator in v;

function runsGeneration(document: DocumentNode, operationName: string | null | undefined): boolean {
  const op = getOperationAST(document, operationName);
  if (!op || op.operation === 'query') return false;
  return op.selectionSet.selections.some((s) => s.kind === Kind.FIELD && GENERATION_FIELDS.has(s.name.value));
}

/**
 * Generations running at once per client address (HTTP, SSE and websockets alike), on top of
 * the per-key limit: many keys behind one address cannot take every GPU slot. Refused
 * operations get RATE_LIMITED with `retryAfterSeconds` and `limit: maxConcurrentStreamsPerIp`.
 * A slot is released when the operation ends, its stream ends or is closed, or its HTTP
 * request goes away.
 */
export function useStreamLimitPerIp(limit: ConcurrencyLimit): Plugin<GatewayContext> {
  const refusal = () =>
    new GraphQLError(`This address may run ${limit.max} generations at once. Retry in 1 s.`, {
      extensions: { code: ErrorCode.RATE_LIMITED, retryAfterSeconds: 1, limit: 'maxConcurrentStreamsPerIp' },
    });
  const take = (ctx: GatewayContext) => {
    const release = limit.acquire(ctx.clientIp);
    if (release) ctx.signal?.addEventListener('abort', release, { once: true });
    return release;
  };

  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (limit.max <= 0 || !runsGeneration(args.document, args.operationName)) return;
      const release = take(args.contextValue);
      if (!release) return void setResultAndStopExecution({ errors: [refusal()] });
      return {
        onExecuteDone({ result }) {
          if (!isAsyncIterable(result)) return release();
          return { onEnd: release };
        },
      };
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      if (limit.max <= 0 || !runsGeneration(args.document, args.operationName)) return;
      const release = take(args.contextValue);
      if (!release) return void setResultAndStopExecution({ errors: [refusal()] });
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) return release();
          return { onEnd: release };
        },
        onSubscribeError: release,
      };
    },
  };
}
