// Request shapes of the Ollama API as Go declares them (api/types.go), used to reject bodies with
// the same 400/500 messages the real server produces.

import { decodeKeepAlive } from './duration.js';
import type { Exchange } from './exchange.js';
import { checkRequest, decodeGoJson, type GoType } from './gojson.js';
import { sendError } from './wire.js';

const str: GoType = { kind: 'string' };
const bool: GoType = { kind: 'bool' };
const int: GoType = { kind: 'int' };
const any: GoType = { kind: 'any' };
const images: GoType = { kind: 'slice', elem: { kind: 'bytes', goName: 'api.ImageData' }, goName: '[]api.ImageData' };
const options: GoType = { kind: 'map', goName: 'map[string]interface {}' };
const keepAlive: GoType = {
  kind: 'custom',
  check: (v) => {
    const ka = decodeKeepAlive(v);
    return ka && !ka.ok ? ka.error : undefined;
  },
};
/** api.ThinkValue.UnmarshalJSON */
const think: GoType = {
  kind: 'custom',
  check: (v) => {
    if (typeof v === 'boolean') return undefined;
    if (typeof v === 'string') {
      return ['high', 'medium', 'low', 'max'].includes(v)
        ? undefined
        : `invalid think value: ${JSON.stringify(v)} (must be "high", "medium", "low", "max", true, or false)`;
    }
    return 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)';
  },
};
const message: GoType = {
  kind: 'struct',
  goName: 'api.Message',
  fields: { role: str, content: str, thinking: str, images, tool_calls: any, tool_name: str, tool_call_id: str },
};

export interface GenerateBody {
  model?: string;
  prompt?: string;
  suffix?: string;
  system?: string;
  template?: string;
  context?: number[];
  stream?: boolean | null;
  raw?: boolean;
  format?: unknown;
  keep_alive?: unknown;
  images?: string[];
  options?: Record<string, unknown> | null;
  think?: boolean | string | null;
  top_logprobs?: number;
  shift?: boolean | null;
}
export const GENERATE_FIELDS: Record<string, GoType> = {
  model: str, prompt: str, suffix: str, system: str, template: str,
  context: { kind: 'slice', elem: int, goName: '[]int' },
  stream: bool, raw: bool, format: any, keep_alive: keepAlive, images, options, think,
  truncate: bool, shift: bool, logprobs: bool, top_logprobs: int,
};

export interface ChatMessage {
  role?: string;
  content?: string;
  images?: string[];
  tool_name?: string;
}
export interface ChatBody {
  model?: string;
  messages?: ChatMessage[] | null;
  tools?: unknown[] | null;
  format?: unknown;
  options?: Record<string, unknown> | null;
  stream?: boolean | null;
  keep_alive?: unknown;
  think?: boolean | string | null;
  top_logprobs?: number;
  shift?: boolean | null;
}
export const CHAT_FIELDS: Record<string, GoType> = {
  model: str,
  messages: { kind: 'slice', elem: message, goName: '[]api.Message' },
  tools: any, format: any, options, stream: bool, keep_alive: keepAlive, think,
  truncate: bool, shift: bool, logprobs: bool, top_logprobs: int,
};

export interface NamedBody {
  model?: string;
  name?: string;
  stream?: boolean | null;
  insecure?: boolean;
  verbose?: boolean;
}
export const PULL_FIELDS: Record<string, GoType> = { model: str, name: str, insecure: bool, stream: bool };
export const SHOW_FIELDS: Record<string, GoType> = { model: str, name: str, system: str, template: str, verbose: bool, options };
export const DELETE_FIELDS: Record<string, GoType> = { model: str, name: str };

export interface EmbedBody {
  model?: string;
  input?: unknown;
  prompt?: string;
  truncate?: boolean | null;
  dimensions?: number;
  keep_alive?: unknown;
  options?: Record<string, unknown> | null;
}
/** api.EmbedRequest (input is `any`, checked by the handler) and the deprecated api.EmbeddingRequest. */
export const EMBED_FIELDS: Record<string, GoType> = { model: str, input: any, truncate: bool, dimensions: int, keep_alive: keepAlive, options };
export const EMBEDDINGS_FIELDS: Record<string, GoType> = { model: str, prompt: str, keep_alive: keepAlive, options };

/** Decode and type-check a body; on failure the 400 is already sent and undefined is returned. */
export function decodeRequest<T>(ex: Exchange, typeName: string, fields: Record<string, GoType>): T | undefined {
  const decoded = decodeGoJson(ex.raw);
  if (!decoded.ok) {
    sendError(ex.res, 400, decoded.empty ? 'missing request body' : decoded.error);
    return undefined;
  }
  const err = checkRequest(decoded.value, typeName, fields);
  if (err) {
    sendError(ex.res, 400, err);
    return undefined;
  }
  return (decoded.value ?? {}) as T;
}

type OptionKind = 'integer' | 'float32' | 'boolean' | 'array';
const OPTION_KINDS: Record<string, OptionKind> = {
  num_ctx: 'integer', num_batch: 'integer', num_gpu: 'integer', main_gpu: 'integer', num_thread: 'integer',
  draft_num_predict: 'integer', num_keep: 'integer', seed: 'integer', num_predict: 'integer', top_k: 'integer',
  repeat_last_n: 'integer', use_mmap: 'boolean', top_p: 'float32', min_p: 'float32', typical_p: 'float32',
  temperature: 'float32', repeat_penalty: 'float32', presence_penalty: 'float32', frequency_penalty: 'float32',
  stop: 'array',
};

export interface ModelOptions {
  numPredict?: number;
  numCtx?: number;
  stop: string[];
}

/**
 * api.Options.FromMap: unknown keys are ignored, a wrong type is an error (Ollama answers it with 500).
 * Go truncates floats given for integer options.
 */
export function parseOptions(opts: Record<string, unknown> | null | undefined): ModelOptions | { error: string } {
  const out: ModelOptions = { stop: [] };
  for (const [key, val] of Object.entries(opts ?? {})) {
    const kind = OPTION_KINDS[key];
    if (!kind || val === null) continue;
    if (kind === 'integer' && typeof val !== 'number') return { error: `option "${key}" must be of type integer` };
    if (kind === 'float32' && typeof val !== 'number') return { error: `option "${key}" must be of type float32` };
    if (kind === 'boolean' && typeof val !== 'boolean') return { error: `option "${key}" must be of type boolean` };
    if (kind === 'array') {
      if (!Array.isArray(val)) return { error: `option "${key}" must be of type array` };
      if (!val.every((s) => typeof s === 'string')) return { error: `option "${key}" must be of an array of strings` };
      out.stop = val as string[];
    }
    if (key === 'num_predict') out.numPredict = Math.trunc(val as number);
    if (key === 'num_ctx') out.numCtx = Math.trunc(val as number);
  }
  return out;
}
