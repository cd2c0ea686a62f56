// The contract of embeddings, shared by GraphQL `embed`, `/v1/embeddings` and Ollama's `/api/embed`.
import type { Principal } from '../../access/keys.js';

export interface EmbedInput {
  /** A catalog alias or an Ollama name. */
  model: string;
  /** The texts to embed (a batch). */
  input: string[];
  /** Output size, for models that support truncating their vectors. */
  dimensions?: number | null;
  /** Truncate inputs longer than the context (Ollama's default) instead of failing. */
  truncate?: boolean | null;
}

export interface EmbedResult {
  /** The usage-log row of the request (kind `embed`). */
  generationId: string;
  /** The Ollama name that answered. */
  model: string;
  embeddings: number[][];
  usage: { promptTokens: number };
  creditsCharged: number;
}

export interface EmbedMeta {
  requestId: string;
  signal?: AbortSignal;
  clientIp?: string;
}

/** Embeddings paid from the same credits, logged, rate limited and capability-checked like generations. */
export interface Embedder {
  embed(principal: Principal, input: EmbedInput, meta: EmbedMeta): Promise<EmbedResult>;
}
