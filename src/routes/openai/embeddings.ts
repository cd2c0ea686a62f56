import { z } from 'zod';
import type { OpenAIRequestContext } from './chat-completions.js';
import { OpenAIRequestError } from './errors.js';

const request = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string())]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().nullish(),
});

/** Token arrays (OpenAI's `input: number[] | number[][]`): Ollama takes text only. */
const isTokenInput = (input: unknown) => Array.isArray(input) && input.length > 0 && input.every((v) => typeof v === 'number' || (Array.isArray(v) && v.every((n) => typeof n === 'number')));

/** A vector as OpenAI's base64 encoding: the little-endian float32 bytes. */
export function float32Base64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString('base64');
}

/**
 * `POST /v1/embeddings`: `input` a string or a list of strings, `encoding_format` float (default)
 * or base64, `dimensions`; paid, rate limited and logged by the embedding service like GraphQL `embed`.
 */
export async function embeddings(ctx: OpenAIRequestContext, body: unknown): Promise<void> {
  const { services, principal, requestId, signal, res, clientIp } = ctx;
  if (body && typeof body === 'object' && isTokenInput((body as Record<string, unknown>).input))
    throw new OpenAIRequestError('input as token arrays is not supported by this gateway; send text.', 'input');
  const parsed = request.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.path.map(String).join('.');
    throw new OpenAIRequestError(param ? `Invalid ${param}: ${issue.message}` : `Invalid request body: ${issue.message}`, param || null);
  }
  const r = parsed.data;
  ctx.facts.model = r.model;
  const input = typeof r.input === 'string' ? [r.input] : r.input;
  const result = await services.embeddings.embed(principal, { model: r.model, input, dimensions: r.dimensions ?? null }, { requestId, signal, clientIp });
  ctx.facts.generationId = result.generationId;
  const base64 = r.encoding_format === 'base64';
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-generation-id': result.generationId });
  res.end(
    JSON.stringify({
      object: 'list',
      data: result.embeddings.map((embedding, index) => ({ object: 'embedding', index, embedding: base64 ? float32Base64(embedding) : embedding })),
      model: r.model,
      usage: { prompt_tokens: result.usage.promptTokens, total_tokens: result.usage.promptTokens },
    }),
  );
}
