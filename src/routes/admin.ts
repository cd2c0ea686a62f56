import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../version.js';

export const ADMIN_PATH = '/admin';

/** The built console (`npm run build` → dist/admin), found from src/ under tsx and from dist/. */
const ADMIN_DIRS = ['../../dist/admin/', '../admin/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

// Everything comes from the gateway itself; the page holds an admin key, so nothing may frame it.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};

/** True for `/admin`, `/admin/` and `/admin/<file>`. */
export function isAdminPath(url: string | undefined): boolean {
  const path = url?.split('?')[0] ?? '';
  return path === ADMIN_PATH || path.startsWith(`${ADMIN_PATH}/`);
}

/** Serves the admin console's static files (a flat directory: no sub-paths, no dot files). */
export async function serveAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    return void res.end('Use GET.\n');
  }
  const path = req.url!.split('?')[0]!;
  if (path === ADMIN_PATH) {
    res.writeHead(308, { location: `${ADMIN_PATH}/` });
    return void res.end();
  }
  const name = path.slice(ADMIN_PATH.length + 1) || 'index.html';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) || !TYPES[extname(name)]) return notFound(res);
  for (const dir of ADMIN_DIRS) {
    let body: Buffer;
    try {
      body = await readFile(dir + name);
    } catch {
      continue;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(name)]!, 'content-length': body.length, ...SECURITY_HEADERS });
    return void res.end(req.method === 'HEAD' ? undefined : body);
  }
  if (name === 'index.html') {
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
    return void res.end('The admin console is not built: run `npm run build`.\n');
  }
  notFound(res);
}

function notFound(res: ServerResponse) {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('Not found.\n');
}

/**
 * `GET /`: a browser (Accept: text/html) goes to the admin console; any other client gets a
 * short JSON description of the service and its endpoints.
 */
export function serveRoot(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    return void res.end('Use GET.\n');
  }
  if (req.headers.accept?.includes('text/html')) {
    res.writeHead(302, { location: `${ADMIN_PATH}/` });
    return void res.end();
  }
  const body = JSON.stringify({
    name: 'llm-graphql-gateway',
    version: VERSION,
    description: 'GraphQL gateway for local LLMs served by Ollama.',
    endpoints: {
      graphql: '/graphql',
      openai: '/v1',
      ollama: '/api',
      metrics: '/metrics',
      health: '/health',
      admin: ADMIN_PATH,
    },
  });
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}
