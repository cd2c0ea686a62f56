import { randomUUID } from 'node:crypto';
import type { Message as OllamaMessage, Options as OllamaOptions } from 'ollama';
import type { DataSource, EntityManager } from 'typeorm';
import { Generation, type GenerationKind, type GenerationMessage, type GenerationStatus } from '../../entities/generation.js';
import { costOf, type CreditLedger } from '../credits.js';
import { RowWriter, inTransaction } from '../database.js';
import { modelKey } from '../models/names.js';
import { ErrorCode, GatewayError, badInput } from '../errors.js';
import type { Principal } from '../keys.js';
import type { Logger } from '../logger.js';
import { upstreamText } from '../ollama/errors.js';
import type { OllamaHost, OllamaPool } from '../ollama/pool.js';
import type { ConcurrencyGate } from '../limits/concurrency-gate.js';
import type { ActiveStreams } from './active-streams.js';
import { type GenerationObserver, type ModelDirectory, type RequestAdmission, admitEverything, passThroughModels } from './hooks.js';
import { ModelSlots } from './model-slots.js';
import { type GenerationOptions, toOllamaOptions } from './options.js';
import type { PartialFlusher } from './partial-flusher.js';
import { eventLoopLoad } from './load.js';
import { ReadAhead, nextTurn } from './read-ahead.js';
import { logRefused } from './refusals.js';

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

export interface GenerationServiceDeps {
  db: DataSource;
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
  /** Per-model cap on concurrent generations (requests over it wait in a queue). */
  slots?: ModelSlots;
  /** Generations at once per client address (every route passes here). */
  gate?: ConcurrencyGate;
  /** Saves partial answers periodically so a crash loses at most one interval of text. */
  partials?: PartialFlusher;
  /** Follows each generation (Prometheus metrics). */
  observer?: GenerationObserver;
  /** Retries when Ollama cannot be reached before it sent anything (never after: no double answer or charge). */
  upstreamRetries?: number;
  upstreamRetryDelayMs?: number;
}

export interface RequestMeta {
  requestId: string;
  /** Aborted when the caller goes away (HTTP request closed). */
  signal?: AbortSignal;
  streamed: boolean;
  /** The client's address, set by every entry point (per-address limits). */
  clientIp?: string;
}

const MAX_PROMPT_CHARS = 1_000_000;
/** After an abort, how long a consumer that stopped pulling (a client not reading) gets before the run is closed for it. */
const PARKED_AFTER_ABORT_MS = 1000;
const CAPABILITY_TTL_MS = 60_000;
/** Most text one TOKEN event carries; past it the relay stops reading ahead until the client took it. */
const MAX_EVENT_CHARS = 16_384;
const MAX_EVENT_TOKENS = 4096;
/**
 * While the event loop is busy: the shortest interval between two TOKEN events of one stream.
 * 20 updates a second still reads as smooth, and at 10 ms a token it is a fifth of the events
 * (measured at 100 paced streams: gateway CPU 89–90 % at 20 ms, 77–81 % at 50 ms).
 */
export const BUSY_EVENT_INTERVAL_MS = 50;

/**
 * Runs generations against Ollama: admits the request, reserves credits, streams tokens, records
 * every request in the usage log, and settles credits before the final event is sent.
 */
export class GenerationService {
  private readonly models: ModelDirectory;
  private readonly admission: RequestAdmission;
  private readonly slots: ModelSlots;
  /** /api/show capabilities per model, kept for a minute (a model may be re-pulled or deleted). */
  private readonly capabilityCache = new Map<string, { at: number; capabilities: Promise<string[] | null> }>();
  /** The usage-log writes of every request, as plain SQL. */
  private readonly rows: RowWriter<Generation>;

  constructor(private readonly deps: GenerationServiceDeps) {
    this.models = deps.models ?? passThroughModels;
    this.admission = deps.admission ?? admitEverything;
    this.slots = deps.slots ?? new ModelSlots(0);
    this.rows = new RowWriter(deps.db, Generation);
  }

  /** Refuses images for a model whose capabilities (from the catalogue or /api/show) lack vision. */
  private async requireVision(name: string, known: string[] | null | undefined): Promise<void> {
    let capabilities = known;
    if (capabilities === undefined) {
      let cached = this.capabilityCache.get(name);
      if (!cached || Date.now() - cached.at > CAPABILITY_TTL_MS) {
        const entry = {
          at: Date.now(),
          capabilities: this.showAnywhere(name).then(
            (r) => r.capabilities ?? null,
            (e: unknown) => {
              this.capabilityCache.delete(name);
              throw e;
            },
          ),
        };
        this.capabilityCache.set(name, entry);
        cached = entry;
      }
      capabilities = await cached.capabilities;
    }
    if (capabilities && !capabilities.includes('vision'))
      throw new GatewayError(ErrorCode.CAPABILITY_MISSING, `Model "${name}" cannot read images (it has no vision capability).`, { model: name, capability: 'vision' });
  }

  /** `/api/show` from the first host that has the model (they all report the same capabilities). */
  private async showAnywhere(name: string) {
    const hosts = await this.deps.pool.candidates(name);
    let failure: unknown;
    for (const h of hosts) {
      try {
        return await h.upstream.show(name);
      } catch (e) {
        failure ??= e;
      }
    }
    throw failure;
  }

  /** Cancels a running generation of the caller's key; NOT_FOUND when none is running under that id. */
  async cancel(principal: Principal, generationId: string): Promise<boolean> {
    if (this.deps.active.ownerOf(generationId) !== principal.id) {
      throw new GatewayError(ErrorCode.NOT_FOUND, 'No running generation with this id for this key.', { id: generationId });
    }
    return this.deps.active.cancel(generationId);
  }

  /** Streams a one-shot prompt (`/api/generate`). */
  generate(principal: Principal, input: GenerateInput, meta: RequestMeta): AsyncIterableIterator<GenerationEvent> {
    return this.stream(principal, { kind: 'generate', model: input.model, prompt: input.prompt, system: input.system, options: input.options }, meta);
  }

  /** Runs a one-shot prompt to the end and returns the whole text. */
  generateText(principal: Principal, input: GenerateInput, meta: Omit<RequestMeta, 'streamed'>): Promise<GenerationResult> {
    return this.complete(principal, { kind: 'generate', model: input.model, prompt: input.prompt, system: input.system, options: input.options }, meta);
  }

  /** Runs any plan to the end and returns the whole text. */
  async complete(principal: Principal, plan: GenerationPlan, meta: Omit<RequestMeta, 'streamed'>): Promise<GenerationResult> {
    let text = '';
    for await (const event of this.stream(principal, plan, { ...meta, streamed: false })) {
      if (event.type === 'TOKEN') text += event.delta;
      else if (event.type === 'DONE') return { ...event, model: plan.model, text };
    }
    // Only reachable when the caller's signal aborted the run.
    throw new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.');
  }

  /**
   * Streams one generation. The returned iterator aborts the upstream request as soon as the
   * consumer calls `return()` (client completed or disconnected), even while waiting on Ollama.
   */
  stream(principal: Principal, plan: GenerationPlan, meta: RequestMeta): AsyncIterableIterator<GenerationEvent> {
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort();
    if (meta.signal?.aborted) controller.abort();
    else meta.signal?.addEventListener('abort', onOuterAbort, { once: true });

    const inner = this.run(principal, plan, meta, controller);
    // A consumer that stops pulling (a client that stopped reading) leaves the generator parked
    // at a yield, where an abort alone never reaches its bookkeeping: once aborted, close it for
    // that consumer after a grace, so its row is written, credits settled and slots freed.
    let pulling = 0;
    let ended = false;
    let parkedCheck: NodeJS.Timeout | undefined;
    const closeIfParked = () => {
      if (ended) return;
      if (pulling === 0) return void inner.return(undefined).catch(() => {});
      parkedCheck = setTimeout(closeIfParked, PARKED_AFTER_ABORT_MS);
      parkedCheck.unref();
    };
    const onAbort = () => {
      parkedCheck = setTimeout(closeIfParked, PARKED_AFTER_ABORT_MS);
      parkedCheck.unref();
    };
    controller.signal.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => {
      ended = true;
      clearTimeout(parkedCheck);
      controller.signal.removeEventListener('abort', onAbort);
      meta.signal?.removeEventListener('abort', onOuterAbort);
    };
    // Once DONE was handed over the generation is complete: closing the iterator aborts nothing.
    let doneSent = false;
    const pull = async (): Promise<IteratorResult<GenerationEvent>> => {
      pulling++;
      try {
        const r = await inner.next();
        if (r.done) cleanup();
        else if (r.value.type === 'DONE') doneSent = true;
        return r;
      } catch (e) {
        cleanup();
        throw e;
      } finally {
        pulling--;
      }
    };
    // After a PHASE event the run goes on at once (to the upstream request) while the consumer is
    // still sending that event to its client, instead of waiting for it to ask for the next one.
    let prefetched: Promise<IteratorResult<GenerationEvent>> | undefined;
    return {
      next: async () => {
        if (prefetched) {
          const p = prefetched;
          prefetched = undefined;
          return p;
        }
        const r = await pull();
        if (!r.done && r.value.type === 'PHASE' && !controller.signal.aborted) {
          prefetched = pull();
          prefetched.catch(() => {}); // reported to the consumer when it asks for it
        }
        return r;
      },
      return: async (value?: unknown) => {
        // Abort first: the generator may be parked on a network read that only an abort ends.
        if (!doneSent) controller.abort();
        cleanup();
        return inner.return(value as undefined);
      },
      throw: async (error?: unknown) => {
        controller.abort();
        cleanup();
        return inner.throw(error);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  private validate(plan: GenerationPlan): void {
    const max = this.deps.maxPromptChars ?? MAX_PROMPT_CHARS;
    if (!plan.model.trim()) throw badInput('model must not be empty.', { field: 'model' });
    const size = plan.prompt.length + (plan.system?.length ?? 0) + (plan.messages ?? []).reduce((n, m) => n + m.content.length, 0);
    if (size > max) throw badInput(`The prompt is longer than ${max} characters.`, { field: 'prompt' });
  }

  /**
   * Before costly work for a request (downloading its images): throws what admission would
   * throw now (per-address and per-key limits, a key without credits for the cheapest request),
   * counting nothing. A refusal leaves one ERROR row like any refused request.
   */
  async precheck(principal: Principal, plan: Pick<GenerationPlan, 'kind' | 'model' | 'prompt' | 'sessionId'>, meta: RequestMeta): Promise<void> {
    try {
      this.deps.gate?.check(meta.clientIp);
      await this.admission.check?.(principal);
      await this.deps.credits.requireAtLeast(this.deps.db, principal.id, Math.max(1, this.deps.requestCost));
    } catch (e) {
      if (e instanceof GatewayError) await logRefused(this.deps, principal, plan, plan.model, meta, e);
      throw e;
    }
  }

  /** Per-address gate, then the rate limiter; a refused request (RATE_LIMITED) still leaves one ERROR row in the usage log. */
  private async admit(principal: Principal, plan: GenerationPlan, model: string, meta: RequestMeta) {
    let leave: (() => void) | undefined;
    try {
      leave = this.deps.gate?.enter(meta.clientIp);
      const release = await this.admission.admit(principal, { streamed: meta.streamed });
      return (used: { totalTokens: number }) => {
        leave?.();
        release(used);
      };
    } catch (e) {
      leave?.();
      if (e instanceof GatewayError) await logRefused(this.deps, principal, plan, model, meta, e);
      throw e;
    }
  }

  private async *run(principal: Principal, plan: GenerationPlan, meta: RequestMeta, controller: AbortController): AsyncGenerator<GenerationEvent> {
    const { db, pool, credits, active, log, requestCost, defaultMaxTokens } = this.deps;
    this.validate(plan);
    const options = toOllamaOptions(plan.options);
    const model = await this.models.resolve(plan.model);
    if (plan.images?.length || plan.messages?.some((m) => m.images?.length)) await this.requireVision(model.name, model.capabilities);
    const release = await this.admit(principal, plan, model.name, meta);
    let totalTokens = 0;
    try {
      const pricing = model.pricing;
      const reserved = costOf({ promptTokens: estimatePromptTokens(plan), completionTokens: options.num_predict ?? defaultMaxTokens }, pricing, requestCost);
      const id = randomUUID();
      const startedAt = Date.now();
      // The hosts to try, best first; the row names the first (a failover rewrites it at the end).
      let hosts = await pool.candidates(model.name);
      let host = hosts[0];
      const row = {
        id,
        apiKeyId: principal.id,
        sessionId: plan.sessionId ?? null,
        model: model.name,
        kind: plan.kind,
        streamed: meta.streamed,
        prompt: plan.prompt,
        messages: loggedMessages(plan),
        requestId: meta.requestId,
        host: host.url,
        instanceId: this.deps.instanceId ?? null,
        createdAt: new Date(startedAt),
      };

      // The model counts as busy on every host asked (the idle reaper leaves it alone there), and
      // the request as open on the host asked last (least-busy routing).
      const busyOn = new Map<OllamaHost, () => void>();
      let closeOnHost: (() => void) | undefined;
      const markBusy = (h: OllamaHost) => {
        if (!busyOn.has(h)) busyOn.set(h, this.models.markBusy(model.name, h.url));
        closeOnHost?.();
        closeOnHost = h.open();
      };
      // The request to Ollama: aborted with the run, or on its own when the reservation fails.
      const upstream = new AbortController();
      const abortUpstream = () => upstream.abort();
      controller.signal.addEventListener('abort', abortUpstream, { once: true });
      let sentAt = 0;
      /** Sends the request to Ollama (to the best host, failing over before the first chunk) and starts reading its answer. */
      const ask = (): ReadAhead<UpstreamChunk> => {
        markBusy(host);
        const request = { model: model.name, options: options as Partial<OllamaOptions>, ...(model.keepAlive !== undefined ? { keep_alive: model.keepAlive } : {}) };
        const failover = {
          retries: this.deps.upstreamRetries ?? 0,
          delayMs: this.deps.upstreamRetryDelayMs ?? 250,
          onFailover: (failed: OllamaHost, next: OllamaHost, e: GatewayError) =>
            log.warn({ requestId: meta.requestId, generationId: id, model: model.name, host: failed.url, next: next.url, errorCode: e.code }, 'Ollama failed before answering; trying again'),
        };
        const onHost = (h: OllamaHost) => {
          host = h;
          markBusy(h);
        };
        const chunks =
          plan.kind === 'chat'
            ? mapChunks(
                pool.stream(hosts, (h) => h.upstream.chatStream({ ...request, messages: (plan.messages ?? []) as OllamaMessage[] }, upstream.signal), failover, upstream.signal, onHost),
                (c) => c.message?.content ?? '',
              )
            : mapChunks(
                pool.stream(
                  hosts,
                  (h) =>
                    h.upstream.generateStream(
                      { ...request, prompt: plan.prompt, ...(plan.system ? { system: plan.system } : {}), ...(plan.images?.length ? { images: plan.images } : {}) },
                      upstream.signal,
                    ),
                  failover,
                  upstream.signal,
                  onHost,
                ),
                (c) => c.response ?? '',
              );
        sentAt = Date.now();
        // Chunks that arrive while the client is being sent the previous event go out together as
        // one TOKEN event (tokenCount says how many); a chunk that finds the client waiting goes at once.
        const reading = new ReadAhead(chunks.source[Symbol.asyncIterator](), { delta: chunks.delta, isFinal: chunkIsFinal, maxChars: MAX_EVENT_CHARS, maxTokens: MAX_EVENT_TOKENS });
        reading.start();
        return reading;
      };

      // Queue by canonical name, so `llama3.2` and `Llama3.2:latest` share one model's slots.
      const ticket = this.slots.enter(modelKey(model.name), controller.signal);
      /** Gives back what the run holds: its slot, the model's busy marks and open count, the abort wiring. */
      const letGo = () => {
        ticket.release();
        for (const notBusy of busyOn.values()) notBusy();
        closeOnHost?.();
        controller.signal.removeEventListener('abort', abortUpstream);
      };
      // With a slot free, Ollama is asked as soon as the conditional UPDATE has reserved the credits,
      // while that transaction commits, instead of after the commit: the first token comes one
      // commit (an fsync on SQLite) sooner. A request the credits cannot cover still never reaches
      // the model, nothing reaches the client before the commit, and a commit that fails aborts
      // the request to Ollama.
      const early = ticket.position === 0;
      const loadedEarly = early ? host.isLoaded(model.name) : undefined;
      let reader: ReadAhead<UpstreamChunk> | undefined;
      try {
        await inTransaction(db, async (tx) => {
          await credits.reserve(tx, principal.id, reserved);
          await this.rows.insert(tx, { ...row, status: 'STREAMING', creditsReserved: reserved });
          await plan.onStart?.(tx, id);
          if (early && !controller.signal.aborted) reader = ask();
        }, { yieldBeforeCommit: early });
      } catch (e) {
        reader?.close();
        upstream.abort();
        letGo();
        // Refused before reaching the model; still one row in the usage log.
        if (e instanceof GatewayError) await logRefused(this.deps, principal, plan, model.name, meta, e, host.url);
        throw e;
      }

      let settle!: () => void;
      active.add(id, principal.id, controller, new Promise<void>((r) => (settle = r)));
      const probe = this.deps.observer?.begin(model.name);
      let text = '';
      let tokens = 0;
      let firstTokenMs: number | null = null;
      let finished = false;

      const finish = async (status: GenerationOutcome['status'], usage: GenerationOutcome['usage'], errorCode: string | null, doneReason: string | null) => {
        finished = true;
        this.deps.partials?.forget(id);
        // Nothing produced means nothing charged: a request that never got a token costs no credits.
        const charged = status === 'COMPLETE' || tokens > 0 ? Math.min(reserved, costOf(usage, pricing, requestCost)) : 0;
        const durationMs = Date.now() - startedAt;
        totalTokens = usage.promptTokens + usage.completionTokens;
        probe?.end({ status, errorCode, creditsCharged: charged, completionTokens: usage.completionTokens });
        await inTransaction(db, async (tx) => {
          await this.rows.update(
            tx,
            { id, status: 'STREAMING' },
            {
              status,
              response: text,
              promptTokens: usage.promptTokens,
              completionTokens: usage.completionTokens,
              creditsCharged: charged,
              errorCode,
              doneReason,
              firstTokenMs,
              host: host.url,
              totalDurationMs: durationMs,
              finishedAt: new Date(),
            },
          );
          await credits.refund(tx, principal.id, reserved - charged);
          await plan.onFinish?.(tx, { generationId: id, status, text, usage, errorCode, doneReason });
        });
        log.info(
          { requestId: meta.requestId, generationId: id, key: principal.prefix, model: model.name, kind: plan.kind, outcome: status, errorCode, completionTokens: usage.completionTokens, firstTokenMs, durationMs },
          'generation finished',
        );
        return { charged, durationMs };
      };

      try {
        // Tell the client where the request is before the first token: queued, loading, generating.
        const queued = ticket.position > 0;
        while (ticket.position > 0) {
          yield { type: 'PHASE', generationId: id, phase: 'QUEUED', queuePosition: ticket.position };
          await Promise.race([ticket.granted, ticket.moved()]);
        }
        if (queued) {
          // The hosts' state may have changed while the request waited.
          hosts = await pool.candidates(model.name);
          host = hosts[0];
        }
        let loading = (await (loadedEarly ?? host.isLoaded(model.name))) === false;
        yield { type: 'PHASE', generationId: id, phase: loading ? 'LOADING_MODEL' : 'GENERATING', queuePosition: null };
        reader ??= ask();
        let answered = false;
        try {
          for (;;) {
            const batch = await reader.take();
            if (!answered && (batch.chunks > 0 || batch.final)) {
              answered = true;
              probe?.upstreamAnswered(Date.now() - sentAt);
            }
            if (batch.chunks > 0) {
              if (loading) {
                loading = false;
                host.markLoaded(model.name);
                yield { type: 'PHASE', generationId: id, phase: 'GENERATING', queuePosition: null };
              }
              if (batch.tokens > 0) {
                if (firstTokenMs === null) {
                  firstTokenMs = Date.now() - startedAt;
                  probe?.firstToken(firstTokenMs);
                }
                text += batch.text;
                tokens += batch.tokens;
                probe?.tokens(batch.tokens);
                this.deps.partials?.update(id, {
                  text,
                  completionTokens: tokens,
                  creditsSoFar: Math.min(reserved, costOf({ promptTokens: 0, completionTokens: tokens }, pricing, requestCost)),
                  messageId: plan.messageId,
                });
                yield { type: 'TOKEN', generationId: id, delta: batch.text, tokenCount: batch.tokens };
                // Under load, paced tokens of a stream go out at most every BUSY_EVENT_INTERVAL_MS
                // (the first token never waits, the last is not held: linger ends at the final chunk).
                if (meta.streamed && eventLoopLoad.busy) await reader.linger(BUSY_EVENT_INTERVAL_MS);
              }
            }
            const chunk = batch.final && finalUsage(batch.final);
            if (chunk) {
              const usage = { promptTokens: chunk.promptTokens, completionTokens: chunk.completionTokens ?? tokens };
              const doneReason = chunk.doneReason || 'stop';
              // Committed before the client hears that the answer is complete.
              const { charged, durationMs } = await finish('COMPLETE', usage, null, doneReason);
              yield {
                type: 'DONE',
                generationId: id,
                doneReason,
                usage: { ...usage, totalTokens: usage.promptTokens + usage.completionTokens },
                creditsCharged: charged,
                durationMs,
                messageId: plan.messageId ?? null,
              };
              return;
            }
            if (batch.failed) throw batch.error;
            if (batch.ended) break;
            // More is already read: let I/O, timers and the other streams have a turn first (a
            // buffered upstream must not keep the event loop in microtasks); meanwhile more coalesces.
            if (reader.ready) await nextTurn();
          }
        } finally {
          reader.close();
        }
        throw new GatewayError(ErrorCode.UPSTREAM_ERROR, 'Ollama ended the stream before it was complete.');
      } catch (e) {
        if (finished) throw e;
        const error = controller.signal.aborted
          ? controller.signal.reason instanceof GatewayError
            ? controller.signal.reason
            : new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.')
          : e instanceof GatewayError
            ? e
            : new GatewayError(ErrorCode.INTERNAL_SERVER_ERROR, 'Generation failed unexpectedly.', {}, { cause: e });
        if (error.code === ErrorCode.INTERNAL_SERVER_ERROR) log.error({ err: e, requestId: meta.requestId, generationId: id }, 'generation crashed');
        const upstreamError = upstreamText(error);
        if (upstreamError) log.warn({ requestId: meta.requestId, generationId: id, host: host.url, errorCode: error.code, upstreamError }, 'Ollama reported an error');
        await finish(controller.signal.aborted ? 'CANCELLED' : 'ERROR', { promptTokens: 0, completionTokens: tokens }, error.code, null);
        // A client that stopped the stream itself needs no error; one stopped by the gateway
        // (revocation, shutdown, cancelGeneration elsewhere) is told why.
        const stoppedByGateway = controller.signal.aborted && controller.signal.reason instanceof GatewayError;
        if (stoppedByGateway || error.code !== ErrorCode.CANCELLED) throw error;
      } finally {
        // A consumer that stopped at a phase event leaves a request that was asked early still open.
        reader?.close();
        // Reached without `finished` when the consumer stopped at a yield (return()): the client left mid-stream.
        if (!finished) await finish('CANCELLED', { promptTokens: 0, completionTokens: tokens }, ErrorCode.CANCELLED, null);
        letGo();
        settle();
      }
    } finally {
      release({ totalTokens });
    }
  }
}

/** An upstream chunk of either kind (generate or chat), as far as the relay reads it. */
type UpstreamChunk = { done: boolean; done_reason?: string; prompt_eval_count?: number; eval_count?: number };

/** Generate or chat chunks with how to read their text; token counts exist only on the final chunk. */
interface ChunkStream<T extends UpstreamChunk = UpstreamChunk> {
  source: AsyncIterable<T>;
  delta(chunk: T): string;
}

/**
 * Normalises generate and chat chunks without a pass over them: the relay reads `source` itself
 * (one layer less per token) with `delta` for the text and `finalUsage` for the last chunk.
 */
function mapChunks<T extends UpstreamChunk>(source: AsyncIterable<T>, delta: (chunk: T) => string): ChunkStream {
  return { source, delta: delta as (chunk: UpstreamChunk) => string };
}

const chunkIsFinal = (c: UpstreamChunk) => c.done;

const finalUsage = (c: UpstreamChunk) => ({ promptTokens: c.prompt_eval_count ?? 0, completionTokens: c.eval_count, doneReason: c.done_reason });

/** Rough upper bound of prompt tokens (used only to size the credit reservation). */
function estimatePromptTokens(plan: GenerationPlan): number {
  const chars = plan.prompt.length + (plan.system?.length ?? 0) + (plan.messages ?? []).reduce((n, m) => n + m.content.length, 0);
  return Math.ceil(chars / 2) + 16 + (plan.images?.length ?? 0) * 1024;
}

/** The conversation as stored in the usage log (images are counted, not copied). */
function loggedMessages(plan: GenerationPlan): GenerationMessage[] | null {
  if (plan.messages) return plan.messages.map(({ role, content, images }) => ({ role, content, ...(images?.length ? { images: images.map(() => '[image]') } : {}) }));
  if (plan.system) return [{ role: 'system', content: plan.system }, { role: 'user', content: plan.prompt }];
  return null;
}
