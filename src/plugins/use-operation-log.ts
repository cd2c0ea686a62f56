import { type DocumentNode, type ExecutionResult, type GraphQLError, Kind, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../services/platform/errors.js';

interface OperationFacts {
  operation: string;
  operationName: string | null;
  fields: string[];
}

function describe(document: DocumentNode, operationName: string | null | undefined): OperationFacts {
  const op = getOperationAST(document, operationName);
  const fields = (op?.selectionSet.selections ?? []).flatMap((s) => (s.kind === Kind.FIELD ? [s.name.value] : []));
  return { operation: op?.operation ?? 'unknown', operationName: op?.name?.value ?? null, fields };
}

const codeOf = (e: GraphQLError): string => {
  const code = e.extensions?.code;
  if (typeof code === 'string') return code;
  return e.originalError instanceof GatewayError ? e.originalError.code : 'INTERNAL_SERVER_ERROR';
};

const codesOf = (result: ExecutionResult): string[] => (result.errors ?? []).map(codeOf);

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> => typeof v === 'object' && v !== null && Symbol.asyncIterator in v;

/**
 * Logs every GraphQL operation (HTTP, SSE and websocket alike) at info when it ends: request id,
 * key prefix, operation type, name and root fields, outcome, error codes and duration. Never the
 * query text or variables: they can hold prompts.
 */
export function useOperationLog(): Plugin<GatewayContext> {
  const line = (ctx: GatewayContext, facts: OperationFacts, started: number, codes: string[], extra: Record<string, unknown> = {}) => {
    // The line carries the request id itself.
    ctx.services.log.info(
      {
        requestId: ctx.requestId,
        key: ctx.principal?.prefix ?? null,
        ...facts,
        outcome: codes.length ? 'error' : 'ok',
        errorCodes: codes.length ? [...new Set(codes)] : undefined,
        durationMs: Date.now() - started,
        ...extra,
      },
      'graphql operation',
    );
  };

  return {
    onExecute({ args }) {
      const started = Date.now();
      const ctx = args.contextValue;
      const facts = describe(args.document, args.operationName);
      return {
        onExecuteDone({ result }) {
          if (!isAsyncIterable(result)) return line(ctx, facts, started, codesOf(result));
          const codes: string[] = [];
          return {
            onNext: ({ result: r }) => void codes.push(...codesOf(r)),
            onEnd: () => line(ctx, facts, started, codes),
          };
        },
      };
    },
    onSubscribe({ args }) {
      const started = Date.now();
      const ctx = args.contextValue;
      const facts = describe(args.document, args.operationName);
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) return line(ctx, facts, started, codesOf(result as ExecutionResult));
          const codes: string[] = [];
          let events = 0;
          return {
            onNext: ({ result: r }) => {
              events++;
              codes.push(...codesOf(r));
            },
            onEnd: () => line(ctx, facts, started, codes, { events }),
          };
        },
        onSubscribeError: ({ error }) => line(ctx, facts, started, [error instanceof GatewayError ? error.code : 'INTERNAL_SERVER_ERROR']),
      };
    },
  };
}
