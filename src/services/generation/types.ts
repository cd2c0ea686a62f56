// The shapes of a generation as the rest of the gateway sees them: what goes in (a plan), what
// comes out (events, results) and how it ended (an outcome for the plan's hooks).
import type { EntityManager } from 'typeorm';
import type { GenerationKind, GenerationMessage, GenerationStatus } from '../../entities/generation.js';
import type { GenerationOptions } from './options.js';

export interface GenerateInput {
  model: string;
  prompt: string;
  system?: string | null;
  options?: GenerationOptions | null;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** Where a request is before its first token. */
export type GenerationPhase = 'QUEUED' | 'LOADING_MODEL' | 'GENERATING';

/** One event of a generation stream: phases, text deltas, then exactly one DONE. */
export type GenerationEvent =
  | { type: 'PHASE'; generationId: string; phase: GenerationPhase; queuePosition: number | null }
  | { type: 'TOKEN'; generationId: string; delta: string; tokenCount: number }
  | {
      type: 'DONE';
      generationId: string;
      doneReason: string;
      usage: Usage;
      creditsCharged: number;
      durationMs: number;
      /** The stored assistant message, for session chats. */
      messageId: string | null;
    };
export type DoneEvent = Extract<GenerationEvent, { type: 'DONE' }>;

/** The whole answer of a non-streaming generation. */
export interface GenerationResult extends DoneEvent {
  model: string;
  text: string;
}

/** How a generation ended, as handed to a plan's `onFinish`. */
export interface GenerationOutcome {
  generationId: string;
  status: Exclude<GenerationStatus, 'STREAMING' | 'INTERRUPTED'>;
  text: string;
  usage: { promptTokens: number; completionTokens: number };
  errorCode: string | null;
  doneReason: string | null;
}

/**
 * Everything one generation needs, prepared by a caller (stateless generate/chat, or a session).
 * The hooks run inside the same transactions as the usage-log row, so a session's messages and
 * the log never disagree.
 */
export interface GenerationPlan {
  kind: GenerationKind;
  /** Model as the client named it (a name or an alias). */
  model: string;
  /** The user's prompt (generate) or last user message (chat), for the usage log. */
  prompt: string;
  system?: string | null;
  /** chat: the whole conversation to send, system message included. */
  messages?: GenerationMessage[];
  /** generate: base64 images. */
  images?: string[];
  options?: GenerationOptions | null;
  sessionId?: string | null;
  onStart?(tx: EntityManager, generationId: string): Promise<void>;
  onFinish?(tx: EntityManager, outcome: GenerationOutcome): Promise<void>;
  /** Id of the assistant message the answer is stored in (session chats). */
  messageId?: string | null;
}

export interface RequestMeta {
  requestId: string;
  /** Aborted when the caller goes away (HTTP request closed). */
  signal?: AbortSignal;
  streamed: boolean;
  /** The client's address, set by every entry point (per-address limits). */
  clientIp?: string;
}

