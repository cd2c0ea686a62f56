import { randomUUID } from 'node:crypto';
import type { EmbedResponse } from 'ollama';
import type { GatewayDatabase } from '../../db/database.js';
import { type CreditLedger, costOf } from '../../access/credits.js';
import { finishUsageRow, insertUsageRow } from '../../db/generations.js';
import { ErrorCode, GatewayError, badInput, isGatewayError } from '../../platform/errors.js';
import type { ActiveStreams } from '../active-streams.js';
import { CapabilityCheck, type CapabilityLookup, showOnPool } from '../capabilities.js';
import type { AdmissionRelease, ModelDirectory, RequestAdmission, ResolvedModel } from '../hooks.js';
import type { OllamaSlots, SlotTicket } from '../../ollama/slots.js';
import { REFUSED_EXCERPT_CHARS, logRefused } from '../refusals.js';
import type { Principal } from '../../access/keys.js';
import type { ConcurrencyGate } from '../../access/limits/concurrency-gate.js';
import type { Logger } from '../../platform/logger.js';
import { modelKey } from '../../ollama/model-names.js';
import type { OllamaHost, OllamaPool } from '../../ollama/pool.js';
import type { EmbedInput, EmbedMeta, EmbedResult, Embedder } from './types.js';

export interface EmbeddingServiceDeps {
  db: GatewayDatabase;
  pool: OllamaPool;
  credits: CreditLedger;
  log: Logger;
  /** The catalogue: aliases, prices, keep_alive, capabilities already known, busy marks. */
  models: ModelDirectory;
  /** The key's rate limits (requests, tokens, concurrency), as for generations. */
  admission: RequestAdmission;
  /** Requests at once per client address, shared with generations. */
  gate?: ConcurrencyGate;
  /** Capabilities of a model the catalogue does not know yet (the fleet's cached /api/show); `/api/show` on the pool when absent. */
  capabilities?: CapabilityLookup;
  /** Ollama's capacity per (host, model): an embedding takes a slot like a generation. */
  slots: OllamaSlots;
  requestCost: number;
  /** Texts in one request (MAX_EMBED_INPUTS). */
  maxInputs: number;
  /** Characters over all texts of one request (MAX_PROMPT_CHARS). */
  maxChars: number;
  defaultKeepAlive: number | string;
  instanceId?: string;
  /** Running requests, so shutdown drains them and a revoked key's are aborted. */
  active?: ActiveStreams;
}

/** Largest `dimensions` accepted (no embedding model comes near it; Ollama ignores sizes above the model's). */
export const MAX_EMBED_DIMENSIONS = 65_536;
/** Tokens a tokenizer adds around each text (BOS, EOS). */
const TEXT_OVERHEAD_TOKENS = 2;

/**
 * Upper bound of the prompt tokens of a batch, to size the credit reservation: as for generations,
 * a token is rarely under 2 characters. The charge is what Ollama reports, never above this.
 */
export function embedTokenBound(input: readonly string[]): number {
  return input.reduce((n, text) => n + Math.ceil(text.length / 2) + TEXT_OVERHEAD_TOKENS, 16);
}

/** What the usage log keeps of a batch: a short excerpt (no vectors, not every text). */
function excerptOf(input: readonly string[]): string {
  const joined = input.join('\n');
  return joined.length > REFUSED_EXCERPT_CHARS ? `${joined.slice(0, REFUSED_EXCERPT_CHARS)}…` : joined;
}

/**
 * Embeddings on the gateway's terms: the catalogue resolves the model and its prices, a model
 * without the `embedding` capability is refused, the key's rate limits and the per-address gate
 * apply, credits are reserved with the conditional UPDATE before Ollama is asked and settled from
 * its `prompt_eval_count`, and each request leaves one usage-log row of kind `embed`.
 */
export class EmbeddingService implements Embedder {
  private readonly capabilities: CapabilityCheck;

  constructor(private readonly deps: EmbeddingServiceDeps) {
    this.capabilities = new CapabilityCheck(deps.capabilities ?? showOnPool(deps.pool));
  }

  async embed(principal: Principal, input: EmbedInput, meta: EmbedMeta): Promise<EmbedResult> {
    this.validate(input);
    const model = await this.deps.models.resolve(input.model);
    // CAPABILITY_MISSING unless the model embeds (capabilities from the catalogue's cache, else /api/show).
    await this.capabilities.require(model.name, model.capabilities, ['embedding']);
    const release = await this.admit(principal, input, model, meta);
    let totalTokens = 0;
    try {
      const result = await this.run(principal, input, model, meta);
      totalTokens = result.usage.promptTokens;
      return result;
    } finally {
      release({ totalTokens });
    }
  }

  private validate(input: EmbedInput): void {
    const { maxInputs, maxChars } = this.deps;
    if (!input.model.trim()) throw badInput('model must not be empty.', { field: 'model' });
    if (input.input.length === 0) throw badInput('input must hold at least one text.', { field: 'input' });
    if (maxInputs > 0 && input.input.length > maxInputs)
      throw badInput(`At most ${maxInputs} texts per request (this one has ${input.input.length}).`, { field: 'input', limit: 'maxEmbedInputs' });
    const chars = input.input.reduce((n, t) => n + t.length, 0);
    if (chars > maxChars) throw badInput(`The texts are longer than ${maxChars} characters together.`, { field: 'input', limit: 'maxPromptChars' });
    const dims = input.dimensions;
    if (dims !== null && dims !== undefined && (!Number.isInteger(dims) || dims < 1 || dims > MAX_EMBED_DIMENSIONS))
      throw badInput(`dimensions must be an integer from 1 to ${MAX_EMBED_DIMENSIONS}.`, { field: 'dimensions' });
  }

  /** Per address, then per key; a refusal leaves one ERROR row like a refused generation. */
  private async admit(principal: Principal, input: EmbedInput, model: ResolvedModel, meta: EmbedMeta): Promise<AdmissionRelease> {
    let leave: (() => void) | undefined;
    try {
      leave = this.deps.gate?.enter(meta.clientIp);
      const release = await this.deps.admission.admit(principal, { streamed: false });
      return (used) => {
        leave?.();
        release(used);
      };
    } catch (e) {
      leave?.();
      if (e instanceof GatewayError) await this.refused(principal, input, model, meta, e);
      throw e;
    }
  }

  private refused(principal: Principal, input: EmbedInput, model: ResolvedModel, meta: EmbedMeta, e: GatewayError, host: string | null = null) {
    return logRefused(this.deps, principal, { kind: 'embed', prompt: excerptOf(input.input) }, model.name, { requestId: meta.requestId, streamed: false }, e, host);
  }

  /** Reserves the credits and the usage row, then runs the request as one of the active streams. */
  private async run(principal: Principal, input: EmbedInput, model: ResolvedModel, meta: EmbedMeta): Promise<EmbedResult> {
    const { deps } = this;
    const id = randomUUID();
    const startedAt = Date.now();
    const reserved = costOf({ promptTokens: embedTokenBound(input.input), completionTokens: 0 }, model.pricing, deps.requestCost);
    try {
      await deps.db.sqlClient.transaction(async (tx) => {
        await deps.credits.reserve(tx, principal.id, reserved);
        await insertUsageRow(tx, {
          id,
          apiKeyId: principal.id,
          sessionId: null,
          model: model.name,
          kind: 'embed',
          streamed: false,
          prompt: excerptOf(input.input),
          messages: null,
          requestId: meta.requestId,
          host: null,
          instanceId: deps.instanceId ?? null,
          createdAt: new Date(startedAt),
          status: 'STREAMING',
          creditsReserved: reserved,
        });
      });
    } catch (e) {
      if (e instanceof GatewayError) await this.refused(principal, input, model, meta, e);
      throw e;
    }

    // Aborted by the client (meta.signal) or by the gateway: revocation, shutdown (the reason says which).
    const controller = new AbortController();
    const signal = meta.signal ? AbortSignal.any([meta.signal, controller.signal]) : controller.signal;
    let finished!: () => void;
    deps.active?.add(id, principal.id, controller, new Promise<void>((r) => (finished = r)));
    try {
      return await this.call(principal, input, model, { ...meta, signal }, { id, startedAt, reserved, stoppedBy: controller.signal });
    } finally {
      finished();
    }
  }

  /** Asks Ollama, then settles: the row, the charge and the refund. */
  private async call(
    principal: Principal,
    input: EmbedInput,
    model: ResolvedModel,
    meta: EmbedMeta & { signal: AbortSignal },
    run: { id: string; startedAt: number; reserved: number; stoppedBy: AbortSignal },
  ): Promise<EmbedResult> {
    const { deps } = this;
    const { id, startedAt, reserved } = run;
    let host: OllamaHost | undefined;
    const settle = async (status: 'COMPLETE' | 'CANCELLED' | 'ERROR', promptTokens: number, errorCode: string | null) => {
      // Ollama answers an embedding whole or not at all: only a complete answer is paid for.
      const charged = status === 'COMPLETE' ? Math.min(reserved, costOf({ promptTokens, completionTokens: 0 }, model.pricing, deps.requestCost)) : 0;
      const durationMs = Date.now() - startedAt;
      await deps.db.sqlClient.transaction(async (tx) => {
        await finishUsageRow(tx, id, {
          status,
          response: '',
          thinking: null,
          toolCalls: null,
          promptTokens,
          completionTokens: 0,
          creditsCharged: charged,
          errorCode,
          doneReason: status === 'COMPLETE' ? 'stop' : null,
          firstTokenMs: null,
          host: host?.url ?? null,
          totalDurationMs: durationMs,
          finishedAt: new Date(),
        });
        await deps.credits.refund(tx, principal.id, reserved - charged);
      });
      deps.log.info({ requestId: meta.requestId, generationId: id, key: principal.prefix, model: model.name, kind: 'embed', outcome: status, errorCode, promptTokens, durationMs }, 'embedding finished');
      return charged;
    };

    let response: EmbedResponse;
    try {
      response = await this.ask(model, input, meta, (h) => (host = h));
      if (!Array.isArray(response.embeddings) || response.embeddings.length !== input.input.length)
        throw new GatewayError(ErrorCode.UPSTREAM_ERROR, `Ollama answered ${response.embeddings?.length ?? 0} embeddings for ${input.input.length} texts.`);
    } catch (e) {
      const error = meta.signal.aborted
        ? run.stoppedBy.reason instanceof GatewayError
          ? run.stoppedBy.reason
          : new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.')
        : isGatewayError(e)
          ? e
          : new GatewayError(ErrorCode.INTERNAL_SERVER_ERROR, 'Embedding failed unexpectedly.', {}, { cause: e });
      if (!isGatewayError(e)) deps.log.error({ err: e, requestId: meta.requestId, generationId: id }, 'embedding crashed');
      await settle(meta.signal.aborted ? 'CANCELLED' : 'ERROR', 0, error.code);
      throw error;
    }
    const promptTokens = response.prompt_eval_count ?? 0;
    const creditsCharged = await settle('COMPLETE', promptTokens, null);
    return { generationId: id, model: model.name, embeddings: response.embeddings, usage: { promptTokens }, creditsCharged };
  }

  /**
   * `/api/embed` on the best host for the model, holding one of its slots (Ollama's capacity);
   * a host that cannot be reached, or lacks the model, hands over to the next one.
   */
  private async ask(model: ResolvedModel, input: EmbedInput, meta: EmbedMeta, onHost: (h: OllamaHost) => void): Promise<EmbedResponse> {
    const { deps } = this;
    const candidates = await deps.pool.candidates(model.name);
    const healthy = candidates.filter((h) => h.isHealthy);
    const key = modelKey(model.name);
    const request = {
      model: model.name,
      input: input.input,
      keep_alive: model.keepAlive ?? deps.defaultKeepAlive,
      ...(input.truncate !== null && input.truncate !== undefined ? { truncate: input.truncate } : {}),
      ...(input.dimensions ? { dimensions: input.dimensions } : {}),
    };
    let ticket: SlotTicket<OllamaHost> = await deps.slots.enter(key, healthy.length > 0 ? healthy : candidates, meta.signal);
    try {
      let host = await ticket.granted;
      const rest = candidates.filter((h) => h !== host);
      for (;;) {
        onHost(host);
        const notBusy = deps.models.markBusy(model.name, host.url);
        const close = host.open();
        try {
          const response = await host.upstream.embed(request, meta.signal);
          host.markUp();
          host.markLoaded(model.name);
          return response;
        } catch (e) {
          const next = rest.shift();
          const retriable = isGatewayError(e) && (e.code === ErrorCode.UPSTREAM_UNAVAILABLE || e.code === ErrorCode.MODEL_NOT_FOUND);
          if (!next || !retriable || meta.signal?.aborted) throw e;
          if (e.code === ErrorCode.UPSTREAM_UNAVAILABLE) host.markDown(e.message);
          deps.log.warn({ requestId: meta.requestId, model: model.name, host: host.url, next: next.url, errorCode: e.code }, 'Ollama failed before answering; trying again');
          ticket.release();
          ticket = await deps.slots.enter(key, [next], meta.signal);
          host = await ticket.granted;
        } finally {
          close();
          notBusy();
        }
      }
    } finally {
      ticket.release();
    }
  }
}
