import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../services/container.js';
import type { AuthEdge } from '../transport/auth.js';

export const METRICS_PATH = '/metrics';

/**
 * `GET /metrics`: Prometheus text format from the gateway's registry (yoga's GraphQL metrics and
 * the gateway's own). With METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` may read it;
 * the edge compares it in constant time and counts wrong tokens like wrong keys.
 */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, services: Services, edge: AuthEdge): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    return void res.end('Use GET.\n');
  }
  const expected = services.config.metricsToken;
  if (expected) {
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    const auth = await edge.checkToken(presented, expected, edge.ipOf(req));
    if (auth.kind === 'refused') {
      const message = auth.status === 429 ? `${auth.error.message}\n` : 'A valid metrics token is required (Authorization: Bearer <METRICS_TOKEN>).\n';
      res.writeHead(auth.status, { 'www-authenticate': 'Bearer realm="metrics"', 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...auth.headers });
      return void res.end(message);
    }
  }
  const { registry } = services.metrics;
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    services.log.error({ err, route: METRICS_PATH }, 'metrics collection failed');
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Metrics collection failed.\n');
  }
}
