import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../services/container.js';

export const METRICS_PATH = '/metrics';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Compares in constant time (over the digests, so the lengths leak nothing either). */
function tokenMatches(presented: string | undefined, expected: string): boolean {
  return presented !== undefined && timingSafeEqual(digest(presented), digest(expected));
}

/**
 * `GET /metrics`: Prometheus text format from the gateway's registry (yoga's GraphQL metrics and
 * the gateway's own). With METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` may read it.
 */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, services: Services): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    return void res.end('Use GET.\n');
  }
  const expected = services.config.metricsToken;
  if (expected) {
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    if (!tokenMatches(presented, expected)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="metrics"', 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      return void res.end('A valid metrics token is required (Authorization: Bearer <METRICS_TOKEN>).\n');
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
