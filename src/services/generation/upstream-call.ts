import type { Message as OllamaMessage, Options as OllamaOptions } from 'ollama';
import type { Logger } from '../logger.js';
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
  /** chat */
  message?: { content?: string };
}

/** The text of a chunk, the final one included (Ollama's parsers flush held-back text on it). */
export const chunkText = (c: UpstreamChunk): string => c.response ?? c.message?.content ?? '';
export const isFinalChunk = (c: UpstreamChunk): boolean => c.done;

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
    const base = { model: r.model, options: r.options, keep_alive: r.keepAlive };
    const { plan } = r;
    return r.kind === 'chat'
      ? pool.stream(r.hosts, (h) => h.upstream.chatStream({ ...base, messages: (plan.messages ?? []) as OllamaMessage[] }, r.signal), policy, r.signal, r.onHost)
      : pool.stream(
          r.hosts,
          (h) => h.upstream.generateStream({ ...base, prompt: plan.prompt, ...(plan.system ? { system: plan.system } : {}), ...(plan.images?.length ? { images: plan.images } : {}) }, r.signal),
          policy,
          r.signal,
          r.onHost,
        );
  };
}
