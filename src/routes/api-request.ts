import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../services/container.js';
import { ErrorCode, unauthenticated } from '../services/platform/errors.js';
import type { Principal } from '../services/access/keys.js';
import type { AuthEdge } from '../transport/auth.js';

/** What a handler of a REST API (`/v1`, `/api`) gets for one authenticated request. */
export interface RouteContext {
  services: Services;
  principal: Principal;
  requestId: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  res: ServerResponse;
  /** The client's address (per-address limits in the generation service). */
  clientIp: string;
  /** Writes an error in the API's shape: a status and body before headers, one more line of the stream after. */
  fail(e: unknown): void;
  /** Facts for the request's log line. */
  facts: Record<string, unknown>;
}

/** An error as one API answers it. */
export interface ApiError {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  gatewayCode: string;
}

/** What differs between the REST APIs: error shapes, stream framing, names. */
export interface ApiFlavour {
  api: 'openai' | 'ollama';
  toError(e: unknown, errorId: string): ApiError;
  /** An error after the headers were sent, framed as one more item of the stream. */
  streamedError(body: unknown): string;
  /** The route name for the log line (path parameters replaced). */
  routeName(path: string): string;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

/**
 * Writes with backpressure: waits for `drain`. A client that does not read for `slowMs` is cut
 * off (SLOW_CLIENT_TIMEOUT_MS), which aborts its generation instead of holding a model slot.
 */
export function writeWithBackpressure(res: ServerResponse, text: string, slowMs: number): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  if (res.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => res.destroy(), slowMs);
    const done = () => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** Why a body is refused; each API words it its own way. */
export type BodyProblem = 'too-large' | 'invalid';

/**
 * Reads a JSON body of at most `limit` bytes. An empty body is undefined when `emptyAllowed`
 * (Ollama's load requests), else invalid. `bad` builds the API's own error.
 */
export async function readJsonBody(req: IncomingMessage, limit: number, bad: (problem: BodyProblem) => Error, emptyAllowed = false): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw bad('too-large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw bad('too-large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (emptyAllowed && !text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw bad('invalid');
  }
}

/**
 * One REST request, the same for every API: authenticated at the edge before the body is read,
 * aborted when the client goes away, failures answered in the API's shape (or as one more line
 * once streaming), one log line at the end.
 */
export async function serveApiRequest(
  req: IncomingMessage,
  res: ServerResponse,
  services: Services,
  edge: AuthEdge,
  flavour: ApiFlavour,
  dispatch: (ctx: RouteContext, path: string) => Promise<void>,
): Promise<void> {
  const started = Date.now();
  const requestId = randomUUID();
  const log = services.log.child({ requestId });
  const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
  const facts: Record<string, unknown> = { route: flavour.routeName(path), method: req.method };
  const controller = new AbortController();
  // Client gone before the response ended: abort the generation (and the request to Ollama).
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });

  const fail = (e: unknown) => {
    const errorId = randomUUID();
    const out = flavour.toError(e, errorId);
    services.metrics.recordError(out.gatewayCode, flavour.api);
    facts.outcome = 'error';
    facts.errorCode = out.gatewayCode;
    facts.status = res.headersSent ? facts.status : out.status;
    if (out.gatewayCode === ErrorCode.INTERNAL_SERVER_ERROR) log.error({ err: e, errorId }, `${flavour.api} request failed`);
    if (res.destroyed || res.writableEnded) return;
    if (res.headersSent) res.write(flavour.streamedError(out.body));
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
    await dispatch({ services, principal: auth.principal, requestId, signal: controller.signal, res, fail, facts, clientIp: auth.ip }, path);
    facts.outcome ??= controller.signal.aborted ? 'client-closed' : 'ok';
    facts.status ??= res.statusCode;
  } catch (e) {
    if (controller.signal.aborted) facts.outcome = 'client-closed';
    else fail(e);
  } finally {
    if (!res.writableEnded && !res.destroyed) res.end();
    log.info({ ...facts, durationMs: Date.now() - started }, `${flavour.api} request`);
  }
}
