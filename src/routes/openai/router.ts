import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../../services/container.js';
import { unauthenticated } from '../../services/errors.js';
import type { AuthEdge } from '../../transport/auth.js';
import { chatCompletions, type OpenAIRequestContext } from './chat-completions.js';
import { embeddings } from './embeddings.js';
import { OpenAIRequestError, toOpenAIError } from './errors.js';
import { listModels, retrieveModel } from './models.js';

export const OPENAI_PREFIX = '/v1/';
const CHAT_COMPLETIONS = '/v1/chat/completions';
const MODELS = '/v1/models';
const EMBEDDINGS = '/v1/embeddings';

/** Whether a request URL belongs to the OpenAI-compatible API. */
export function isOpenAIPath(url: string | undefined): boolean {
  return url?.startsWith(OPENAI_PREFIX) ?? false;
}

/** Reads a JSON body of at most `limit` bytes. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new OpenAIRequestError(`Request body is larger than ${limit} bytes.`, null, 413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new OpenAIRequestError(`Request body is larger than ${limit} bytes.`, null, 413);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new OpenAIRequestError('The request body is not valid JSON.');
  }
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new OpenAIRequestError('The model in the path is not validly encoded.', 'model');
  }
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
};

/**
 * The OpenAI-compatible REST API on the gateway's keys, credits, rate limits and usage log:
 * `GET /v1/models`, `GET /v1/models/{model}`, `POST /v1/chat/completions` and `POST /v1/embeddings`. The key comes as
 * `Authorization: Bearer <key>` (or `x-api-key`); errors use OpenAI's `{ error: { ... } }` body.
 */
export async function serveOpenAI(
  req: IncomingMessage,
  res: ServerResponse,
  services: Services,
  edge: AuthEdge,
): Promise<void> {
  const started = Date.now();
  const requestId = randomUUID();
  const log = services.log.child({ requestId });
  const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
  const facts: Record<string, unknown> = { route: path.startsWith(`${MODELS}/`) ? `${MODELS}/{model}` : path, method: req.method };
  const controller = new AbortController();
  // Client gone before the response ended: abort the generation (and the request to Ollama).
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });

  const fail = (e: unknown) => {
    const errorId = randomUUID();
    const out = toOpenAIError(e, errorId);
    services.metrics.recordError(out.gatewayCode, 'openai');
    facts.outcome = 'error';
    facts.errorCode = out.gatewayCode;
    facts.status = res.headersSent ? facts.status : out.status;
    if (out.gatewayCode === 'INTERNAL_SERVER_ERROR') log.error({ err: e, errorId }, 'openai request failed');
    if (res.destroyed || res.writableEnded) return;
    if (res.headersSent) res.write(`data: ${JSON.stringify(out.body)}\n\n`);
    else json(res, out.status, out.body, out.headers);
  };

  try {
    // Before the body is read: a request without a valid key costs no parsing.
    const auth = await edge.request(req);
    if (auth.kind === 'refused') {
      res.setHeader('connection', 'close');
      throw auth.error;
    }
    if (auth.kind === 'none') {
      res.setHeader('connection', 'close');
      throw unauthenticated('A valid API key is required (Authorization: Bearer <key>).');
    }
    facts.key = auth.key.prefix;
    const ctx: OpenAIRequestContext = { services, principal: auth.principal, requestId, signal: controller.signal, res, fail, facts, clientIp: auth.ip };

    if (path === CHAT_COMPLETIONS) {
      if (req.method !== 'POST') throw new OpenAIRequestError('Use POST.', null, 405);
      await chatCompletions(ctx, await readJson(req, services.config.maxBodyBytes));
    } else if (path === EMBEDDINGS) {
      if (req.method !== 'POST') throw new OpenAIRequestError('Use POST.', null, 405);
      await embeddings(ctx, await readJson(req, services.config.maxBodyBytes));
    } else if (path === MODELS) {
      if (req.method !== 'GET') throw new OpenAIRequestError('Use GET.', null, 405);
      json(res, 200, await listModels(services));
    } else if (path.startsWith(`${MODELS}/`)) {
      if (req.method !== 'GET') throw new OpenAIRequestError('Use GET.', null, 405);
      json(res, 200, await retrieveModel(services, decodePathPart(path.slice(MODELS.length + 1))));
    } else {
      throw new OpenAIRequestError(`Unknown endpoint ${req.method} ${path}; this gateway serves ${MODELS}, ${CHAT_COMPLETIONS} and ${EMBEDDINGS}.`, null, 404);
    }
    facts.outcome ??= controller.signal.aborted ? 'client-closed' : 'ok';
    facts.status ??= res.statusCode;
  } catch (e) {
    if (controller.signal.aborted) facts.outcome = 'client-closed';
    else fail(e);
  } finally {
    if (!res.writableEnded && !res.destroyed) res.end();
    log.info({ ...facts, durationMs: Date.now() - started }, 'openai request');
  }
}
