import { randomUUID } from 'node:crypto';
import type { Options as OllamaOptions } from 'ollama';
import type { ToolCall } from '../../entities/generation.js';
import { costOf } from '../access/credits.js';
import { finishUsageRow, insertUsageRow } from '../db/generations.js';
import { ErrorCode, GatewayError, badInput } from '../platform/errors.js';
import type { Principal } from '../access/keys.js';
import { modelKey } from '../ollama/model-names.js';
import type { OllamaHost } from '../ollama/pool.js';
import type { Capability } from './capabilities.js';
import type { AdmissionRelease, GenerationProbe, ResolvedModel } from './hooks.js';
import { eventLoopLoad } from './load.js';
import type { SlotTicket } from '../ollama/slots.js';
import { toOllamaOptions } from './options.js';
import { nextTurn } from '../platform/event-loop.js';
import { ReadAhead } from './read-ahead.js';
import { logRefused } from './refusals.js';
import { failureOf } from './run-failure.js';
import { estimatePromptTokens, promptChars, promptTokenBound } from './reservation.js';
import { BUSY_EVENT_INTERVAL_MS, MAX_EVENT_CHARS, MAX_EVENT_TOKENS, type RunContext } from './run-context.js';
import { checkFormat } from './structured-output.js';
import type { GenerationEvent, GenerationOutcome, GenerationPhase, GenerationPlan, RequestMeta } from './types.js';
import { type UpstreamChunk, chunkText, chunkThinking, chunkToolCalls, isFinalChunk } from './upstream-call.js';
import { usageRow } from './usage-row.js';
import { withDefaults } from './plan-defaults.js';

type Status = GenerationOutcome['status'];
type TokenUsage = GenerationOutcome['usage'];

/**
 * One generation, step by step: `admit` (validation, model, rate limits), `reserve` (credits and the
 * usage row, in one transaction), `queue` (a slot of Ollama), `relay` (chunks to events) and
 * `settle` (the row, the charge, the refund). `settle` runs once, whoever calls it first: the
 * relay at the final chunk, the failure path, or the consumer leaving (the `finally` of `events`).
 * The run is cancelled through the AbortController it is given (the stream adapter's).
 */
export class GenerationRun {
  readonly id = randomUUID();
  readonly startedAt = Date.now();
  private model!: ResolvedModel;
  private options!: Partial<OllamaOptions> & { num_predict: number };
  private releaseAdmission: AdmissionRelease = () => {};
  private reserved = 0;
  private promptEstimate = 0;
  private candidates: OllamaHost[] = [];
  private ticket: SlotTicket<OllamaHost> | undefined;
  private host!: OllamaHost;
  private loadedEarly: Promise<boolean | undefined> | undefined;
  /** The request to Ollama: aborted with the run, or on its own when the reservation fails. */
  private readonly upstreamAbort = new AbortController();
  private reader: ReadAhead<UpstreamChunk, ToolCall> | undefined;
  private sentAt = 0;
  /** The model counts as busy on every host asked (the idle reaper leaves it alone there). */
  private readonly busyOn = new Map<OllamaHost, () => void>();
  /** The request counts as open on the host asked last (least-busy routing). */
  private closeOnHost: (() => void) | undefined;
  private probe: GenerationProbe | undefined;
  private registered: (() => void) | undefined;
  private text = '';
  private thinking = '';
  private readonly toolCalls: ToolCall[] = [];
  private tokens = 0;
  private firstTokenMs: number | null = null;
  /** Ollama sent something, so it evaluated the prompt. */
  private answered = false;
  /** The model was not in memory when the request was sent: GENERATING follows its first chunk. */
  private loading = false;
  private totalTokens = 0;
  private settlement: Promise<{ charged: number; durationMs: number }> | undefined;

  constructor(
    private readonly ctx: RunContext,
    private readonly principal: Principal,
    private plan: GenerationPlan,
    private readonly meta: RequestMeta,
    private readonly controller: AbortController,
  ) {}

  /** The whole run as events: phases, tokens, then one DONE (or a thrown GatewayError). */
  async *events(): AsyncGenerator<GenerationEvent> {
    await this.admit();
    try {
      await this.reserve();
      try {
        yield* this.queue();
        yield* this.relay();
      } catch (e) {
        if (this.settlement) throw e; // settling itself failed: nothing to add
        const error = failureOf(e, this.controller.signal, this.ctx.log, { requestId: this.meta.requestId, generationId: this.id, host: this.host.url });
        await this.settle(this.controller.signal.aborted ? 'CANCELLED' : 'ERROR', this.usageSoFar(), error.code, null);
        // A client that stopped the stream itself needs no error; one stopped by the gateway
        // (revocation, shutdown, cancelGeneration elsewhere) is told why.
        const stoppedByGateway = this.controller.signal.aborted && this.controller.signal.reason instanceof GatewayError;
        if (stoppedByGateway || error.code !== ErrorCode.CANCELLED) throw error;
      } finally {
        // The consumer stopped at a yield (return()): the client left mid-stream.
        this.reader?.close();
        try {
          await this.settle('CANCELLED', this.usageSoFar(), ErrorCode.CANCELLED, null);
        } finally {
          this.letGo();
          this.registered?.();
        }
      }
    } finally {
      this.releaseAdmission({ totalTokens: this.totalTokens });
    }
  }

  /** Step 1: validation, the model (alias, prices, keep_alive), vision, and the key's rate limits. */
  private async admit(): Promise<void> {
    const { ctx } = this;
    let { plan } = this;
    if (!plan.model.trim()) throw badInput('model must not be empty.', { field: 'model' });
    if (promptChars(plan) > ctx.maxPromptChars) throw badInput(`The prompt is longer than ${ctx.maxPromptChars} characters.`, { field: 'prompt' });
    // Every reply is bounded by what was reserved: without maxTokens Ollama's num_predict is -1 and
    // a reply runs to the context limit, past what the reservation covers.
    const options = toOllamaOptions(plan.options);
    this.options = { ...options, num_predict: options.num_predict ?? ctx.defaultMaxTokens };
    checkFormat(plan.format);
    this.model = await ctx.models.resolve(plan.model);
    this.plan = plan = await withDefaults(plan, this.model, ctx.defaultSystemPrompt);
    const needed: Capability[] = [];
    if (plan.images?.length || plan.messages?.some((m) => m.images?.length)) needed.push('vision');
    // think: false is fine for any model; on, or a level, needs a thinking model.
    if (plan.think !== undefined && plan.think !== null && plan.think !== false) needed.push('thinking');
    if (plan.tools?.length) needed.push('tools');
    if (needed.length) await ctx.requireCapabilities(this.model.name, this.model.capabilities, needed);
    // Counted here, where every route and document shape passes: per address, then per key.
    let leave: (() => void) | undefined;
    try {
      leave = ctx.gate?.enter(this.meta.clientIp);
      const release = await ctx.admission.admit(this.principal, { streamed: this.meta.streamed });
      this.releaseAdmission = (used) => {
        leave?.();
        release(used);
      };
    } catch (e) {
      leave?.();
      if (e instanceof GatewayError) await logRefused(ctx, this.principal, plan, this.model.name, this.meta, e);
      throw e;
    }
  }

  /**
   * Step 2: a slot of Ollama (or a place in the queue), then credits and the usage row in one
   * transaction. With a slot free, Ollama is asked as soon as the conditional UPDATE has reserved
   * the credits, while that transaction commits and is flushed: the first token comes one commit
   * (an fsync on SQLite) sooner. A request the credits cannot cover never reaches the model,
   * nothing reaches the client before the commit is durable, and a commit that fails aborts the
   * request to Ollama (on SQLite before it is sent: the COMMIT runs before the request's bytes
   * leave, on the next tick).
   */
  private async reserve(): Promise<void> {
    const { ctx, plan, model } = this;
    this.reserved = costOf({ promptTokens: promptTokenBound(plan), completionTokens: this.options.num_predict }, model.pricing, ctx.requestCost);
    this.promptEstimate = estimatePromptTokens(plan);
    this.candidates = await ctx.pool.candidates(model.name);
    const healthy = this.candidates.filter((h) => h.isHealthy);
    try {
      // Queue by canonical name, so `llama3.2` and `Llama3.2:latest` share one model's slots.
      this.ticket = await ctx.slots.enter(modelKey(model.name), healthy.length > 0 ? healthy : this.candidates, this.controller.signal);
      this.host = this.ticket.position === 0 ? await this.ticket.granted : this.candidates[0];
      this.controller.signal.addEventListener('abort', this.abortUpstream, { once: true });
      const early = this.ticket.position === 0;
      if (early) this.loadedEarly = this.host.isLoaded(model.name);
      await ctx.db.sqlClient.transaction(async (tx) => {
        await ctx.credits.reserve(tx, this.principal.id, this.reserved);
        await insertUsageRow(tx, {
          ...usageRow(this, plan, this.principal, this.meta, model.name),
          host: this.host.url,
          instanceId: ctx.instanceId ?? null,
          status: 'STREAMING',
          creditsReserved: this.reserved,
        });
        await plan.onStart?.(tx, this.id);
        if (early && !this.controller.signal.aborted) this.ask();
      });
    } catch (e) {
      this.reader?.close();
      this.upstreamAbort.abort();
      this.letGo();
      // Refused before reaching the model; still one row in the usage log.
      if (e instanceof GatewayError) await logRefused(ctx, this.principal, plan, model.name, this.meta, e, this.host?.url ?? null);
      throw e;
    }
    let done!: () => void;
    ctx.active.add(this.id, this.principal.id, this.controller, new Promise<void>((r) => (done = r)));
    this.registered = done;
    this.probe = ctx.observer?.begin(model.name, { generationId: this.id, principal: this.principal, requested: plan.model, kind: plan.kind, streamed: this.meta.streamed });
  }

  /** Step 3: QUEUED with the position while waiting for a slot, then LOADING_MODEL or GENERATING. */
  private async *queue(): AsyncGenerator<GenerationEvent> {
    const ticket = this.ticket!;
    if (ticket.position > 0) {
      while (ticket.position > 0) {
        yield this.phase('QUEUED', ticket.position);
        await Promise.race([ticket.granted, ticket.moved()]);
      }
      this.host = await ticket.granted;
    }
    const loading = (await (this.loadedEarly ?? this.host.isLoaded(this.model.name))) === false;
    yield this.phase(loading ? 'LOADING_MODEL' : 'GENERATING', null);
    if (loading) this.loading = true;
  }

  private phase(phase: GenerationPhase, queuePosition: number | null): GenerationEvent {
    this.probe?.phase?.(phase, queuePosition);
    return { type: 'PHASE', generationId: this.id, phase, queuePosition };
  }

  /** Step 4: chunks to TOKEN events (coalesced while the client is busy), then settle and DONE. */
  private async *relay(): AsyncGenerator<GenerationEvent> {
    const { ctx, meta } = this;
    const reader = this.reader ?? this.ask();
    for (;;) {
      const batch = await reader.take();
      if (!this.answered && (batch.chunks > 0 || batch.final)) {
        this.answered = true;
        this.probe?.upstreamAnswered(Date.now() - this.sentAt);
      }
      if (batch.chunks > 0 && this.loading) {
        this.loading = false;
        this.host.markLoaded(this.model.name);
        yield this.phase('GENERATING', null);
      }
      if (batch.tokens > 0 || batch.calls.length > 0) {
        if (this.firstTokenMs === null) {
          this.firstTokenMs = Date.now() - this.startedAt;
          this.probe?.firstToken(this.firstTokenMs);
        }
        this.text += batch.text;
        this.thinking += batch.thinking;
        this.toolCalls.push(...batch.calls);
        this.tokens += batch.tokens;
        this.probe?.tokens(batch.tokens);
        ctx.partials?.update(this.id, {
          text: this.text,
          completionTokens: this.tokens,
          creditsSoFar: Math.min(this.reserved, costOf(this.usageSoFar(), this.model.pricing, ctx.requestCost)),
          messageId: this.plan.messageId,
        });
        const event: GenerationEvent = { type: 'TOKEN', generationId: this.id, delta: batch.text, tokenCount: batch.tokens };
        if (batch.thinking) event.thinking = batch.thinking;
        if (batch.calls.length) event.toolCalls = batch.calls;
        yield event;
        // Under load, paced tokens of a stream go out at most every BUSY_EVENT_INTERVAL_MS (the
        // first token never waits, the last is not held: linger ends at the final chunk).
        if (meta.streamed && eventLoopLoad.busy) await reader.linger(BUSY_EVENT_INTERVAL_MS);
      }
      if (batch.final) {
        const usage = { promptTokens: batch.final.prompt_eval_count ?? 0, completionTokens: batch.final.eval_count ?? this.tokens };
        const doneReason = batch.final.done_reason || 'stop';
        // Committed before the client hears that the answer is complete.
        const { charged, durationMs } = await this.settle('COMPLETE', usage, null, doneReason);
        yield {
          type: 'DONE',
          generationId: this.id,
          doneReason,
          usage: { ...usage, totalTokens: usage.promptTokens + usage.completionTokens },
          creditsCharged: charged,
          durationMs,
          messageId: this.plan.messageId ?? null,
        };
        return;
      }
      if (batch.failed) throw batch.error;
      if (batch.ended) throw new GatewayError(ErrorCode.UPSTREAM_ERROR, 'Ollama ended the stream before it was complete.');
      // More is already read: let I/O, timers and the other streams have a turn first (a buffered
      // upstream must not keep the event loop in microtasks); meanwhile more coalesces.
      if (reader.ready) await nextTurn();
    }
  }

  /**
   * Step 5, once: the usage row, the charge and the refund, and the plan's `onFinish`, in one
   * transaction. Every token delivered is paid for, and so is a prompt Ollama evaluated (it answered
   * at all); a request Ollama never answered costs nothing. The reservation bounds the charge.
   */
  private settle(status: Status, usage: TokenUsage, errorCode: string | null, doneReason: string | null): Promise<{ charged: number; durationMs: number }> {
    this.settlement ??= this.writeOutcome(status, usage, errorCode, doneReason);
    return this.settlement;
  }

  private async writeOutcome(status: Status, usage: TokenUsage, errorCode: string | null, doneReason: string | null) {
    const { ctx, plan, principal } = this;
    ctx.partials?.forget(this.id);
    const charged = status === 'COMPLETE' || this.answered ? Math.min(this.reserved, costOf(usage, this.model.pricing, ctx.requestCost)) : 0;
    const durationMs = Date.now() - this.startedAt;
    this.totalTokens = usage.promptTokens + usage.completionTokens;
    this.probe?.end({ status, errorCode, creditsCharged: charged, completionTokens: usage.completionTokens });
    await ctx.db.sqlClient.transaction(async (tx) => {
      await finishUsageRow(tx, this.id, {
        status,
        response: this.text,
        thinking: this.thinking || null,
        toolCalls: this.toolCalls.length ? this.toolCalls : null,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        creditsCharged: charged,
        errorCode,
        doneReason,
        firstTokenMs: this.firstTokenMs,
        host: this.host.url,
        totalDurationMs: durationMs,
        finishedAt: new Date(),
      });
      await ctx.credits.refund(tx, principal.id, this.reserved - charged);
      await plan.onFinish?.(tx, { generationId: this.id, status, text: this.text, thinking: this.thinking || null, toolCalls: this.toolCalls, usage, errorCode, doneReason });
    });
    ctx.log.info(
      {
        requestId: this.meta.requestId,
        generationId: this.id,
        key: principal.prefix,
        model: this.model.name,
        kind: plan.kind,
        outcome: status,
        errorCode,
        completionTokens: usage.completionTokens,
        firstTokenMs: this.firstTokenMs,
        durationMs,
      },
      'generation finished',
    );
    return { charged, durationMs };
  }

  /** Sends the request to Ollama and starts reading its answer. */
  private ask(): ReadAhead<UpstreamChunk, ToolCall> {
    const { ctx, plan, model } = this;
    this.markBusy(this.host);
    // keep_alive on every request: Ollama keeps a loaded model's previous duration when a request
    // has none (server/sched.go useLoadedRunner), so an old threshold or a -1 pin would persist.
    const keepAlive = model.keepAlive ?? ctx.defaultKeepAlive;
    const hosts = [this.host, ...this.candidates.filter((h) => h !== this.host)];
    const onHost = async (h: OllamaHost) => {
      if (h !== this.host) {
        // A failover: the next host is asked only with one of its slots.
        this.ticket?.release();
        this.ticket = await ctx.slots.enter(modelKey(model.name), [h], this.upstreamAbort.signal);
        await this.ticket.granted;
      }
      this.host = h;
      this.markBusy(h);
    };
    const chunks = ctx.upstream({ kind: plan.kind, model: model.name, options: this.options, keepAlive, plan, hosts, onHost, signal: this.upstreamAbort.signal, requestId: this.meta.requestId, generationId: this.id });
    this.sentAt = Date.now();
    // Chunks that arrive while the client is being sent the previous event go out together as
    // one TOKEN event (tokenCount says how many); a chunk that finds the client waiting goes at once.
    this.reader = new ReadAhead<UpstreamChunk, ToolCall>(chunks[Symbol.asyncIterator](), {
      delta: chunkText,
      thinking: chunkThinking,
      calls: chunkToolCalls,
      isFinal: isFinalChunk,
      maxChars: MAX_EVENT_CHARS,
      maxTokens: MAX_EVENT_TOKENS,
    });
    this.reader.start();
    return this.reader;
  }

  private markBusy(h: OllamaHost): void {
    if (!this.busyOn.has(h)) this.busyOn.set(h, this.ctx.models.markBusy(this.model.name, h.url));
    this.closeOnHost?.();
    this.closeOnHost = h.open();
  }

  private readonly abortUpstream = () => this.upstreamAbort.abort();

  /** Gives back what the run holds: its slot, the model's busy marks and open count, the abort wiring. */
  private letGo(): void {
    this.ticket?.release();
    for (const notBusy of this.busyOn.values()) notBusy();
    this.busyOn.clear();
    this.closeOnHost?.();
    this.closeOnHost = undefined;
    this.controller.signal.removeEventListener('abort', this.abortUpstream);
  }

  /** Usage of a run that ended without Ollama's counts: the prompt estimated once Ollama answered, the tokens relayed. */
  private usageSoFar(): TokenUsage {
    return { promptTokens: this.answered ? this.promptEstimate : 0, completionTokens: this.tokens };
  }


}
