import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config.js';
import { isAdminPath, serveAdmin, serveRoot } from '../routes/admin.js';
import { METRICS_PATH, serveMetrics } from '../routes/metrics.js';
import { EXPORT_CONVERSATIONS_PATH, isOllamaPath, isOpenAIPath } from '../routes/paths.js';
import type { Services } from '../services/container.js';
import { ErrorCode } from '../services/platform/errors.js';
import { checkHealth } from '../services/platform/health.js';
import { VERSION } from '../version.js';
import { type AuthEdge, keyRequired } from './auth.js';
import type { Hardening } from './hardening.js';
import { sendJsonError, sendRefusal } from './http-guards.js';
// The /v1 and /api routers and the CSV export are imported on first use (idle memory).
import { exportConversations, serveOllama, serveOpenAI } from './lazy-routes.js';
import type { SseSubscriptions } from './sse-subscriptions.js';
import type { AuthedRequest, GatewayYoga } from './yoga.js';

export interface HttpRouterDeps {
  config: Config;
  services: Services;
  edge: AuthEdge;
  hardening: Hardening;
  yoga: GatewayYoga;
  sseSubscriptions: SseSubscriptions;
}

/**
 * The http.Server's request handler: `/health`, the CSV export, `/metrics`, the service
 * description and admin console, `/v1` (OpenAI), `/api` (Ollama), GraphQL subscriptions over SSE
 * to the gateway's own SSE writer, and everything else to yoga.
 */
export function createHttpRouter({ config, services, edge, hardening, yoga, sseSubscriptions }: HttpRouterDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { log } = services;

  const serveHealth = async (res: ServerResponse) => {
    const report = await checkHealth(services.db, services.pool, VERSION);
    res.writeHead(report.database ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(report));
  };

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
    if (!(await hardening.prepareGraphQL(req, res))) return;
    // SSE subscriptions skip yoga's fetch layer; what turns out not to be one goes on to yoga.
    if (sseSubscriptions.claims(req)) return sseSubscriptions.serve(req, res);
    void yoga.handle(req, res);
  };

  return (req, res) => {
    if (req.url === '/health' && (req.method === 'GET' || req.method === 'HEAD')) return void serveHealth(res);
    route(req, res).catch((err: unknown) => {
      // E.g. the key lookup failed: masked, with an errorId pointing to the cause in the log.
      const errorId = randomUUID();
      log.error({ err, errorId }, 'request routing failed');
      sendJsonError(res, 500, `Internal server error (errorId ${errorId}); the details are in the gateway's log.`, { code: ErrorCode.INTERNAL_SERVER_ERROR, errorId });
    });
  };
}

function refuseLargeBody(res: ServerResponse, limit: number) {
  res.writeHead(413, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
  res.end(JSON.stringify({ errors: [{ message: `Request body is larger than ${limit} bytes.`, extensions: { code: ErrorCode.BAD_USER_INPUT } }] }));
}
