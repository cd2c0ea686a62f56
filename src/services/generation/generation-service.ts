import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { Generation, type GenerationStatus } from '../../entities/generation.js';
import { inTransaction } from '../database.js';
import { costOf, type CreditLedger, type ModelPricing } from '../credits.js';
import { ErrorCode, GatewayError, badInput } from '../errors.js';
import type { Principal } from '../keys.js';
import type { Logger } from '../logger.js';
import type { OllamaUpstream } from '../ollama/upstream.js';
import type { ActiveStreams } from './active-streams.js';
import { type GenerationOptions, toOllamaOptions } from './options.js';

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

/** One event of a generation stream: text deltas, then exactly one DONE. */
export type GenerationEvent =
  | { type: 'TOKEN'; generationId: string; delta: string; tokenCount: number }
  | {
      type: 'DONE';
      generationId: string;
      doneReason: string;
      usage: Usage;
      creditsCharged: number;
      durationMs: number;
    };
export type DoneEvent = Extract<GenerationEvent, { type: 'DONE' }>;

/** The whole answer of a non-streaming generation. */
export interface GenerationResult extends DoneEvent {
  model: string;
  text: string;
}

export interface GenerationServiceDeps {
  db: DataSource;
  upstream: OllamaUpstream;
  credits: CreditLedger;
  active: ActiveStreams;
  log: Logger;
  requestCost: number;
  defaultMaxTokens: number;
  maxPromptChars?: number;
}

interface RequestMeta {
  requestId: string;
  /** Aborted when the caller goes away (HTTP request closed). */
  signal?: AbortSignal;
  streamed: boolean;
}

const MAX_PROMPT_CHARS = 1_000_000;

/**
 * Runs generations against Ollama: reserves credits, streams tokens, records every request in the
 * usage log, and settles credits before the final event is sent.
 */
export class GenerationService {
  constructor(private readonly deps: GenerationServiceDeps) {}

  /**
   * Streams one generation. The returned iterator aborts the upstream request as soon as the
   * consumer calls `return()` (client completed or disconnected), even while waiting on Ollama.
   */
  generate(principal: Principal, input: GenerateInput, meta: RequestMeta): AsyncIterableIterator<GenerationEvent> {
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort();
    if (meta.signal?.aborted) controller.abort();
    else meta.signal?.addEventListener('abort', onOuterAbort, { once: true });

    const inner = this.run(principal, input, meta, controller);
    const cleanup = () => meta.signal?.removeEventListener('abort', onOuterAbort);
    return {
      next: async () => {
        const r = await inner.next();
        if (r.done) cleanup();
        return r;
      },
      return: async (value?: unknown) => {
        // Abort first: the generator may be parked on a network read that only an abort ends.
        controller.abort();
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

  /** Runs a generation to the end and returns the whole text. */
  async generateText(principal: Principal, input: GenerateInput, meta: Omit<RequestMeta, 'streamed'>): Promise<GenerationResult> {
    let text = '';
    for await (const event of this.generate(principal, input, { ...meta, streamed: false })) {
      if (event.type === 'TOKEN') text += event.delta;
      else return { ...event, model: input.model, text };
    }
    // Only reachable when the caller's signal aborted the run.
    throw new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.');
  }

  private validate(input: GenerateInput): void {
    const max = this.deps.maxPromptChars ?? MAX_PROMPT_CHARS;
    if (!input.model.trim()) throw badInput('model must not be empty.', { field: 'model' });
    if (input.prompt.length > max) throw badInput(`prompt is longer than ${max} characters.`, { field: 'prompt' });
    if ((input.system?.length ?? 0) > max) throw badInput(`system is longer than ${max} characters.`, { field: 'system' });
  }

  private async *run(
    principal: Principal,
    input: GenerateInput,
    meta: RequestMeta,
    controller: AbortController,
  ): AsyncGenerator<GenerationEvent> {
    const { db, upstream, credits, active, log, requestCost, defaultMaxTokens } = this.deps;
    this.validate(input);
    const options = toOllamaOptions(input.options);
    const pricing: ModelPricing = {}; // per-model prices come from the model catalogue
    const maxTokens = options.num_predict ?? defaultMaxTokens;
    const promptEstimate = Math.ceil((input.prompt.length + (input.system?.length ?? 0)) / 2) + 16;
    const reserved = costOf({ promptTokens: promptEstimate, completionTokens: maxTokens }, pricing, requestCost);

    const id = randomUUID();
    const startedAt = Date.now();
    await inTransaction(db, async (tx) => {
      await credits.reserve(tx, principal.id, reserved);
      await tx.insert(Generation, {
        id,
        apiKeyId: principal.id,
        sessionId: null,
        model: input.model,
        kind: 'generate',
        streamed: meta.streamed,
        prompt: input.prompt,
        messages: input.system ? [{ role: 'system', content: input.system }, { role: 'user', content: input.prompt }] : null,
        response: '',
        promptTokens: 0,
        completionTokens: 0,
        creditsReserved: reserved,
        creditsCharged: 0,
        status: 'STREAMING',
        errorCode: null,
        doneReason: null,
        requestId: meta.requestId,
        firstTokenMs: null,
        totalDurationMs: null,
        createdAt: new Date(startedAt),
        finishedAt: null,
      });
    });

    let settle!: () => void;
    active.add(id, principal.id, controller, new Promise<void>((r) => (settle = r)));
    let text = '';
    let tokens = 0;
    let firstTokenMs: number | null = null;
    let finished = false;

    const finish = async (
      status: GenerationStatus,
      usage: { promptTokens: number; completionTokens: number },
      extra: { errorCode?: string | null; doneReason?: string | null },
    ): Promise<number> => {
      finished = true;
      // Nothing produced means nothing charged: a request that never reached a token costs no credits.
      const charged = status === 'COMPLETE' || tokens > 0 ? Math.min(reserved, costOf(usage, pricing, requestCost)) : 0;
      const durationMs = Date.now() - startedAt;
      await inTransaction(db, async (tx) => {
        await tx.update(
          Generation,
          { id, status: 'STREAMING' },
          {
            status,
            response: text,
            promptTokens: usage.promptTokens,
            completionTokens: usage.completionTokens,
            creditsCharged: charged,
            errorCode: extra.errorCode ?? null,
            doneReason: extra.doneReason ?? null,
            firstTokenMs,
            totalDurationMs: durationMs,
            finishedAt: new Date(),
          },
        );
        await credits.refund(tx, principal.id, reserved - charged);
      });
      log.info(
        { requestId: meta.requestId, generationId: id, key: principal.prefix, model: input.model, outcome: status, errorCode: extra.errorCode, tokens: usage.completionTokens, firstTokenMs, durationMs },
        'generation finished',
      );
      return charged;
    };

    try {
      const chunks = upstream.generateStream(
        { model: input.model, prompt: input.prompt, ...(input.system ? { system: input.system } : {}), options },
        controller.signal,
      );
      for await (const chunk of chunks) {
        if (chunk.done) {
          const usage = { promptTokens: chunk.prompt_eval_count ?? 0, completionTokens: chunk.eval_count ?? tokens };
          const doneReason = chunk.done_reason || 'stop';
          // Committed before the client hears that the answer is complete.
          const creditsCharged = await finish('COMPLETE', usage, { doneReason });
          yield {
            type: 'DONE',
            generationId: id,
            doneReason,
            usage: { ...usage, totalTokens: usage.promptTokens + usage.completionTokens },
            creditsCharged,
            durationMs: Date.now() - startedAt,
          };
          return;
        }
        if (!chunk.response) continue;
        firstTokenMs ??= Date.now() - startedAt;
        text += chunk.response;
        tokens++;
        yield { type: 'TOKEN', generationId: id, delta: chunk.response, tokenCount: 1 };
      }
      throw new GatewayError(ErrorCode.UPSTREAM_ERROR, 'Ollama ended the stream before it was complete.');
    } catch (e) {
      if (finished) throw e;
      const error = controller.signal.aborted
        ? new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.')
        : e instanceof GatewayError
          ? e
          : new GatewayError(ErrorCode.INTERNAL_SERVER_ERROR, 'Generation failed unexpectedly.', {}, { cause: e });
      if (error.code === ErrorCode.INTERNAL_SERVER_ERROR) log.error({ err: e, requestId: meta.requestId, generationId: id }, 'generation crashed');
      await finish(error.code === ErrorCode.CANCELLED ? 'CANCELLED' : 'ERROR', { promptTokens: 0, completionTokens: tokens }, { errorCode: error.code });
      if (error.code !== ErrorCode.CANCELLED) throw error;
    } finally {
      // Reached when the consumer stopped at a yield (return()): the client went away mid-stream.
      if (!finished) await finish('CANCELLED', { promptTokens: 0, completionTokens: tokens }, { errorCode: ErrorCode.CANCELLED });
      settle();
    }
  }
}
