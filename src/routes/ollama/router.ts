import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../../services/container.js';
import { unauthenticated } from '../../services/errors.js';
import type { AuthEdge } from '../../transport/auth.js';
import { copy, create, pull, push, remove, requireAdmin } from './admin.js';
import { embed, embeddings } from './embed.js';
import { OllamaRequestError, toOllamaError } from './errors.js';
import { type OllamaRequestContext, serveGeneration } from './generation.js';
import { listRunning, listTags, showModel, version } from './models.js';
import { sendJson } from './ndjson.js';
import { parseChatRequest, parseGenerateRequest } from './request.js';

export const OLLAMA_PREFIX = '/api/';

/** Whether a request URL belongs to Ollama's own API. */
export function isOllamaPath(url: string | undefined): boolean {
  return url?.startsWith(OLLAMA_PREFIX) ?? false;
}

type Handler = (ctx: OllamaRequestContext, body: unknown) => Promise<void>;
interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  admin?: boolean;
  /** Whether the handler takes a JSON body. */
  body?: boolean;
  handle: Handler;
}

const imageLimits = (s: Services) => ({
  maxImages: s.config.maxImagesPerMessage,
  maxImagesPerRequest: s.config.limits.maxImagesPerRequest,
  maxBytes: s.config.maxImageBytes,
  timeoutMs: s.config.imageFetchTimeoutMs,
  allowPrivate: s.config.imageUrlAllowPrivate,
});

const ROUTES: Record<string, Route> = {
  '/api/chat': { method: 'POST', body: true, handle: (ctx, body) => serveGeneration(ctx, parseChatRequest(body, imageLimits(ctx.services))) },
  '/api/generate': { method: 'POST', body: true, handle: (ctx, body) => serveGeneration(ctx, parseGenerateRequest(body, imageLimits(ctx.services))) },
  '/api/embed': { method: 'POST', body: true, handle: embed },
  '/api/embeddings': { method: 'POST', body: true, handle: embeddings },
  '/api/tags': { method: 'GET', handle: async (ctx) => sendJson(ctx.res, 200, await listTags(ctx.services)) },
  '/api/ps': { method: 'GET', handle: async (ctx) => sendJson(ctx.res, 200, await listRunning(ctx.services)) },
  '/api/show': { method: 'POST', body: true, handle: async (ctx, body) => sendJson(ctx.res, 200, await showModel(ctx.services, body)) },
  '/api/version': { method: 'GET', handle: async (ctx) => sendJson(ctx.res, 200, await version(ctx.services, ctx.signal)) },
  '/api/pull': { method: 'POST', admin: true, body: true, handle: pull },
  '/api/delete': { method: 'DELETE', admin: true, body: true, handle: remove },
  '/api/copy': { method: 'POST', admin: true, body: true, handle: copy },
  '/api/create': { method: 'POST', admin: true, body: true, handle: create },
  '/api/push': { method: 'POST', admin: true, body: true, handle: push },
};

/** Reads a JSON body of at most `limit` bytes; undefined when empty (Ollama's "missing request body"). */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new OllamaRequestError(`request body is larger than ${limit} bytes`, 413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new OllamaRequestError(`request body is larger than ${limit} bytes`, 413);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new OllamaRequestError('the request body is not valid JSON');
  }
}

/**
 * Ollama's own API on the gateway's keys, credits, rate limits and usage log, so existing Ollama
 * clients (ollama-js, ollama-python, Open WebUI, LangChain, Continue) work with a key as
 * `Authorization: Bearer <key>` (or `x-api-key`). Errors are Ollama's `{"error": "..."}`.
 */
export async function serveOllama(req: IncomingMessage, res: ServerResponse, services: Services, edge: AuthEdge): Promise<void> {
  const started = Date.now();
  const requestId = randomUUID();
  const log = services.log.child({ requestId });
  const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
  const facts: Record<string, unknown> = { route: path, method: req.method };
  const controller = new AbortController();
  // Client gone before the response ended: abort the generation (and the request to Ollama).
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });

  const fail = (e: unknown) => {
    const errorId = randomUUID();
    const out = toOllamaError(e, errorId);
    services.metrics.recordError(out.gatewayCode, 'ollama');
    facts.outcome = 'error';
    facts.errorCode = out.gatewayCode;
    facts.status = res.headersSent ? facts.status : out.status;
    if (out.gatewayCode === 'INTERNAL_SERVER_ERROR' && out.status === 500) log.error({ err: e, errorId }, 'ollama request failed');
    if (res.destroyed || res.writableEnded) return;
    if (res.headersSent) res.write(`${JSON.stringify(out.body)}\n`);
    else sendJson(res, out.status, out.body, out.headers);
  };

  try {
    // Before the body is read: a request without a valid key costs no parsing.
    const auth = await edge.request(req);
    if (auth.kind === 'refused') {
      res.setHeader('connection', 'close');
      for (const [k, v] of Object.entries(auth.headers)) res.setHeader(k, v);
      throw auth.error;
    }
    if (auth.kind === 'none') {
      res.setHeader('connection', 'close');
      throw unauthenticated('A valid API key is required (Authorization: Bearer <key>).');
    }
    facts.key = auth.key.prefix;
    const ctx: OllamaRequestContext = { services, principal: auth.principal, requestId, signal: controller.signal, res, fail, facts, clientIp: auth.ip };
    const route = ROUTES[path];
    if (!route) throw new OllamaRequestError(`unknown endpoint ${req.method} ${path}`, 404, 'NOT_FOUND');
    if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
      res.setHeader('allow', route.method);
      throw new OllamaRequestError('method not allowed', 405);
    }
    if (route.admin) requireAdmin(ctx);
    await route.handle(ctx, route.body ? await readJson(req, services.config.maxBodyBytes) : undefined);
    facts.outcome ??= controller.signal.aborted ? 'client-closed' : 'ok';
    facts.status ??= res.statusCode;
  } catch (e) {
    if (controller.signal.aborted) facts.outcome = 'client-closed';
    else fail(e);
  } finally {
    if (!res.writableEnded && !res.destroyed) res.end();
    log.info({ ...facts, durationMs: Date.now() - started }, 'ollama request');
  }
}
