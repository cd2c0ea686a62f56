import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { CloseCode } from 'graphql-ws';
import { WebSocketServer } from 'ws';
import type { Config } from './config.js';
import { type GatewayContext, keyFromConnectionParams, newContext } from './context.js';
import { useErrorMetrics } from './plugins/use-error-metrics.js';
import { useGraphQLMetrics } from './plugins/use-graphql-metrics.js';
import { useOperationLog } from './plugins/use-operation-log.js';
import { isAdminPath, serveAdmin, serveRoot } from './routes/admin.js';
import { EXPORT_CONVERSATIONS_PATH, exportConversations } from './routes/export-conversations.js';
import { METRICS_PATH, serveMetrics } from './routes/metrics.js';
import { isOllamaPath, serveOllama } from './routes/ollama/router.js';
import { isOpenAIPath, serveOpenAI } from './routes/openai/router.js';
import { createMaskError } from './schema/errors.js';
import { schema } from './schema/index.js';
import { createServices, type Services } from './services/container.js';
import { type GatewayDataSource, openDatabase } from './services/db/data-source.js';
import { ErrorCode } from './services/platform/errors.js';
import { OrphanSweeper } from './services/generation/recovery.js';
import { checkHealth } from './services/platform/health.js';
import { type Principal, toPrincipal } from './services/access/keys.js';
import { createLogger, type Logger } from './services/platform/logger.js';
import { type AuthOutcome, AuthEdge, keyRequired } from './transport/auth.js';
import { serveGraphQLWs } from './transport/graphql-ws.js';
import { createHardening } from './transport/hardening.js';
import { sendJsonError, sendRefusal } from './transport/http-guards.js';
import { OperationKeys } from './transport/operation-keys.js';
import { VERSION } from './version.js';

export const GRAPHQL_PATH = '/graphql';

export interface App {
  readonly server: Server;
  readonly services: Services;
  readonly yoga: YogaServerInstance<Record<string, unknown>, GatewayContext>;
  /** Listens on config.port (0 = any free port) and returns the base URL. */
  start(): Promise<string>;
  /** Graceful stop: refuse new work, let streams finish (then cancel them), close sockets and the database. */
  stop(): Promise<void>;
  /** Secret of the admin key created on this start, when one was created. */
  readonly bootstrapSecret?: string;
}

export interface BuildAppOptions {
  config: Config;
  log?: Logger;
  /** An already-open database (tests); otherwise it is opened from config. */
  db?: GatewayDataSource;
}

/** Extra state graphql-ws keeps per socket. */
type SocketState = {
  principal?: Principal;
};

/** An HTTP request as the edge left it for yoga's context factory. */
type AuthedRequest = IncomingMessage & { auth?: AuthOutcome };

/** Composes the gateway: yoga (HTTP + SSE + GraphiQL) and graphql-ws on one http.Server and one path. */
export async function buildApp({ config, log = createLogger(config.logLevel), db }: BuildAppOptions): Promise<App> {
  const database = db ?? (await openDatabase({ databaseUrl: config.databaseUrl, dbPath: config.dbPath }));
  const services = createServices(config, database, log);
  const bootstrapSecret = await services.keys.bootstrapAdmin(config.adminApiKey);
  // Before serving: announce this instance, settle what a crash left STREAMING (this instance's
  // previous life, or instances whose heartbeat stopped), then keep partial answers saved.
  await services.instance.start();
  const orphans = new OrphanSweeper({
    db: database,
    credits: services.credits,
    instanceId: services.instance.id,
    liveInstances: () => services.instance.liveInstances(),
    intervalMs: config.instanceTtlMs,
    onRecovered: (report) => log.warn(report, 'marked generations of a gateway instance that stopped as INTERRUPTED'),
    onError: (err) => log.warn({ err }, 'orphan sweep failed'),
  });
  const recovered = await orphans.start();
  if (recovered.generations) log.warn(recovered, 'marked generations interrupted by a previous crash as INTERRUPTED');
  services.pool.start();
  services.partials.start();
  // Idle reaper (timers unref'd): its first check unloads models left idle past their threshold while we were down.
  await services.models.start();
  // The one authentication edge (src/transport/auth.ts) and the limits against hostile or broken clients.
  const edge = new AuthEdge({
    keys: services.keys,
    connections: services.connections,
    trustProxy: config.limits.trustProxy,
    authFailureLimit: config.limits.authFailureLimit,
    authFailureWindowSeconds: config.limits.authFailureWindowSeconds,
    maxSocketsPerKey: config.limits.maxSocketsPerKey,
    store: services.redis?.rateLimitStore(),
    log,
  });
  const hardening = createHardening(config, services, edge);
  // Sockets whose key comes with each operation, as GraphiQL sends it (src/transport/operation-keys.ts).
  const operationKeys = new OperationKeys(edge);

  const yoga = createYoga<Record<string, unknown>, GatewayContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    // GraphiQL with its assets inlined: works on GPU hosts without internet access (no CDN).
    renderGraphiQL,
    logging: false,
    // Bodies are bounded before yoga (Content-Length in route(), chunked bodies in hardening.prepareGraphQL):
    // yoga's own limit would pipe every body through one more transform stream.
    maxRequestBodySize: false,
    cors: config.corsOrigins.length ? { origin: config.corsOrigins, credentials: true } : false,
    graphiql: {
      title: 'LLM gateway',
      subscriptionsProtocol: 'WS',
      headers: JSON.stringify({ 'x-api-key': '<your API key>' }),
      defaultQuery: 'subscription {\n  generate(input: { model: "llama3.2", prompt: "Why is the sky blue?" }) {\n    type\n    delta\n    usage { promptTokens completionTokens }\n  }\n}\n',
    },
    maskedErrors: { maskError: createMaskError(log) },
    plugins: [useOperationLog(), useErrorMetrics(services.metrics), useGraphQLMetrics(services.metrics.registry), ...hardening.plugins],
    context: async (initial): Promise<GatewayContext> => {
      const wsPrincipal = (initial as { wsPrincipal?: Principal }).wsPrincipal;
      const req = (initial as { req?: AuthedRequest }).req;
      if (wsPrincipal) return newContext(services, wsPrincipal, false, undefined, edge.ipOf(req));
      const request = (initial as { request: Request }).request;
      // The edge authenticated the request before yoga saw it (route()); only 'key' and 'none' get here.
      const auth = req?.auth;
      const res = (initial as { res?: ServerResponse }).res;
      if (auth?.kind === 'key' && res) edge.watchResponse(request.headers.get('accept'), res, auth.key.id);
      return newContext(services, auth?.kind === 'key' ? auth.principal : null, false, request.signal, edge.ipOf(req));
    },
  });

  const server = createServer({ connectionsCheckingInterval: Math.min(1000, config.limits.httpHeadersTimeoutMs) }, (req, res) => {
    if (req.url === '/health' && (req.method === 'GET' || req.method === 'HEAD')) return void serveHealth(res);
    route(req, res).catch((err: unknown) => {
      // E.g. the key lookup failed: masked, with an errorId pointing to the cause in the log.
      const errorId = randomUUID();
      log.error({ err, errorId }, 'request routing failed');
      sendJsonError(res, 500, `Internal server error (errorId ${errorId}); the details are in the gateway's log.`, { code: ErrorCode.INTERNAL_SERVER_ERROR, errorId });
    });
  });
  hardening.protectServer(server);
  const route = async (req: AuthedRequest, res: ServerResponse) => {
    const path = req.url?.split('?')[0];
    if (path === EXPORT_CONVERSATIONS_PATH) return void (await exportConversations(req, res, services, edge));
    if (path === METRICS_PATH) return void (await serveMetrics(req, res, services, edge));
    // The service description and the admin console's static files need no key (the console signs in through GraphQL).
    if (path === '/') return serveRoot(req, res);
    if (isAdminPath(req.url)) return void serveAdmin(req, res);
    if (isOpenAIPath(req.url)) return void (await serveOpenAI(req, res, services, edge));
    if (isOllamaPath(req.url)) return void (await serveOllama(req, res, services, edge));
    // GraphQL: authenticated before the body is read, so a request without a valid key costs no
    // parsing or validation. Without a key only GET (health, GraphiQL's page) and CORS preflights pass.
    const auth = await edge.request(req);
    const refusal = auth.kind === 'refused' ? auth : auth.kind === 'none' && req.method === 'POST' ? keyRequired(auth.ip) : undefined;
    if (refusal) {
      services.metrics.recordError(refusal.error.code, 'graphql');
      // A browser app of an allowed origin must be able to read the refusal (yoga is not reached to add CORS).
      const origin = req.headers.origin;
      if (origin && config.corsOrigins.includes(origin)) res.setHeader('access-control-allow-origin', origin).setHeader('access-control-allow-credentials', 'true').setHeader('vary', 'Origin');
      return sendRefusal(req, res, refusal);
    }
    req.auth = auth;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > config.maxBodyBytes) return refuseLargeBody(res, config.maxBodyBytes);
    if (await hardening.prepareGraphQL(req, res)) void yoga.handle(req, res);
  };

  const serveHealth = async (res: ServerResponse) => {
    const report = await checkHealth(services.db, services.pool, VERSION);
    res.writeHead(report.database ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(report));
  };

  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: config.maxWsPayloadBytes, verifyClient: hardening.verifyUpgrade });
  services.metrics.watch({ openWebsockets: () => wss.clients.size });
  const wsServer = serveGraphQLWs<Record<string, unknown>, SocketState>(
    wss,
    {
      connectionInitWaitTimeout: hardening.connectionInitWaitTimeout,
      // Run each operation through yoga's envelop pipeline (masking, plugins) prepared in onSubscribe.
      execute: (args) => (args as unknown as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args as unknown as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onConnect: async (ctx) => {
        if (!(await hardening.admitInit(ctx.extra))) return false; // throttled address: closed with 1013
        const presented = keyFromConnectionParams(ctx.connectionParams);
        if (!presented) return operationKeys.acceptKeyless(ctx.extra.socket); // GraphiQL: the key comes with each operation
        const auth = await edge.authenticate(presented, ctx.extra.ip);
        if (auth.kind !== 'key') return false; // graphql-ws closes with 4403 Forbidden
        if (!edge.admitSocket(ctx.extra.socket, auth.key.id)) return false; // closed with 1013
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
        const { schema: s, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          wsPrincipal: principal,
        });
        let document;
        try {
          document = parse(params.query);
        } catch (e) {
          // Answer a syntax error as an error message; throwing here would close the socket.
          const message = e instanceof Error ? e.message : String(e);
          return [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
        }
        const errors = validate(s, document);
        if (errors.length) return errors.map((e: GraphQLError) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { ...e.extensions, code: e.extensions?.code ?? 'GRAPHQL_VALIDATION_FAILED' } }));
        return {
          schema: s,
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

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('shutting down');
      server.close(); // stop accepting new connections
      const cut = services.activeStreams.size;
      await services.activeStreams.drain(config.shutdownGraceMs);
      // Let the "shutting down" errors of cut streams reach their clients before sockets close.
      if (cut) await new Promise((r) => setTimeout(r, 100));
      await services.partials.stop();
      await wsServer.dispose(); // closes every socket with 1001, which returns() their subscriptions
      server.closeAllConnections();
      await services.models.stop(); // stops the idle reapers (storing activity) and aborts pulls
      services.pool.stop();
      await orphans.stop();
      await services.instance.stop();
      await services.slots.close();
      await services.redis?.close();
      if (database.isInitialized) await database.destroy();
      log.info('stopped');
    })());

  return {
    server,
    services,
    yoga,
    bootstrapSecret,
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          const { port, address, family } = server.address() as AddressInfo;
          const host = family === 'IPv6' ? `[${address}]` : address === '0.0.0.0' ? '127.0.0.1' : address;
          resolve(`http://${host}:${port}`);
        });
      }),
    stop,
  };
}

function refuseLargeBody(res: ServerResponse, limit: number) {
  res.writeHead(413, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
  res.end(JSON.stringify({ errors: [{ message: `Request body is larger than ${limit} bytes.`, extensions: { code: ErrorCode.BAD_USER_INPUT } }] }));
}
