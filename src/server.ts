import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { createServices, type Services } from './services/container.js';
import { type GatewayDatabase, openDatabase } from './services/db/database.js';
import { startServices } from './services/lifecycle.js';
import { createLogger, type Logger } from './services/platform/logger.js';
import { AuthEdge } from './transport/auth.js';
import { serveGraphQLOverWs } from './transport/graphql-ws-server.js';
import { createHardening } from './transport/hardening.js';
import { createHttpRouter } from './transport/http-router.js';
import { createSseSubscriptions, type SseSubscriptions } from './transport/sse-subscriptions.js';
import { createGatewayYoga, type GatewayYoga } from './transport/yoga.js';

export interface App {
  readonly server: Server;
  readonly services: Services;
  readonly yoga: GatewayYoga;
  /** GraphQL subscriptions over SSE on the node response (src/transport/sse-subscriptions.ts). */
  readonly sseSubscriptions: SseSubscriptions;
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
  db?: GatewayDatabase;
}

/**
 * Composes the gateway: the services (started in order by src/services/lifecycle.ts), the
 * authentication edge and hardening, yoga (HTTP + SSE + GraphiQL) and graphql-ws on one
 * http.Server and one path.
 */
export async function buildApp({ config, log = createLogger(config.logLevel), db }: BuildAppOptions): Promise<App> {
  const database = db ?? (await openDatabase({ databaseUrl: config.databaseUrl, dbPath: config.dbPath }));
  const services = await createServices(config, database, log);
  const running = await startServices(services);
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
  const yoga = createGatewayYoga(config, services, edge, hardening);
  const sseSubscriptions = createSseSubscriptions(config, yoga, services.metrics.registry);
  const router = createHttpRouter({ config, services, edge, hardening, yoga, sseSubscriptions });
  const server = createServer({ connectionsCheckingInterval: Math.min(1000, config.limits.httpHeadersTimeoutMs) }, router);
  hardening.protectServer(server);
  const wsServer = serveGraphQLOverWs({ server, config, services, edge, hardening, yoga });

  return {
    server,
    services,
    yoga,
    sseSubscriptions,
    bootstrapSecret: running.bootstrapSecret,
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          const { port, address, family } = server.address() as AddressInfo;
          const host = family === 'IPv6' ? `[${address}]` : address === '0.0.0.0' ? '127.0.0.1' : address;
          resolve(`http://${host}:${port}`);
        });
      }),
    stop: () =>
      running.stop({
        refuseNew: () => server.close(),
        closeConnections: async () => {
          await wsServer.dispose(); // closes every socket with WsClose.GOING_AWAY, which returns() their subscriptions
          server.closeAllConnections();
        },
      }),
  };
}
