import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { WebSocketServer } from 'ws';
import type { Config } from '../config.js';
import { type Caller, keyFromConnectionParams } from '../context.js';
import type { Services } from '../services/container.js';
import { type Principal, toPrincipal } from '../services/access/keys.js';
import { ErrorCode } from '../services/platform/errors.js';
import type { AuthEdge } from './auth.js';
import { serveGraphQLWs } from './graphql-ws.js';
import type { Hardening } from './hardening.js';
import { OperationKeys } from './operation-keys.js';
import { GRAPHQL_PATH, type GatewayYoga } from './yoga.js';

/** Extra state graphql-ws keeps per socket: the principal of a socket that presented its key at connection_init. */
type SocketState = {
  principal?: Principal;
};

/** Execution args as onSubscribe prepares them: carrying yoga's execute/subscribe (envelop pipeline). */
type EnvelopedArgs = ExecutionArgs & { execute(a: ExecutionArgs): unknown; subscribe(a: ExecutionArgs): unknown };

export interface GraphQLWsDeps {
  server: Server;
  config: Config;
  services: Services;
  edge: AuthEdge;
  hardening: Hardening;
  yoga: GatewayYoga;
}

/**
 * graphql-ws on the HTTP server's GRAPHQL_PATH. The key comes at connection_init (connectionParams)
 * or, for GraphiQL, with each operation (src/transport/operation-keys.ts); either way it is checked
 * again per operation, so a key revoked since the socket opened (on another instance too) runs nothing.
 * Operations run through yoga's envelop pipeline (masking, plugins) and its context factory.
 */
export function serveGraphQLOverWs({ server, config, services, edge, hardening, yoga }: GraphQLWsDeps): { dispose(): Promise<void> } {
  const operationKeys = new OperationKeys(edge);
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: config.maxWsPayloadBytes, verifyClient: hardening.verifyUpgrade });
  services.metrics.watch({ openWebsockets: () => wss.clients.size });
  return serveGraphQLWs<Record<string, unknown>, SocketState>(
    wss,
    {
      connectionInitWaitTimeout: hardening.connectionInitWaitTimeout,
      execute: (args) => (args as EnvelopedArgs).execute(args) as never,
      subscribe: (args) => (args as EnvelopedArgs).subscribe(args) as never,
      onConnect: async (ctx) => {
        if (!(await hardening.admitInit(ctx.extra))) return false; // throttled address: closed with WsClose.TRY_AGAIN_LATER
        const presented = keyFromConnectionParams(ctx.connectionParams);
        if (!presented) return operationKeys.acceptKeyless(ctx.extra.socket); // GraphiQL: the key comes with each operation
        const auth = await edge.authenticate(presented, ctx.extra.ip);
        if (auth.kind !== 'key') return false; // graphql-ws closes with CloseCode.Forbidden
        if (!edge.admitSocket(ctx.extra.socket, auth.key.id)) return false; // closed with WsClose.TRY_AGAIN_LATER
        ctx.extra.principal = auth.principal;
        return true;
      },
      onSubscribe: hardening.typedFailures(async (ctx, _id, params) => {
        // Counted first: a flood of subscribe messages costs no key lookups.
        const over = hardening.operationsOverLimit(Object.keys(ctx.subscriptions).length);
        if (over) return over;
        // The key may have been revoked since the socket opened (on another instance too): check it per operation.
        const found = ctx.extra.principal
          ? await services.keys.findActive(ctx.extra.principal.id).then((k) => (k ? { kind: 'key' as const, key: k } : null))
          : await operationKeys.authenticate(ctx.extra.socket, ctx.extra.ip, params.extensions);
        if (found?.kind !== 'key') {
          if (found?.kind === 'over-limit') return [found.error];
          setImmediate(() => ctx.extra.socket.close(CloseCode.Forbidden, 'API key revoked'));
          return [new GraphQLError(found?.error.message ?? 'The API key is invalid or revoked.', { extensions: { code: found?.error.code ?? ErrorCode.UNAUTHENTICATED, ...found?.error.details } })];
        }
        const principal = toPrincipal(found.key);
        if (ctx.extra.principal) ctx.extra.principal = principal;
        const wsCaller: Caller = { principal, clientIp: ctx.extra.ip };
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          wsCaller,
        });
        let document;
        try {
          document = parse(params.query);
        } catch (e) {
          // Answer a syntax error as an error message; throwing here would close the socket.
          const message = e instanceof Error ? e.message : String(e);
          return [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
        }
        const errors = validate(schema, document);
        if (errors.length) return errors.map((e: GraphQLError) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { ...e.extensions, code: e.extensions?.code ?? 'GRAPHQL_VALIDATION_FAILED' } }));
        return {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          execute,
          subscribe,
        } as ExecutionArgs;
      }),
    },
    hardening.wsTransport,
  );
}
