// Public types of the emulator (re-exported by server.ts, which is the module other code imports).

export interface EmulatedModel {
  /** Normalized 'name:tag', e.g. 'llama3.2:latest'. */
  name: string;
  /** Bytes on disk; also size_vram when loaded (fully offloaded to the "GPU"). */
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
  endedAt?: number;
  outcome: 'open' | 'completed' | 'client-closed' | 'error' | 'refused';
}

export interface EmulatorOptions {
  host?: string;
  port?: number;
  models?: EmulatedModel[];
  registry?: EmulatedModel[];
  tokenDelayMs?: number;
  pullStepDelayMs?: number;
  defaultKeepAliveSeconds?: number;
  version?: string;
}

export interface RunningModel {
  name: string;
  expiresAt: Date;
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
  running(): RunningModel[];
  waitForRequest(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  waitForOutcome(id: number, outcome: RecordedRequest['outcome'], timeoutMs?: number): Promise<RecordedRequest>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}
