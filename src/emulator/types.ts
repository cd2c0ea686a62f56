// Public types of the emulator (re-exported by server.ts, which is the module other code imports).

export interface EmulatedModel {
  /** Normalized 'name:tag', e.g. 'llama3.2:latest'. */
  name: string;
  /** Bytes on disk, also the memory it needs when loaded (size in /api/ps; size_vram is what fits on the GPU). */
  size: number;
  /** 64 hex chars without "sha256:"; derived deterministically from the name when absent. */
  digest?: string;
  family: string;
  parameterSize: string;
  quantizationLevel: string;
  /** e.g. ['completion','tools'] or ['completion','vision']. */
  capabilities: string[];
  /** Training context length: model_info "<arch>.context_length" and the cap for options.num_ctx. */
  contextLength: number;
  /** Scripted reply text; by default it derives deterministically from the model name and the prompt. */
  reply?: string;
  /**
   * A built-in output parser (harmony, tool/thinking parsers) that holds back this many trailing content
   * tokens and flushes them on the `done: true` chunk, together with the metrics (routes.go: the parser's
   * `Add(content, done)` result goes on the response that has Done).
   */
  flushOnDone?: number;
  /** The model talks this many tokens of deterministic filler, then stops ("stop") unless cut first. */
  replyTokens?: number;
  /** Never stops by itself: only num_predict or the runner's open-ended budget end it ("length"). */
  endless?: boolean;
  /** Vector length for /api/embed (model_info "<arch>.embedding_length"); default 3072. */
  embeddingLength?: number;
}

export type Fault =
  | { kind: 'refuse' }
  | { kind: 'status'; status: number; error?: string }
  | { kind: 'errorAfter'; tokens: number; error?: string }
  | { kind: 'stall'; afterTokens: number }
  | { kind: 'truncate'; afterTokens: number };

/** `times`: apply to the next N matching requests, then drop the rule; omitted = until cleared. */
export interface FaultRule {
  fault: Fault;
  model?: string;
  path?: string;
  times?: number;
}

export interface RecordedRequest {
  id: number;
  method: string;
  path: string;
  /** Parsed JSON body, or undefined when there was none or it did not parse. */
  body: unknown;
  receivedAt: number;
  /** When the scheduler gave it a runner and a generation slot (queued requests have none yet). */
  scheduledAt?: number;
  endedAt?: number;
  outcome: 'open' | 'completed' | 'client-closed' | 'error' | 'refused';
}

/** Settings that can change while the emulator runs (Ollama's env defaults unless noted). */
export interface EmulatorConfig {
  /** OLLAMA_NUM_PARALLEL: requests generating at once per loaded model (default 1). */
  numParallel?: number;
  /** OLLAMA_MAX_QUEUE: requests that may wait to be scheduled before 503 (default 512). */
  maxQueue?: number;
  /** Emulated GPU memory (default 24 GiB, one GPU); 0 = CPU only. */
  vramBytes?: number;
  /** OLLAMA_MAX_LOADED_MODELS (default 3: 3 per GPU). */
  maxLoadedModels?: number;
  /** OLLAMA_KEEP_ALIVE in seconds, for loads without keep_alive (default 300). */
  defaultKeepAliveSeconds?: number;
  /** Delay before each token (emulator only; default 0). */
  tokenDelayMs?: number;
  /**
   * Silence after a pull's "verifying sha256 digest" (real Ollama hashes the whole download there,
   * minutes for large models, sending nothing); default: the pull step delay.
   */
  pullVerifyMs?: number;
}

export interface EmulatorOptions extends EmulatorConfig {
  host?: string;
  port?: number;
  models?: EmulatedModel[];
  registry?: EmulatedModel[];
  pullStepDelayMs?: number;
  version?: string;
}

export interface RunningModel {
  name: string;
  expiresAt: Date;
  /** Memory the model takes. */
  size: number;
  /** The part of `size` on the GPU; the rest runs on the CPU. */
  sizeVram: number;
  contextLength: number;
}

export interface Emulator {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  setTokenDelay(ms: number): void;
  /** Change scheduling settings at run time; returns the settings now in force. */
  configure(config: EmulatorConfig): Required<EmulatorConfig>;
  running(): RunningModel[];
  /** Requests waiting to be scheduled or for a generation slot (for one model, as sent or normalized). */
  queued(model?: string): number;
  waitForRequest(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  waitForOutcome(id: number, outcome: RecordedRequest['outcome'], timeoutMs?: number): Promise<RecordedRequest>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}
