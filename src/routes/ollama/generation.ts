import type { ServerResponse } from 'node:http';
import type { Services } from '../../services/container.js';
import type { DoneEvent, GenerationEvent, ToolCall } from '../../services/generation/types.js';
import type { Principal } from '../../services/access/keys.js';
import { type RouteContext, sendJson } from '../api-request.js';
import { startNdjson, writeLine } from './ndjson.js';
import type { OllamaGenerationRequest } from './request.js';

/** One authenticated `/api` request (the shared REST request scope). */
export type OllamaRequestContext = RouteContext;

/** When each step of a generation happened, as the gateway saw it (performance.now() milliseconds). */
interface Timing {
  start: number;
  loading?: number;
  generating?: number;
  first?: number;
}

const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));

/**
 * Ollama's final-chunk metrics from what the gateway knows: token counts from the usage, and
 * durations it measured itself (loading: from the LOADING_MODEL phase to generating; prompt
 * evaluation: to the first output; evaluation: first output to the end). Zeros are left out,
 * as Ollama's omitempty does.
 */
function metrics(done: DoneEvent, t: Timing): Record<string, number> {
  const end = performance.now();
  const first = t.first ?? end;
  const values: Record<string, number> = {
    total_duration: ns(done.durationMs > 0 ? done.durationMs : end - t.start),
    load_duration: t.loading === undefined ? 0 : ns((t.generating ?? first) - t.loading),
    prompt_eval_count: done.usage.promptTokens,
    prompt_eval_duration: ns(first - (t.generating ?? t.loading ?? t.start)),
    eval_count: done.usage.completionTokens,
    eval_duration: ns(end - first),
  };
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v > 0));
}

/** Ollama's `tool_calls` entry: arguments as a JSON object, with the call's id and index. */
const toolCallOut = (c: ToolCall, index: number) => ({ id: c.id, function: { index, name: c.name, arguments: c.arguments } });

/** Acknowledges Ollama's "load the model" request (no prompt, no messages) once the model is known. */
async function acknowledgeLoad(ctx: OllamaRequestContext, req: OllamaGenerationRequest): Promise<void> {
  await ctx.services.models.overview.get(req.model);
  const base = { model: req.model, created_at: new Date().toISOString() };
  const body = req.plan.kind === 'chat' ? { ...base, message: { role: 'assistant', content: '' } } : { ...base, response: '' };
  // Ollama answers it with one JSON object even when streaming; the gateway loads models on demand and owns keep_alive.
  sendJson(ctx.res, 200, { ...body, done: true, done_reason: 'load' });
}

/**
 * `POST /api/chat` and `POST /api/generate`: runs the plan through the generation service (credits,
 * limits, usage log, host pool, aliases) and answers in Ollama's shapes, streamed as NDJSON or whole.
 */
export async function serveGeneration(ctx: OllamaRequestContext, req: OllamaGenerationRequest): Promise<void> {
  const { services, principal, requestId, signal, res, clientIp } = ctx;
  ctx.facts.model = req.model;
  ctx.facts.stream = req.stream;
  if (req.loadOnly) return acknowledgeLoad(ctx, req);
  const chat = req.plan.kind === 'chat';
  const timing: Timing = { start: performance.now() };
  const events = services.generation.stream(principal, async () => req.plan, { requestId, signal, clientIp, streamed: req.stream });
  let toolIndex = 0;
  /** One streamed chunk, or the whole reply, in the route's shape. */
  const shape = (content: string, thinking: string | undefined, calls: ToolCall[] | undefined, tail: Record<string, unknown>) => {
    const base = { model: req.model, created_at: new Date().toISOString() };
    if (chat) {
      const message: Record<string, unknown> = { role: 'assistant', content };
      if (thinking) message.thinking = thinking;
      if (calls?.length) message.tool_calls = calls.map((c) => toolCallOut(c, toolIndex++));
      return { ...base, message, ...tail };
    }
    return { ...base, response: content, ...(thinking ? { thinking } : {}), ...tail };
  };
  const next = async (): Promise<GenerationEvent | undefined> => {
    for (;;) {
      const r = await events.next();
      if (r.done) return undefined;
      const e = r.value;
      if (e.type !== 'PHASE') return e;
      // Phases send nothing, as with Ollama; they only time the final metrics.
      if (e.phase === 'LOADING_MODEL') timing.loading ??= performance.now();
      if (e.phase === 'GENERATING') timing.generating ??= performance.now();
    }
  };
  try {
    // Hold the response until the first output (or the end): errors before it, such as an
    // unknown model, credits or rate limits, still get their HTTP status.
    const first = await next();
    if (!first) return; // the client left
    timing.first = performance.now();
    ctx.facts.generationId = first.generationId;
    const headers = { 'x-generation-id': first.generationId };

    if (!req.stream) {
      let text = '';
      let thinking = '';
      const calls: ToolCall[] = [];
      for (let e: GenerationEvent | undefined = first; e; e = await next()) {
        if (e.type === 'TOKEN') {
          text += e.delta;
          thinking += e.thinking ?? '';
          calls.push(...(e.toolCalls ?? []));
        } else if (e.type === 'DONE') {
          sendJson(res, 200, shape(text, thinking, calls, { done: true, done_reason: e.doneReason, ...metrics(e, timing) }), headers);
          ctx.facts.outcome = 'ok';
          return;
        }
      }
      return; // the client left
    }

    startNdjson(res, headers);
    const slowMs = services.config.limits.slowClientTimeoutMs;
    try {
      for (let e: GenerationEvent | undefined = first; e; e = await next()) {
        if (e.type === 'TOKEN') {
          if (!e.delta && !e.thinking && !e.toolCalls?.length) continue;
          await writeLine(res, shape(e.delta, e.thinking, e.toolCalls, { done: false }), slowMs);
        } else if (e.type === 'DONE') {
          await writeLine(res, shape('', undefined, undefined, { done: true, done_reason: e.doneReason, ...metrics(e, timing) }), slowMs);
          ctx.facts.outcome = 'ok';
          break;
        }
      }
    } catch (e) {
      // Headers are out: one more `{"error"}` line, then the stream ends (as Ollama does).
      ctx.fail(e);
    }
    res.end();
  } finally {
    await events.return?.();
  }
}
