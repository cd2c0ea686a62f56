import { randomUUID } from 'node:crypto';
import type { Message as OllamaMessage, Options as OllamaOptions, Tool as OllamaTool } from 'ollama';
import type { GenerationMessage, ToolCall } from '../../entities/generation.js';
import type { Logger } from '../platform/logger.js';
import type { OllamaHost, OllamaPool } from '../ollama/pool.js';
import type { GenerationPlan } from './types.js';

/** An upstream chunk of either kind (generate or chat), as far as the relay reads it. */
export interface UpstreamChunk {
  done: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  /** generate */
  response?: string;
  thinking?: string;
  /** chat */
  message?: { content?: string; thinking?: string; tool_calls?: OllamaToolCall[] };
}

/** A tool call as Ollama sends it (`id` and `function.index` on newer servers). */
interface OllamaToolCall {
  id?: string;
  function: { index?: number; name: string; arguments?: Record<string, unknown> };
}

/** The text of a chunk, the final one included (Ollama's parsers flush held-back text on it). */
export const chunkText = (c: UpstreamChunk): string => c.response ?? c.message?.content ?? '';
/** The reasoning of a chunk (thinking models stream it before the answer). */
export const chunkThinking = (c: UpstreamChunk): string => c.thinking ?? c.message?.thinking ?? '';
/** The tool calls of a chunk, each with an id (Ollama's, else one of the gateway's: tool answers refer to it). */
export const chunkToolCalls = (c: UpstreamChunk): ToolCall[] | undefined =>
  c.message?.tool_calls?.map((t) => ({ id: t.id || `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`, name: t.function.name, arguments: t.function.arguments ?? {} }));
export const isFinalChunk = (c: UpstreamChunk): boolean => c.done;

/** A stored or stated message in Ollama's shape; reasoning is never sent back, as Ollama's own chat does. */
function toOllamaMessage(m: GenerationMessage): OllamaMessage {
  return {
    role: m.role,
    content: m.content,
    ...(m.images?.length ? { images: m.images } : {}),
    ...(m.toolCalls?.length ? { tool_calls: m.toolCalls.map((c) => ({ function: { name: c.name, arguments: c.arguments } })) } : {}),
    ...(m.toolName ? { tool_name: m.toolName } : {}),
    ...(m.toolCallId ? { tool_call_id: m.toolCallId } : {}),
  } as OllamaMessage;
}

/** One request to Ollama as a generation run makes it. */
export interface UpstreamRequest {
  kind: GenerationPlan['kind'];
  /** The Ollama name (an alias already resolved). */
  model: string;
  options: Partial<OllamaOptions>;
  keepAlive: number | string;
  plan: GenerationPlan;
  /** Hosts to try, the one holding the request's slot first. */
  hosts: readonly OllamaHost[];
  /** Called before a host is asked (again on a failover); may wait for a slot there. */
  onHost(host: OllamaHost): Promise<void>;
  signal: AbortSignal;
  requestId: string;
  generationId: string;
}

/** Sends a generation to Ollama and yields its chunks; the seam a run can be tested at without Ollama. */
export type UpstreamCall = (request: UpstreamRequest) => AsyncIterable<UpstreamChunk>;

export interface FailoverSettings {
  retries: number;
  delayMs: number;
}

/** The real call: the `ollama` client on the pool's hosts, failing over before the first chunk. */
export function poolUpstream(pool: OllamaPool, failover: FailoverSettings, log: Logger): UpstreamCall {
  return (r) => {
    const policy = {
      ...failover,
      onFailover: (failed: OllamaHost, next: OllamaHost, e: { code: string }) =>
        log.warn({ requestId: r.requestId, generationId: r.generationId, model: r.model, host: failed.url, next: next.url, errorCode: e.code }, 'Ollama failed before answering; trying again'),
    };
    const { plan } = r;
    const base = {
      model: r.model,
      options: r.options,
      keep_alive: r.keepAlive,
      // Omitted think: Ollama's default (thinking models think).
      ...(plan.think !== undefined && plan.think !== null ? { think: plan.think } : {}),
      ...(plan.format ? { format: plan.format as string } : {}),
    };
    const tools: OllamaTool[] | undefined = plan.tools?.length
      ? plan.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description ?? '', parameters: t.parameters } }) as OllamaTool)
      : undefined;
    return r.kind === 'chat'
      ? pool.stream(r.hosts, (h) => h.upstream.chatStream({ ...base, messages: (plan.messages ?? []).map(toOllamaMessage), ...(tools ? { tools } : {}) }, r.signal), policy, r.signal, r.onHost)
      : pool.stream(
          r.hosts,
          (h) => h.upstream.generateStream({ ...base, prompt: plan.prompt, ...(plan.system ? { system: plan.system } : {}), ...(plan.images?.length ? { images: plan.images } : {}) }, r.signal),
          policy,
          r.signal,
          r.onHost,
        );
  };
}
