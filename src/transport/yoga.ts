import type { IncomingMessage, ServerResponse } from 'node:http';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Config } from '../config.js';
import { type Caller, type GatewayContext, keyFromHeaders, requestScope } from '../context.js';
import { useErrorMetrics } from '../plugins/use-error-metrics.js';
import { useGraphQLMetrics } from '../plugins/use-graphql-metrics.js';
import { useOperationLog } from '../plugins/use-operation-log.js';
import { createMaskError } from '../schema/errors.js';
import { schema } from '../schema/index.js';
import type { Services } from '../services/container.js';
import type { AuthEdge, AuthOutcome } from './auth.js';
import type { Hardening } from './hardening.js';
import { renderGraphiQL } from './lazy-routes.js';

export const GRAPHQL_PATH = '/graphql';

export type GatewayYoga = YogaServerInstance<Record<string, unknown>, GatewayContext>;

/** An HTTP request as the edge left it for yoga (src/transport/http-router.ts sets `auth`). */
export type AuthedRequest = IncomingMessage & { auth?: AuthOutcome };

/**
 * What yoga's initial context holds: `req`/`res`/`request` on HTTP and SSE (`req`/`res`/`signal`
 * on the gateway's own SSE subscription writer, src/transport/sse-subscriptions.ts); on graphql-ws,
 * `wsCaller`, which src/transport/graphql-ws-server.ts passes to `getEnveloped`.
 */
interface InitialContext {
  req?: AuthedRequest;
  res?: ServerResponse;
  request?: Request;
  /** SSE subscriptions served on the node response (sse-subscriptions.ts): aborted when the client goes away. */
  signal?: AbortSignal;
  wsCaller?: Caller;
}

/**
 * yoga for HTTP, SSE and GraphiQL at GRAPHQL_PATH; graphql-ws and SSE subscriptions
 * (src/transport/sse-subscriptions.ts) run their operations through the same envelop pipeline.
 */
export function createGatewayYoga(config: Config, services: Services, edge: AuthEdge, hardening: Hardening): GatewayYoga {
  const callerOf = async (initial: InitialContext): Promise<Caller> => {
    if (initial.wsCaller) return initial.wsCaller;
    const { req, res, request, signal } = initial;
    // The edge authenticated the request before yoga saw it (http-router.ts); only 'key' and 'none' get here.
    // A Request given to yoga.fetch in-process (the tests' in-process tier) passed no edge: its headers
    // are authenticated here, by the same edge.
    const auth = req ? req.auth : request ? await edge.authenticate(keyFromHeaders(request.headers), edge.ipOf(undefined)) : undefined;
    if (auth?.kind === 'key' && res) edge.watchResponse(request ? request.headers.get('accept') : req?.headers.accept, res, auth.key.id);
    return { principal: auth?.kind === 'key' ? auth.principal : null, badCredentials: auth?.kind === 'refused', signal: request?.signal ?? signal, clientIp: edge.ipOf(req) };
  };
  return createYoga<Record<string, unknown>, GatewayContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    // GraphiQL with its assets inlined (no CDN), loaded when a browser first asks for it.
    renderGraphiQL,
    logging: false,
    // Bodies are bounded before yoga (Content-Length in http-router.ts, chunked bodies in hardening.prepareGraphQL):
    // yoga's own limit would pipe every body through one more transform stream.
    maxRequestBodySize: false,
    cors: config.corsOrigins.length ? { origin: config.corsOrigins, credentials: true } : false,
    graphiql: {
      title: 'LLM gateway',
      subscriptionsProtocol: 'WS',
      headers: JSON.stringify({ 'x-api-key': '<your API key>' }),
      defaultQuery: 'subscription {\n  generate(input: { model: "llama3.2", prompt: "Why is the sky blue?" }) {\n    type\n    delta\n    usage { promptTokens completionTokens }\n  }\n}\n',
    },
    maskedErrors: { maskError: createMaskError(services.log) },
    plugins: [useOperationLog(), useErrorMetrics(services.metrics), useGraphQLMetrics(services.metrics.registry), ...hardening.plugins],
    context: async (initial) => requestScope(services, await callerOf(initial as InitialContext)),
  });
}
