import { OllamaRequestError } from './errors.js';
import type { OllamaRequestContext } from './generation.js';
import { modelIn } from './models.js';
import { sendJson } from '../api-request.js';

function optionalNumber(body: Record<string, unknown>, field: string): number | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new OllamaRequestError(`invalid ${field}: expected a positive integer`);
  return v;
}

/** `POST /api/embed` `{model, input: string | string[], truncate?, dimensions?}`: paid, logged and limited like a generation. */
export async function embed(ctx: OllamaRequestContext, body: unknown): Promise<void> {
  const model = modelIn(body);
  ctx.facts.model = model;
  const b = body as Record<string, unknown>;
  const raw = b.input ?? [];
  const input = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(input) || !input.every((s) => typeof s === 'string')) throw new OllamaRequestError('invalid input type');
  if (b.truncate !== undefined && b.truncate !== null && typeof b.truncate !== 'boolean') throw new OllamaRequestError('invalid truncate: expected a boolean');
  const dimensions = optionalNumber(b, 'dimensions');
  if (input.length === 0) {
    // Ollama loads the model and answers no vectors; the gateway loads on demand and charges nothing.
    await ctx.services.models.overview.get(model);
    return sendJson(ctx.res, 200, { model, embeddings: [] });
  }
  const started = performance.now();
  const r = await ctx.services.embeddings.embed(
    ctx.principal,
    { model, input, dimensions, truncate: (b.truncate as boolean | undefined) ?? null },
    { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp },
  );
  ctx.facts.generationId = r.generationId;
  const total = Math.round((performance.now() - started) * 1e6);
  sendJson(ctx.res, 200, { model, embeddings: r.embeddings, total_duration: total, prompt_eval_count: r.usage.promptTokens }, { 'x-generation-id': r.generationId });
}

/** The deprecated `POST /api/embeddings` `{model, prompt}`: one vector, `{"embedding": [...]}`. */
export async function embeddings(ctx: OllamaRequestContext, body: unknown): Promise<void> {
  const model = modelIn(body);
  ctx.facts.model = model;
  const prompt = (body as { prompt?: unknown }).prompt ?? '';
  if (typeof prompt !== 'string') throw new OllamaRequestError('invalid prompt: expected a string');
  if (!prompt) {
    await ctx.services.models.overview.get(model);
    return sendJson(ctx.res, 200, { embedding: [] });
  }
  const r = await ctx.services.embeddings.embed(ctx.principal, { model, input: [prompt] }, { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp });
  ctx.facts.generationId = r.generationId;
  sendJson(ctx.res, 200, { embedding: r.embeddings[0] ?? [] }, { 'x-generation-id': r.generationId });
}
