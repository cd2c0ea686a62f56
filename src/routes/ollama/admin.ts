import type { CreateRequest, ProgressResponse } from 'ollama';
import { ErrorCode, GatewayError, forbidden } from '../../services/platform/errors.js';
import { modelNotFound } from '../../services/models/errors.js';
import type { OllamaHost } from '../../services/ollama/pool.js';
import { OllamaRequestError } from './errors.js';
import type { OllamaRequestContext } from './generation.js';
import { modelIn } from './models.js';
import { sendJson } from '../api-request.js';
import { startNdjson, writeLine } from './ndjson.js';

/** Ollama's progress line: zero values left out, as Ollama's omitempty does. */
interface ProgressLine {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

const line = (p: { status: string; digest?: string | null; total?: number | null; completed?: number | null }): ProgressLine => ({
  status: p.status,
  ...(p.digest ? { digest: p.digest } : {}),
  ...(p.total ? { total: p.total } : {}),
  ...(p.completed ? { completed: p.completed } : {}),
});

export function requireAdmin(ctx: OllamaRequestContext): void {
  if (ctx.principal.role !== 'ADMIN') throw forbidden('This endpoint needs an ADMIN key.');
}

const streamed = (body: unknown) => (body as { stream?: unknown } | null)?.stream !== false;

/**
 * Sends progress as Ollama does: NDJSON lines ending with `{"status":"success"}`, or with
 * `stream: false` only that last line. The response waits for the first line, so a failure
 * before it keeps its HTTP status; a later one is a last `{"error"}` line.
 */
async function relayProgress(ctx: OllamaRequestContext, progress: AsyncIterable<ProgressLine>, stream: boolean): Promise<void> {
  const it = progress[Symbol.asyncIterator]();
  try {
    const first = await it.next();
    if (!stream) {
      for (let r = first; !r.done; r = await it.next());
      return sendJson(ctx.res, 200, { status: 'success' });
    }
    startNdjson(ctx.res);
    const slowMs = ctx.services.config.limits.slowClientTimeoutMs;
    try {
      for (let r = first; !r.done && !ctx.signal.aborted; r = await it.next()) await writeLine(ctx.res, r.value, slowMs);
      if (!ctx.signal.aborted) await writeLine(ctx.res, { status: 'success' }, slowMs);
    } catch (e) {
      ctx.fail(e);
    }
    ctx.res.end();
  } finally {
    await it.return?.();
  }
}

/** Ollama's progress lines of a forwarded stream, without its own final `success` (relayProgress sends one). */
async function* fromOllama(source: AsyncIterable<ProgressResponse>): AsyncGenerator<ProgressLine> {
  for await (const p of source) if (p.status !== 'success') yield line(p);
}

/** `POST /api/pull`: through the gateway's pulls (joined when already running, catalog and events kept), on every healthy host. */
export async function pull(ctx: OllamaRequestContext, body: unknown): Promise<void> {
  const requested = modelIn(body);
  ctx.facts.model = requested;
  const { fleet } = ctx.services.models;
  await fleet.beginPull(requested);
  async function* progress(): AsyncGenerator<ProgressLine> {
    // beginPull has found the manifest already; Ollama's stream starts with saying so.
    let first = true;
    for await (const p of fleet.followPull(requested)) {
      if (p.error) throw new GatewayError(p.error.code as ErrorCode, p.error.message, p.error.details);
      if (first && p.status !== 'pulling manifest') yield { status: 'pulling manifest' };
      first = false;
      if (!p.done) yield line(p);
    }
  }
  await relayProgress(ctx, progress(), streamed(body));
}

/** `DELETE /api/delete`: through the gateway's lifecycle (refused while the model is loaded or busy), on every host that has it. */
export async function remove(ctx: OllamaRequestContext, body: unknown): Promise<void> {
  const requested = modelIn(body);
  ctx.facts.model = requested;
  await ctx.services.models.fleet.delete(requested);
  ctx.res.writeHead(200, { 'content-length': '0' }).end();
}

/** The hosts that have a model installed (an alias is resolved); MODEL_NOT_FOUND when none. */
async function holders(ctx: OllamaRequestContext, requested: string): Promise<{ name: string; hosts: OllamaHost[] }> {
  const v = await ctx.services.models.overview.get(requested);
  const hosts = v.placements.filter((p) => p.installed).map((p) => ctx.services.pool.host(p.host));
  if (!hosts.length) throw modelNotFound(requested, `model "${requested.slice(0, 200)}" not found`);
  return { name: v.name, hosts };
}

/** `POST /api/copy`: forwarded to every host that has the source. */
export async function copy(ctx: OllamaRequestContext, body: unknown): Promise<void> {
  const { source, destination } = (body ?? {}) as { source?: unknown; destination?: unknown };
  if (typeof source !== 'string' || !source) throw new OllamaRequestError('source is required');
  if (typeof destination !== 'string' || !destination) throw new OllamaRequestError('destination is required');
  ctx.facts.model = source;
  const { name, hosts } = await holders(ctx, source);
  for (const h of hosts) {
    await h.upstream.copy(name, destination, ctx.signal);
    h.invalidate();
  }
  ctx.res.writeHead(200, { 'content-length': '0' }).end();
}

/** `POST /api/create`: forwarded to a host that has `from` (else the first healthy host). */
export async function create(ctx: OllamaRequestContext, body: unknown): Promise<void> {
  const model = modelIn(body);
  const request = { ...(body as CreateRequest), model };
  ctx.facts.model = model;
  if (request.from !== undefined && typeof request.from !== 'string') throw new OllamaRequestError('invalid from: expected a string');
  const hosts = request.from ? await holders(ctx, request.from).then((r) => r.hosts, () => []) : [];
  const host = hosts[0] ?? ctx.services.pool.hosts.find((h) => h.isHealthy) ?? ctx.services.pool.primary;
  const { stream: _stream, ...rest } = request;
  await relayProgress(ctx, fromOllama(host.upstream.createStream(rest, ctx.signal)), streamed(body));
  host.invalidate();
}

/** `POST /api/push`: forwarded to a host that has the model. */
export async function push(ctx: OllamaRequestContext, body: unknown): Promise<void> {
  const requested = modelIn(body);
  ctx.facts.model = requested;
  const { name, hosts } = await holders(ctx, requested);
  const insecure = (body as { insecure?: unknown }).insecure === true;
  await relayProgress(ctx, fromOllama(hosts[0].upstream.pushStream(name, insecure, ctx.signal)), streamed(body));
}
