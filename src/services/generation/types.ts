// The shapes of a generation as the rest of the gateway sees them: what goes in (a plan), what
// comes out (events, results) and how it ended (an outcome for the plan's hooks).
import type { SqlTx } from '../db/sql-client.js';
import type { GenerationKind, GenerationMessage, GenerationStatus, ToolCall } from '../../entities/generation.js';

export type { ToolCall };

/** Reasoning: on or off, or a level for models that take one (gpt-oss). Omitted: Ollama's default (on for thinking models). */
export type ThinkSetting = boolean | 'low' | 'medium' | 'high';

/** Structured output: any JSON, or JSON that follows a JSON Schema. */
export type OutputFormat = 'json' | Record<string, unknown>;

/** A tool the model may call (Ollama's and OpenAI's `{type: "function", function: {...}}`). */
export interface ToolDefinition {
  name: string;
  description?: string | null;
  /** A JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}
import type { GenerationOptions } from './options.js';

export interface GenerateInput {
  model: string;
  prompt: string;
  system?: string | null;
  options?: GenerationOptions | null;
  /** Structured output ("json" or a JSON Schema), checked before the model is asked. */
  format?: unknown;
  /** Base64 images, uploads and URLs (vision models). */
  images?: readonly string[] | null;
  imageUploads?: readonly (Blob | Promise<Blob>)[] | null;
  imageUrls?: readonly string[] | null;
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
  | {
      type: 'TOKEN';
      generationId: string;
      /** Answer text since the previous event ('' when this event carries only reasoning or tool calls). */
      delta: string;
      tokenCount: number;
      /** Reasoning text since the previous event; streamed before the answer. */
      thinking?: string;
      /** Tool calls completed since the previous event. */
      toolCalls?: ToolCall[];
    }
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
  /** The whole reasoning, or null when the model did not think. */
  thinking: string | null;
  toolCalls: ToolCall[];
}

/** How a generation ended, as handed to a plan's `onFinish`. */
export interface GenerationOutcome {
  generationId: string;
  status: Exclude<GenerationStatus, 'STREAMING' | 'INTERRUPTED'>;
  text: string;
  thinking: string | null;
  toolCalls: ToolCall[];
  usage: { promptTokens: number; completionTokens: number };
  errorCode: string | null;
  doneReason: string | null;
}

/**
 * Everything one generation needs, prepared by a caller (stateless generate/chat, or a session).
 * The hooks run inside the same transactions as the usage-log row (plain SQL on the SqlClient),
 * so a session's messages and the log never disagree.
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
  /** Reasoning on or off (or a level); omitted: Ollama's default. */
  think?: ThinkSetting | null;
  /** Structured output ("json" or a JSON Schema). */
  format?: OutputFormat | null;
  /** chat: tools the model may call. */
  tools?: ToolDefinition[] | null;
  sessionId?: string | null;
  onStart?(tx: SqlTx, generationId: string): Promise<void>;
  onFinish?(tx: SqlTx, outcome: GenerationOutcome): Promise<void>;
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

