import type { GatewayDatabase } from '../db/database.js';
import type { CreditLedger } from '../access/credits.js';
import type { ConcurrencyGate } from '../access/limits/concurrency-gate.js';
import type { Logger } from '../platform/logger.js';
import type { OllamaPool } from '../ollama/pool.js';
import type { ActiveStreams } from './active-streams.js';
import type { Capability } from './capabilities.js';
import type { GenerationObserver, ModelDirectory, RequestAdmission } from './hooks.js';
import type { OllamaSlots } from '../ollama/slots.js';
import type { PartialFlusher } from './partial-flusher.js';
import type { UpstreamCall } from './upstream-call.js';

/** What every run shares; owned by the GenerationService. */
export interface RunContext {
  db: GatewayDatabase;
  pool: OllamaPool;
  instanceId?: string;
  credits: CreditLedger;
  active: ActiveStreams;
  log: Logger;
  requestCost: number;
  defaultMaxTokens: number;
  maxPromptChars: number;
  defaultKeepAlive: number | string;
  models: ModelDirectory;
  admission: RequestAdmission;
  slots: OllamaSlots;
  partials?: PartialFlusher;
  /** Generations at once per client address. */
  gate?: ConcurrencyGate;
  observer?: GenerationObserver;
  /** Sends the request to Ollama (failing over between hosts before the first chunk). */
  upstream: UpstreamCall;
  /** The gateway's default system prompt (a setting), for requests that bring none. */
  defaultSystemPrompt?: () => Promise<string | null>;
  /** Refuses a model that lacks one of `needed` (vision, thinking, tools) with CAPABILITY_MISSING. */
  requireCapabilities(name: string, known: string[] | null | undefined, needed: readonly Capability[]): Promise<void>;
}

/** Most text one TOKEN event carries; past it the relay stops reading ahead until the client took it. */
export const MAX_EVENT_CHARS = 16_384;
export const MAX_EVENT_TOKENS = 4096;
/**
 * While the event loop is busy: the shortest interval between two TOKEN events of one stream.
 * 20 updates a second still reads as smooth, and at 10 ms a token it is a fifth of the events
 * (measured at 100 paced streams: gateway CPU 89–90 % at 20 ms, 77–81 % at 50 ms).
 */
export const BUSY_EVENT_INTERVAL_MS = 50;
/** keep_alive when no inactivity threshold applies and none is configured: Ollama's own default. */
export const DEFAULT_KEEP_ALIVE = '5m';

