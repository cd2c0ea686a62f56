import { z } from 'zod';
import type { ChatInput, ChatMessageInput } from '../../services/chat-service.js';
import { OPTION_LIMITS, type GenerationOptions } from '../../services/generation/options.js';
import { fetchImage } from '../../services/images/fetch-image.js';
import { imageFromBase64 } from '../../services/images/image-bytes.js';
import { type ImageLimits, checkImageCounts } from '../../services/images/resolve-images.js';
import { OpenAIRequestError } from './errors.js';

const L = OPTION_LIMITS;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.union([z.string(), z.object({ url: z.string(), detail: z.string().optional() })]),
});
const part = z.discriminatedUnion('type', [textPart, imagePart]);

const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(part), z.null()]).optional(),
  name: z.string().optional(),
});

const request = z.looseObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  temperature: z.number().min(L.temperature.min).max(L.temperature.max).nullish(),
  top_p: z.number().min(L.topP.min).max(L.topP.max).nullish(),
  max_tokens: z.number().int().min(L.maxTokens.min).max(L.maxTokens.max).nullish(),
  max_completion_tokens: z.number().int().min(L.maxTokens.min).max(L.maxTokens.max).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string().min(1).max(L.stop.maxLength), z.array(z.string().min(1).max(L.stop.maxLength)).max(L.stop.maxItems)]).nullish(),
  // Accepted for compatibility and not applied (see README): Ollama's current engine ignores them.
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  n: z.number().int().min(1).max(1).nullish(),
  logprobs: z.literal(false).nullish(),
  response_format: z.looseObject({ type: z.literal('text') }).nullish(),
});

/** Fields the gateway cannot honour; refusing them beats silently answering something else. */
const UNSUPPORTED = ['tools', 'tool_choice', 'functions', 'function_call', 'audio', 'prediction', 'top_logprobs'] as const;

/** OpenAI-style parameter path for an issue: `messages[0].content[1].image_url`. */
function paramOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : out ? `${out}.${String(p)}` : String(p)), '');
}

export interface ChatCompletionRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  input: ChatInput;
  /** Images in the request (counted and within the limits); none is decoded or fetched yet. */
  imageCount: number;
  /** Decodes data URLs and downloads http(s) ones into `input.messages`; call once limits and credits were checked. */
  loadImages(): Promise<void>;
}

/**
 * Validates a `POST /v1/chat/completions` body and turns it into a stateless chat for the chat
 * service: `developer` messages become `system`, text parts are joined, image parts are counted
 * against the per-message and per-request limits; `loadImages` later turns them into base64 (data
 * URLs decoded, http(s) URLs fetched through the SSRF-guarded image fetch). Throws
 * OpenAIRequestError (400) naming the offending parameter.
 */
export function parseChatCompletionRequest(body: unknown, limits: ImageLimits): ChatCompletionRequest {
  if (body && typeof body === 'object') {
    for (const field of UNSUPPORTED) {
      const value = (body as Record<string, unknown>)[field];
      if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0)) {
        throw new OpenAIRequestError(`${field} is not supported by this gateway.`, field);
      }
    }
  }
  const parsed = request.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = paramOf(issue.path);
    throw new OpenAIRequestError(param ? `Invalid ${param}: ${issue.message}` : `Invalid request body: ${issue.message}`, param || null);
  }
  const r = parsed.data;
  const messages: ChatMessageInput[] = [];
  const pending: Array<{ message: number; param: string; url: string }> = [];
  const perMessage: number[] = [];
  for (const [i, m] of r.messages.entries()) {
    const role = m.role === 'developer' ? 'system' : m.role;
    if (typeof m.content === 'string' || m.content === null || m.content === undefined) {
      messages.push({ role, content: m.content ?? '' });
      continue;
    }
    const texts: string[] = [];
    let images = 0;
    for (const [j, p] of m.content.entries()) {
      if (p.type === 'text') {
        texts.push(p.text);
        continue;
      }
      const param = `messages[${i}].content[${j}].image_url`;
      if (role !== 'user') throw new OpenAIRequestError('Images are accepted in user messages only.', param);
      if (images >= limits.maxImages) throw new OpenAIRequestError(`At most ${limits.maxImages} images per message.`, param);
      images++;
      pending.push({ message: messages.length, param, url: typeof p.image_url === 'string' ? p.image_url : p.image_url.url });
    }
    perMessage.push(images);
    messages.push({ role, content: texts.join('\n') });
  }
  try {
    checkImageCounts(perMessage, limits);
  } catch (e) {
    throw new OpenAIRequestError((e as Error).message, 'messages');
  }
  const loadImages = async () => {
    const loaded = new Map<number, string[]>();
    for (const { message, param, url } of pending) {
      const b64 = url.startsWith('data:') ? imageFromBase64(url, limits.maxBytes, param) : await fetchImage(url, limits, param);
      loaded.set(message, [...(loaded.get(message) ?? []), b64]);
    }
    for (const [i, images] of loaded) messages[i] = { ...messages[i], images };
  };

  const options: GenerationOptions = {
    temperature: r.temperature,
    topP: r.top_p,
    maxTokens: r.max_completion_tokens ?? r.max_tokens,
    seed: r.seed,
    stop: typeof r.stop === 'string' ? [r.stop] : r.stop,
  };
  return {
    model: r.model,
    stream: r.stream === true,
    includeUsage: r.stream_options?.include_usage === true,
    input: { model: r.model, messages, options },
    imageCount: pending.length,
    loadImages,
  };
}
