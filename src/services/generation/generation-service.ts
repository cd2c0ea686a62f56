import type { GatewayDatabase } from '../db/database.js';
import type { CreditLedger } from '../access/credits.js';
import { ErrorCode, GatewayError } from '../platform/errors.js';
import type { Principal } from '../access/keys.js';
import type { Logger } from '../platform/logger.js';
import type { OllamaPool } from '../ollama/pool.js';
import type { ActiveStreams } from './active-streams.js';
import { CapabilityCheck, type CapabilityLookup, showOnPool } from './capabilities.js';
import { type StreamFailure, eventStream } from './event-stream.js';
import { GenerationRun } from './generation-run.js';
import { DEFAULT_KEEP_ALIVE, type RunContext } from './run-context.js';
import { type GenerationObserver, type ModelDirectory, type RequestAdmission, admitEverything, passThroughModels } from './hooks.js';
import { LocalOllamaSlots, type OllamaSlots } from '../ollama/slots.js';
import type { PartialFlusher } from './partial-flusher.js';
import type { ConcurrencyGate } from '../access/limits/concurrency-gate.js';
import { logRefused } from './refusals.js';
import type { ImageLimits } from '../images/resolve-images.js';
import { checkImageCounts, resolveImages } from '../images/resolve-images.js';
import type { GenerateInput, GenerationEvent, GenerationPlan, GenerationResult, OutputFormat, RequestMeta, ToolCall } from './types.js';
import { type UpstreamCall, poolUpstream } from './upstream-call.js';

export interface GenerationServiceDeps {
  db: GatewayDatabase;
  /** The Ollama hosts; each request goes to the best one for its model and fails over before its first chunk. */
  pool: OllamaPool;
  /** This gateway process (owner of its STREAMING rows, for crash recovery with several instances). */
  instanceId?: string;
  credits: CreditLedger;
  active: ActiveStreams;
  log: Logger;
  requestCost: number;
  defaultMaxTokens: number;
  maxPromptChars?: number;
  models?: ModelDirectory;
  admission?: RequestAdmission;
  /** Ollama's capacity per (host, model): a request is sent only with a slot; the others wait in the gateway's queue. */
  slots?: OllamaSlots;
  /** keep_alive sent when neither the model nor the gateway sets an inactivity threshold (Ollama's own default is 5m). */
  defaultKeepAlive?: number | string;
  /** Generations at once per client address (every route passes here). */
  gate?: ConcurrencyGate;
  /** Saves partial answers periodically so a crash loses at most one interval of text. */
  partials?: PartialFlusher;
  /** Follows each generation (Prometheus metrics). */
  observer?: GenerationObserver;
  /** Further rounds over the hosts when Ollama cannot be reached before it sent anything (never after: no double answer or charge). */
  upstreamRetryRounds?: number;
  upstreamRetryDelayMs?: number;
  /** Capabilities of a model the catalogue does not know yet (the fleet's cached /api/show); `/api/show` on the pool when absent. */
  capabilities?: CapabilityLookup;
  /** The gateway's default system prompt, for requests that bring none and whose model has none. */
  defaultSystemPrompt?: () => Promise<string | null>;
  /** Limits of images a generate request brings (URLs are fetched when the plan is prepared). */
  images?: ImageLimits;
  /** How requests reach Ollama; the pool by default (tests of the run itself may give another source). */
  upstream?: UpstreamCall;
}

const MAX_PROMPT_CHARS = 1_000_000;

/** Generation events; failures are thrown. */
export type GenerationStream = AsyncIterableIterator<GenerationEvent>;
/** Generation events with a failure as the last item (GraphQL subscriptions rethrow it in `resolve`). */
export type GenerationItems = AsyncIterableIterator<GenerationEvent | StreamFailure>;

/**
 * Runs generations against Ollama (each one a GenerationRun: admit, reserve, queue, relay, settle)
 * and hands them out through the one stream adapter that owns cancellation.
 */
export class GenerationService {
  private readonly ctx: RunContext;

  constructor(private readonly deps: GenerationServiceDeps) {
    const capabilities = new CapabilityCheck(deps.capabilities ?? showOnPool(deps.pool));
    this.ctx = {
      db: deps.db,
      pool: deps.pool,
      instanceId: deps.instanceId,
      credits: deps.credits,
      active: deps.active,
      log: deps.log,
      requestCost: deps.requestCost,
      defaultMaxTokens: deps.defaultMaxTokens,
      maxPromptChars: deps.maxPromptChars ?? MAX_PROMPT_CHARS,
      defaultKeepAlive: deps.defaultKeepAlive ?? DEFAULT_KEEP_ALIVE,
      models: deps.models ?? passThroughModels,
      admission: deps.admission ?? admitEverything,
      slots: deps.slots ?? new LocalOllamaSlots(() => 1),
      partials: deps.partials,
      gate: deps.gate,
      defaultSystemPrompt: deps.defaultSystemPrompt,
      observer: deps.observer,
      upstream: deps.upstream ?? poolUpstream(deps.pool, { retries: deps.upstreamRetryRounds ?? 0, delayMs: deps.upstreamRetryDelayMs ?? 250 }, deps.log),
      requireCapabilities: (name, known, needed) => capabilities.require(name, known, needed),
    };
  }

  /**
   * Before costly work for a request (downloading its images): throws what admission would
   * throw now (per-address and per-key limits, a key without credits for the cheapest request),
   * counting nothing. A refusal leaves one ERROR row like any refused request.
   */
  async precheck(principal: Principal, plan: Pick<GenerationPlan, 'kind' | 'model' | 'prompt' | 'sessionId'>, meta: RequestMeta): Promise<void> {
    try {
      this.deps.gate?.check(meta.clientIp);
      await this.ctx.admission.check?.(principal);
      await this.deps.credits.requireAtLeast(this.deps.db.sqlClient, principal.id, Math.max(1, this.deps.requestCost));
    } catch (e) {
      if (e instanceof GatewayError) await logRefused(this.deps, principal, plan, plan.model, meta, e);
      throw e;
    }
  }

  /** Cancels a running generation of the caller's key; NOT_FOUND when none is running under that id. */
  async cancel(principal: Principal, generationId: string): Promise<boolean> {
    if (this.deps.active.ownerOf(generationId) !== principal.id) {
      throw new GatewayError(ErrorCode.NOT_FOUND, 'No running generation with this id for this key.', { id: generationId });
    }
    return this.deps.active.cancel(generationId);
  }

  /** Streams a one-shot prompt (`/api/generate`). */
  generate(principal: Principal, input: GenerateInput, meta: RequestMeta): GenerationStream;
  generate(principal: Principal, input: GenerateInput, meta: RequestMeta, opts: { failuresAsItems: true }): GenerationItems;
  generate(principal: Principal, input: GenerateInput, meta: RequestMeta, opts?: { failuresAsItems: true }): GenerationItems {
    const plan = () => this.generatePlanOf(principal, input, meta);
    return opts ? this.stream(principal, plan, meta, opts) : this.stream(principal, plan, meta);
  }

  /** Runs a one-shot prompt to the end and returns the whole text. */
  generateText(principal: Principal, input: GenerateInput, meta: Omit<RequestMeta, 'streamed'>): Promise<GenerationResult> {
    return this.complete(principal, () => this.generatePlanOf(principal, input, { ...meta, streamed: false }), meta);
  }

  /** A generate request's plan; its images are counted, and the key checked, before any download. */
  private async generatePlanOf(principal: Principal, input: GenerateInput, meta: RequestMeta): Promise<GenerationPlan> {
    const sources = { images: input.images, uploads: input.imageUploads, urls: input.imageUrls };
    const count = (sources.images?.length ?? 0) + (sources.uploads?.length ?? 0) + (sources.urls?.length ?? 0);
    if (count === 0) return generatePlan(input);
    if (!this.deps.images) throw new GatewayError(ErrorCode.BAD_USER_INPUT, 'This gateway takes no images.', { field: 'images' });
    checkImageCounts([count], this.deps.images);
    await this.precheck(principal, { kind: 'generate', model: input.model, prompt: input.prompt }, meta);
    return generatePlan(input, await resolveImages(sources, this.deps.images));
  }

  /** Runs a plan to the end and returns the whole text. */
  async complete(principal: Principal, plan: () => Promise<GenerationPlan>, meta: Omit<RequestMeta, 'streamed'>): Promise<GenerationResult> {
    let text = '';
    let model = '';
    const prepared = async () => {
      const p = await plan();
      model = p.model;
      return p;
    };
    let thinking = '';
    const toolCalls: ToolCall[] = [];
    for await (const e of this.stream(principal, prepared, { ...meta, streamed: false })) {
      if (e.type === 'TOKEN') {
        text += e.delta;
        if (e.thinking) thinking += e.thinking;
        if (e.toolCalls) toolCalls.push(...e.toolCalls);
      } else if (e.type === 'DONE') return { ...e, model, text, thinking: thinking || null, toolCalls };
    }
    // Only reachable when the caller's signal aborted the run.
    throw new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.');
  }

  /**
   * Streams one generation whose plan is prepared on the first pull (images, a session turn), so
   * that preparing can already be cancelled. Ending the iterator (client completed or went away)
   * aborts the upstream request at once, even while waiting on Ollama.
   */
  stream(principal: Principal, plan: () => Promise<GenerationPlan>, meta: RequestMeta): GenerationStream;
  stream(principal: Principal, plan: () => Promise<GenerationPlan>, meta: RequestMeta, opts: { failuresAsItems: true }): GenerationItems;
  stream(principal: Principal, plan: () => Promise<GenerationPlan>, meta: RequestMeta, opts: { failuresAsItems?: boolean } = {}): GenerationItems {
    return eventStream<GenerationEvent>(async (_signal, controller) => new GenerationRun(this.ctx, principal, await plan(), meta, controller).events(), {
      signal: meta.signal,
      failuresAsItems: opts.failuresAsItems === true,
      // After a phase event the run goes on at once (to the upstream request) while the consumer
      // is still sending that event to its client.
      prefetchAfter: (e) => e.type === 'PHASE',
      // Once DONE was handed over the generation is complete: closing the stream aborts nothing.
      isFinal: (e) => e.type === 'DONE',
    });
  }
}

const generatePlan = (input: GenerateInput, images: string[] = []): GenerationPlan => ({
  kind: 'generate',
  model: input.model,
  prompt: input.prompt,
  system: input.system,
  options: input.options,
  ...(input.format !== undefined && input.format !== null ? { format: input.format as OutputFormat } : {}),
  ...(images.length ? { images } : {}),
});
