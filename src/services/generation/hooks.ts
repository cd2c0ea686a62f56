import type { ModelPricing } from '../access/credits.js';
import type { Principal } from '../access/keys.js';

/** What the generation path needs to know about a requested model. */
export interface ResolvedModel {
  /** The Ollama name sent upstream (an alias resolved to its model). */
  name: string;
  pricing: ModelPricing;
  /** keep_alive to send with the request (the inactivity threshold), if any. */
  keepAlive?: number | string;
  /** Capabilities from /api/show, when known (e.g. "vision"). */
  capabilities?: string[] | null;
  /** The catalog entry's system prompt, for requests and sessions that bring none. */
  systemPrompt?: string | null;
}

/**
 * The model catalogue as seen by generation: alias resolution, prices and keep_alive, and
 * busy-tracking so the idle reaper never unloads a model in the middle of a stream.
 */
export interface ModelDirectory {
  /** Resolves a requested name or alias; may throw MODEL_NOT_FOUND (e.g. a disabled entry). */
  resolve(requested: string): Promise<ResolvedModel>;
  /** Marks the model busy on an Ollama host (its URL) until the returned function is called. */
  markBusy(model: string, host: string): () => void;
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
  /** Throws what `admit` would throw now, counting nothing (a check before costly work). */
  check?(principal: Principal): Promise<void>;
}

export const admitEverything: RequestAdmission = {
  admit: async () => () => {},
};

/** How a generation ended, as reported to an observer. */
export interface GenerationEnd {
  status: 'COMPLETE' | 'CANCELLED' | 'ERROR';
  errorCode: string | null;
  creditsCharged: number;
  completionTokens: number;
}

/** Follows one generation (metrics, the live view); every call must be cheap, `tokens()` runs once per TOKEN event. */
export interface GenerationProbe {
  /** Where the request is before its first token: QUEUED with its position, LOADING_MODEL, GENERATING. */
  phase?(phase: 'QUEUED' | 'LOADING_MODEL' | 'GENERATING', queuePosition: number | null): void;
  /** Ollama's first chunk arrived, `ms` after the request was sent to it. */
  upstreamAnswered(ms: number): void;
  /** The first token, `ms` after the gateway accepted the request (queue and model load included). */
  firstToken(ms: number): void;
  /** `count` more tokens were sent to the client. */
  tokens(count: number): void;
  end(outcome: GenerationEnd): void;
}

/** Who runs a generation, for observers that show it (the admin console's live view). */
export interface GenerationStart {
  generationId: string;
  principal: Principal;
  /** The model as the client named it (a name or an alias). */
  requested: string;
  kind: string;
  streamed: boolean;
}

/** Watches generations from the moment credits are reserved (Prometheus metrics, the live view). */
export interface GenerationObserver {
  /** `model` is the Ollama name the request goes to. */
  begin(model: string, run: GenerationStart): GenerationProbe;
}

/** Several observers as one: each probe call goes to each of them. */
export function observeAll(...observers: GenerationObserver[]): GenerationObserver {
  return {
    begin(model, run) {
      const probes = observers.map((o) => o.begin(model, run));
      return {
        phase: (phase, position) => {
          for (const p of probes) p.phase?.(phase, position);
        },
        upstreamAnswered: (ms) => {
          for (const p of probes) p.upstreamAnswered(ms);
        },
        firstToken: (ms) => {
          for (const p of probes) p.firstToken(ms);
        },
        tokens: (count) => {
          for (const p of probes) p.tokens(count);
        },
        end: (outcome) => {
          for (const p of probes) p.end(outcome);
        },
      };
    },
  };
}
