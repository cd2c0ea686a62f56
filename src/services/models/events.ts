/** What happened to a model. */
export type ModelEventType = 'PULLED' | 'LOADED' | 'UNLOADED' | 'DELETED';

/**
 * Why: REQUEST (an operator asked), IDLE (unused past its inactivity threshold), CHANGED
 * (changeModel swapped the default model).
 */
export type ModelEventReason = 'REQUEST' | 'IDLE' | 'CHANGED';

/** A lifecycle event; JSON-safe (ISO dates) so a distributed pub/sub can carry it. */
export interface ModelEvent {
  type: ModelEventType;
  reason: ModelEventReason;
  /** Canonical Ollama name. */
  model: string;
  /** ISO-8601 time of the event. */
  at: string;
  /** Size of the model in bytes, when known. */
  sizeBytes: number | null;
  /** URL of the Ollama host it happened on. */
  host: string;
}

/** One progress message of a pull, as relayed to subscribers; JSON-safe. */
export interface PullProgress {
  /** Canonical Ollama name. */
  model: string;
  /** URL of the Ollama host pulling it. */
  host: string;
  /** Increases by one per message of a pull, so late joiners can skip what they already saw. */
  seq: number;
  /** Ollama's status line: "pulling manifest", "pulling <digest>", "verifying sha256 digest", "success"... */
  status: string;
  digest: string | null;
  completed: number | null;
  total: number | null;
  /** completed / total of the current layer in percent (100 on success); null when there is no total. */
  percent: number | null;
  /** True on the last message (success or error). */
  done: boolean;
  /** Set on a failed pull's last message. */
  error: { code: string; message: string; details: Record<string, unknown> } | null;
}
