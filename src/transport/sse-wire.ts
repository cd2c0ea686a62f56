import type { IncomingMessage } from 'node:http';
import { type ExecutionResult, GraphQLError } from 'graphql';
import { createGraphQLError } from 'graphql-yoga';

// yoga's SSE wire format, for src/transport/sse-subscriptions.ts to write byte for byte what
// yoga's own SSE processor would (node_modules/graphql-yoga/esm/plugins/result-processor/sse.js).

export const PING = ':\n\n';
export const PING_INTERVAL_MS = 12_000;
export const COMPLETE = 'event: complete\ndata:\n\n';
/** The headers of yoga's SSE processor (node_modules/graphql-yoga/esm/plugins/result-processor/sse.js). */
export const SSE_HEADERS = { 'content-type': 'text/event-stream', connection: 'keep-alive', 'cache-control': 'no-cache', 'content-encoding': 'none' };

/** The headers yoga's CORS plugin (whatwg-node useCORS with `{ origin: corsOrigins, credentials: true }`) adds to a response. */
export function corsHeaders(req: IncomingMessage, cors: { origins: string[] } | undefined): Record<string, string> {
  const origin = req.headers.origin;
  if (!cors || origin === undefined) return {};
  const headers: Record<string, string> = {};
  const { origins } = cors;
  if (origins.includes('*')) {
    headers['Access-Control-Allow-Origin'] = origin;
    headers.Vary = 'Origin';
  } else if (origins.length === 1) {
    headers['Access-Control-Allow-Origin'] = origins[0]!;
  } else if (origins.includes(origin)) {
    headers['Access-Control-Allow-Origin'] = origin;
    headers.Vary = 'Origin';
  } else {
    headers['Access-Control-Allow-Origin'] = 'null';
  }
  const requestMethod = req.headers['access-control-request-method'];
  if (typeof requestMethod === 'string' && requestMethod) headers['Access-Control-Allow-Methods'] = requestMethod;
  const requestHeaders = req.headers['access-control-request-headers'];
  if (typeof requestHeaders === 'string' && requestHeaders) {
    headers['Access-Control-Allow-Headers'] = requestHeaders;
    headers.Vary = headers.Vary ? `${headers.Vary}, Access-Control-Request-Headers` : 'Access-Control-Request-Headers';
  }
  headers['Access-Control-Allow-Credentials'] = 'true';
  return headers;
}

/** yoga's jsonStringifyResultWithoutInternals (not exported), for the one shape a subscription event has. */
export function jsonStringifyResultWithoutInternals(result: ExecutionResult & { stringify?: (r: unknown) => string }): string {
  return (result.stringify ?? JSON.stringify)(omitInternals(result));
}

function omitInternals(result: ExecutionResult): ExecutionResult {
  const http = (result.extensions as { http?: unknown } | undefined)?.http;
  if (!result.errors?.length && !http) return result;
  const cleaned: ExecutionResult = { ...result };
  if (cleaned.errors) cleaned.errors = cleaned.errors.map(omitErrorInternals);
  if (cleaned.extensions) {
    const { http: _http, ...extensions } = cleaned.extensions as Record<string, unknown>;
    cleaned.extensions = Object.keys(extensions).length ? extensions : undefined;
  }
  return cleaned;
}

function omitErrorInternals(error: GraphQLError): GraphQLError {
  if (!(error instanceof GraphQLError)) return error;
  const { http: _http, unexpected: _unexpected, ...extensions } = (error.toJSON().extensions ?? {}) as Record<string, unknown>;
  return createGraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError ? (omitErrorInternals(error.originalError as GraphQLError) as Error) : undefined,
    extensions: Object.keys(extensions).length ? extensions : undefined,
  });
}
