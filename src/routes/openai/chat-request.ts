import { z } from 'zod';
import type { ChatInput, ChatMessageInput } from '../../services/generation/chat-service.js';
import { OPTION_LIMITS, type GenerationOptions, type ThinkOption } from '../../services/generation/options.js';
import type { OutputFormat } from '../../services/generation/types.js';
import { fetchImage } from '../../services/images/fetch-image.js';
import { imageFromBase64 } from '../../services/images/image-bytes.js';
import { type ImageLimits, checkImageCounts } from '../../services/images/resolve-images.js';
import { OpenAIRequestError } from './errors.js';
import { historyToolCallSchema, parseHistoryCall, toolChoiceSchema, toolsFor, toolsSchema } from './tool-calls.js';

const L = OPTION_LIMITS;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.union([z.string(), z.object({ url: z.string(), detail: z.string().optional() })]),
});
const part = z.discriminatedUnion('type', [textPart, imagePart]);

const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(part), z.null()]).optional(),
  name: z.string().optional(),
  /** assistant: calls it made earlier, `arguments` as JSON strings. */
  tool_calls: z.array(historyToolCallSchema).nullish(),
  /** tool: the call this message answers. */
  tool_call_id: z.string().min(1).nullish(),
});

const responseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: z.string().min(1).max(64),
      description: z.string().nullish(),
      schema: z.record(z.string(), z.unknown()),
      // Accepted; Ollama constrains the output to the schema either way.
      strict: z.boolean().nullish(),
    }),
  }),
]);

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
  // Accepted for compatibility and not applied (see docs/api.md): Ollama's current engine ignores them.
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  n: z.number().int().min(1).max(1).nullish(),
  logprobs: z.literal(false).nullish(),
  response_format: responseFormat.nullish(),
  tools: toolsSchema.nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  // Ollama may answer with several calls; it has no switch to stop that, and true is OpenAI's default.
  parallel_tool_calls: z.boolean().nullish(),
  reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high']).nullish(),
});

/** OpenAI's `reasoning_effort` as the `think` option: `none`/`minimal` turn reasoning off; omitted keeps Ollama's default. */
function thinkFor(effort: z.infer<typeof request>['reasoning_effort']): ThinkOption | undefined {
  if (effort === undefined || effort === null) return undefined;
  return effort === 'none' || effort === 'minimal' ? 'off' : effort;
}

/** `response_format` as Ollama's `format`: `json_object` is "json", `json_schema` its schema, `text` none. */
function formatFor(rf: z.infer<typeof responseFormat> | null | undefined): OutputFormat | undefined {
  if (!rf || rf.type === 'text') return undefined;
  return rf.type === 'json_object' ? 'json' : rf.json_schema.schema;
}

/** Fields the gateway cannot honour; refusing them beats silently answering something else. */
const UNSUPPORTED = ['functions', 'function_call', 'audio', 'prediction', 'top_logprobs'] as const;

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
 * URLs decoded, http(s) URLs fetched through the SSRF-guarded image fetch). Assistant `tool_calls`
 * get their arguments parsed, `tool` messages the name of the call they answer. Throws
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
  const callNames = new Map<string, string>();
  for (const [i, m] of r.messages.entries()) {
    const role = m.role === 'developer' ? 'system' : m.role;
    const tools = toolFields(m, i, callNames);
    if (typeof m.content === 'string' || m.content === null || m.content === undefined) {
      messages.push({ role, content: m.content ?? '', ...tools });
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
    messages.push({ role, content: texts.join('\n'), ...tools });
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
    think: thinkFor(r.reasoning_effort),
  };
  return {
    model: r.model,
    stream: r.stream === true,
    includeUsage: r.stream_options?.include_usage === true,
    input: {
      model: r.model,
      messages,
      options,
      format: formatFor(r.response_format),
      tools: toolsFor(r.tools, r.tool_choice),
    },
    imageCount: pending.length,
    loadImages,
  };
}

/**
 * The tool fields of one history message: an assistant's calls (arguments parsed, ids remembered)
 * or a tool's answer, named after the earlier call it answers (Ollama's `tool_name`).
 */
function toolFields(m: z.infer<typeof message>, i: number, callNames: Map<string, string>): Pick<ChatMessageInput, 'toolCalls' | 'toolName' | 'toolCallId'> {
  if (m.tool_calls?.length) {
    if (m.role !== 'assistant') throw new OpenAIRequestError('Only assistant messages carry tool_calls.', `messages[${i}].tool_calls`);
    const toolCalls = m.tool_calls.map((c, j) => parseHistoryCall(c, `messages[${i}].tool_calls[${j}]`));
    for (const c of toolCalls) callNames.set(c.id, c.name);
    return { toolCalls };
  }
  if (m.role !== 'tool') return {};
  const param = `messages[${i}].tool_call_id`;
  if (!m.tool_call_id) throw new OpenAIRequestError('A tool message needs the tool_call_id of the call it answers.', param);
  const toolName = callNames.get(m.tool_call_id);
  if (!toolName) throw new OpenAIRequestError(`No earlier assistant message has a tool call with id ${JSON.stringify(m.tool_call_id)}.`, param);
  return { toolName, toolCallId: m.tool_call_id };
}
