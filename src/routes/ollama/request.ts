import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { GenerationMessage, ToolCall } from '../../entities/generation.js';
import { OPTION_LIMITS, type GenerationOptions } from '../../services/generation/options.js';
import type { GenerationPlan, ThinkSetting, ToolDefinition } from '../../services/generation/types.js';
import { imageFromBase64 } from '../../services/images/image-bytes.js';
import { checkImageCounts, type ImageLimits } from '../../services/images/resolve-images.js';
import { OllamaRequestError } from './errors.js';

const L = OPTION_LIMITS;
const MAX_MESSAGES = 1000;

const stop = z.string().min(1).max(L.stop.maxLength);
// Ollama's option names; other keys are ignored, as Ollama only logs unknown ones.
const options = z.looseObject({
  temperature: z.number().min(L.temperature.min).max(L.temperature.max).nullish(),
  top_p: z.number().min(L.topP.min).max(L.topP.max).nullish(),
  top_k: z.number().int().min(L.topK.min).max(L.topK.max).nullish(),
  // Ollama's "no limit" (-1) and "fill the context" (-2) leave the gateway's DEFAULT_MAX_TOKENS in place.
  num_predict: z.union([z.number().int().max(-1), z.number().int().min(L.maxTokens.min).max(L.maxTokens.max)]).nullish(),
  repeat_penalty: z.number().min(L.repetitionPenalty.min).max(L.repetitionPenalty.max).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([stop, z.array(stop).max(L.stop.maxItems)]).nullish(),
  num_ctx: z.number().int().min(L.numCtx.min).max(L.numCtx.max).nullish(),
});

const think = z.union([z.boolean(), z.enum(['low', 'medium', 'high'])]).nullish();
// "" is Ollama's "no format".
const format = z.union([z.literal('json'), z.literal(''), z.record(z.string(), z.unknown())]).nullish();
const images = z.array(z.string()).nullish();

const common = {
  model: z.string().min(1, 'model is required'),
  stream: z.boolean().nullish(),
  options: options.nullish(),
  think,
  format,
  // The gateway owns keep_alive (inactivity thresholds): accepted and ignored.
  keep_alive: z.union([z.number(), z.string()]).nullish(),
  logprobs: z.literal(false).nullish(),
};

const toolCall = z.looseObject({
  id: z.string().nullish(),
  function: z.looseObject({ index: z.number().nullish(), name: z.string().min(1), arguments: z.record(z.string(), z.unknown()).nullish() }),
});

const message = z.looseObject({
  role: z.string().transform((r) => r.toLowerCase()).pipe(z.enum(['system', 'user', 'assistant', 'tool'])),
  content: z.string().nullish(),
  images,
  // Reasoning sent back with the history is left out, as Ollama's own chat template does.
  thinking: z.string().nullish(),
  tool_calls: z.array(toolCall).nullish(),
  tool_name: z.string().nullish(),
  tool_call_id: z.string().nullish(),
});

const tool = z.looseObject({
  type: z.literal('function').nullish(),
  function: z.looseObject({ name: z.string().min(1), description: z.string().nullish(), parameters: z.record(z.string(), z.unknown()).nullish() }),
});

const chatRequest = z.looseObject({ ...common, messages: z.array(message).max(MAX_MESSAGES).nullish(), tools: z.array(tool).nullish() });

const generateRequest = z.looseObject({
  ...common,
  prompt: z.string().nullish(),
  system: z.string().nullish(),
  images,
  // Not offered by the gateway: refused below rather than silently dropped.
  suffix: z.string().nullish(),
  template: z.string().nullish(),
  raw: z.boolean().nullish(),
  context: z.array(z.number()).nullish(),
});

/** A parsed `/api/chat` or `/api/generate` request. */
export interface OllamaGenerationRequest {
  /** The model as the client named it (echoed in every chunk). */
  model: string;
  /** Ollama streams unless told `stream: false`. */
  stream: boolean;
  /** No prompt and no messages: Ollama's "load the model" request. */
  loadOnly: boolean;
  plan: GenerationPlan;
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === undefined) throw new OllamaRequestError('missing request body');
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  throw new OllamaRequestError(path ? `invalid ${path}: ${issue.message}` : `invalid request body: ${issue.message}`);
}

function toOptions(o: z.infer<typeof options> | null | undefined): GenerationOptions | null {
  if (!o) return null;
  return {
    temperature: o.temperature,
    topP: o.top_p,
    topK: o.top_k,
    maxTokens: o.num_predict !== null && o.num_predict !== undefined && o.num_predict > 0 ? o.num_predict : undefined,
    repetitionPenalty: o.repeat_penalty,
    seed: o.seed,
    stop: typeof o.stop === 'string' ? [o.stop] : o.stop,
    numCtx: o.num_ctx,
  };
}

const toFormat = (f: z.infer<typeof format>) => (f === '' || f === null || f === undefined ? null : f);

function toImages(list: string[] | null | undefined, limits: ImageLimits, field: string): string[] | undefined {
  if (!list?.length) return undefined;
  return list.map((b, i) => imageFromBase64(b, limits.maxBytes, `${field}[${i}]`));
}

function toToolCalls(calls: z.infer<typeof toolCall>[] | null | undefined): ToolCall[] | undefined {
  if (!calls?.length) return undefined;
  return calls.map((c) => ({ id: c.id || `call_${randomUUID()}`, name: c.function.name, arguments: c.function.arguments ?? {} }));
}

function toTools(tools: z.infer<typeof tool>[] | null | undefined): ToolDefinition[] | null {
  if (!tools?.length) return null;
  return tools.map((t) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters ?? { type: 'object', properties: {} } }));
}

/** `POST /api/chat` into a stateless chat plan. */
export function parseChatRequest(body: unknown, limits: ImageLimits): OllamaGenerationRequest {
  const r = parse(chatRequest, body);
  const list = r.messages ?? [];
  checkImageCounts(list.map((m) => m.images?.length ?? 0), limits);
  const messages: GenerationMessage[] = list.map((m, i) => {
    const out: GenerationMessage = { role: m.role, content: m.content ?? '' };
    const imgs = toImages(m.images, limits, `messages[${i}].images`);
    if (imgs) out.images = imgs;
    const calls = toToolCalls(m.tool_calls);
    if (calls) out.toolCalls = calls;
    if (m.tool_name) out.toolName = m.tool_name;
    if (m.tool_call_id) out.toolCallId = m.tool_call_id;
    return out;
  });
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  return {
    model: r.model,
    stream: r.stream !== false,
    loadOnly: messages.length === 0,
    plan: {
      kind: 'chat',
      model: r.model,
      prompt: lastUser?.content ?? '',
      messages,
      options: toOptions(r.options),
      think: r.think as ThinkSetting | null | undefined,
      format: toFormat(r.format),
      tools: toTools(r.tools),
    },
  };
}

/** `POST /api/generate` into a one-shot plan. */
export function parseGenerateRequest(body: unknown, limits: ImageLimits): OllamaGenerationRequest {
  const r = parse(generateRequest, body);
  if (r.suffix) throw new OllamaRequestError('suffix (fill-in-the-middle) is not supported by this gateway');
  if (r.raw || r.template) throw new OllamaRequestError('raw mode and custom templates are not supported by this gateway');
  if (r.context?.length) throw new OllamaRequestError('context (deprecated) is not supported by this gateway; use /api/chat');
  checkImageCounts([r.images?.length ?? 0], limits);
  const imgs = toImages(r.images, limits, 'images');
  const prompt = r.prompt ?? '';
  return {
    model: r.model,
    stream: r.stream !== false,
    loadOnly: prompt === '' && !imgs,
    plan: {
      kind: 'generate',
      model: r.model,
      prompt,
      system: r.system || null,
      ...(imgs ? { images: imgs } : {}),
      options: toOptions(r.options),
      think: r.think as ThinkSetting | null | undefined,
      format: toFormat(r.format),
    },
  };
}
