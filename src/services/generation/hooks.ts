import type { ModelPricing } from '../credits.js';
import type { Principal } from '../keys.js';

/** What the generation path needs to know about a requested model. */
export interface ResolvedModel {
  /** The Ollama name sent upstream (an alias resolved to its model). */
  name: string;
  pricing: ModelPricing;
  /** keep_alive to send with the request (the inactivity threshold), if any. */
  keepAlive?: number | string;
  /** Capabilities from /api/show, when known (e.g. "vision"). */
  capabilities?: string[] | null;
}

/**
 * The model catalogue as seen by generation: alias resolution, prices and keep_alive, and
 * busy-tracking so the idle reaper never unloads a model in the middle of a stream.
 */
export interface ModelDirectory {
  /** Resolves a requested name or alias; may throw MODEL_NOT_FOUND (e.g. a disabled entry). */
  resolve(requested: string): Promise<ResolvedModel>;
  /** Marks the model busy until the returned function is called. */
  markBusy(model: string): () => void;
}

/** Without a catalogue: names pass through unchanged, no prices, Ollama's own keep_alive. */
export const passThroughModels: ModelDirectory = {
  resolve: async (requested) => ({ name: requested, pricing: {} }),
  markBusy: () => () => {},
};

/** Called when a request ends, with the tokens it used (for tokens-per-minute limits). */
export type AdmissionRelease = (usage: { totalTokens: number }) => void;

/** Per-key rate limits: decides whether a request may start. */
export interface RequestAdmission {
  /** Throws RATE_LIMITED (with retryAfterSeconds) when the key is over a limit. */
  admit(principal: Principal, request: { streamed: boolean }): Promise<AdmissionRelease>;
}

export const admitEverything: RequestAdmission = {
  admit: async () => () => {},
};
