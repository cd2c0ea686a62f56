import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../../services/container.js';
import type { AuthEdge } from '../../transport/auth.js';
import { type ApiFlavour, type BodyProblem, readJsonBody, sendJson, serveApiRequest } from '../api-request.js';
import { copy, create, pull, push, remove, requireAdmin } from './admin.js';
import { embed, embeddings } from './embed.js';
import { OllamaRequestError, toOllamaError } from './errors.js';
import { type OllamaRequestContext, serveGeneration } from './generation.js';
import { listRunning, listTags, showModel, version } from './models.js';
import { parseChatRequest, parseGenerateRequest } from './request.js';

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


/**
 * Ollama's own API on the gateway's keys, credits, rate limits and usage log, so existing Ollama
 * clients (ollama-js, ollama-python, Open WebUI, LangChain, Continue) work with a key as
 * `Authorization: Bearer <key>` (or `x-api-key`). Errors are Ollama's `{"error": "..."}`.
 */
export function serveOllama(req: IncomingMessage, res: ServerResponse, services: Services, edge: AuthEdge): Promise<void> {
  const limit = services.config.maxBodyBytes;
  return serveApiRequest(req, res, services, edge, OLLAMA, async (ctx, path) => {
    const route = ROUTES[path];
    if (!route) throw new OllamaRequestError(`unknown endpoint ${req.method} ${path}`, 404, 'NOT_FOUND');
    if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
      ctx.res.setHeader('allow', route.method);
      throw new OllamaRequestError('method not allowed', 405);
    }
    if (route.admin) requireAdmin(ctx);
    await route.handle(ctx, route.body ? await readJsonBody(req, limit, ollamaBodyError(limit), true) : undefined);
  });
}

/** Ollama's words for a refused body. */
const ollamaBodyError = (limit: number) => (problem: BodyProblem) =>
  problem === 'too-large' ? new OllamaRequestError(`request body is larger than ${limit} bytes`, 413) : new OllamaRequestError('the request body is not valid JSON');

const OLLAMA: ApiFlavour = {
  api: 'ollama',
  toError: toOllamaError,
  // After the first line, an error is one more NDJSON line, as Ollama sends it.
  streamedError: (body) => `${JSON.stringify(body)}\n`,
  routeName: (path) => path,
};
