import { Ollama } from 'ollama';
import type {
  ChatRequest,
  ChatResponse,
  EmbedRequest,
  EmbedResponse,
  GenerateRequest,
  GenerateResponse,
  ListResponse,
  ProgressResponse,
  ShowResponse,
} from 'ollama';
import type { CreateRequest } from 'ollama';
import { type AbortReason, mapPullError, mapUpstreamError } from './errors.js';
import { type ClientInit, OllamaHttpTransport } from './http-fetch.js';

export interface UpstreamTimeouts {
  /** Until the response headers arrive (Ollama may be loading the model meanwhile). */
  connectMs: number;
  /** Longest gap allowed between two chunks while the gateway is waiting on Ollama. */
  stallMs: number;
  /** The same for a pull: Ollama says nothing while it verifies a large download. */
  pullStallMs?: number;
}

/**
 * The gateway's only door to one Ollama host. Every call goes through the `ollama` npm client,
 * given a `fetch` (its documented option) that carries each request's AbortSignal (the client has
 * no way to take one), so cancellation, timeouts and disconnects close the HTTP request to Ollama.
 */
export class OllamaUpstream {
  /** How the client's requests travel: node:http with keep-alive (see http-fetch.ts). */
  private readonly transport = new OllamaHttpTransport();

  constructor(
    readonly host: string,
    private readonly timeouts: UpstreamTimeouts,
  ) {}

  /** Closes idle keep-alive connections to this host. */
  close(): void {
    this.transport.close();
  }

  /** Streams `/api/generate` chunks; throws GatewayErrors. */
  generateStream(request: Omit<GenerateRequest, 'stream'>, signal?: AbortSignal): AsyncGenerator<GenerateResponse> {
    return this.stream(request.model, signal, (client) => client.generate({ ...request, stream: true }));
  }

  /** Streams `/api/chat` chunks; throws GatewayErrors. */
  chatStream(request: Omit<ChatRequest, 'stream'>, signal?: AbortSignal): AsyncGenerator<ChatResponse> {
    return this.stream(request.model, signal, (client) => client.chat({ ...request, stream: true }));
  }

  /** Streams `/api/pull` progress; throws GatewayErrors. */
  pullStream(model: string, signal?: AbortSignal): AsyncGenerator<ProgressResponse> {
    return this.stream(model, signal, (client) => client.pull({ model, stream: true }), { stallMs: this.timeouts.pullStallMs ?? this.timeouts.connectMs }, mapPullError);
  }

  /** `/api/embed`: one vector per input, in one response; throws GatewayErrors. */
  embed(request: EmbedRequest, signal?: AbortSignal): Promise<EmbedResponse> {
    return this.once(request.model, signal, (c) => c.embed(request));
  }

  list(signal?: AbortSignal): Promise<ListResponse> {
    return this.once(undefined, signal, (c) => c.list());
  }

  ps(signal?: AbortSignal): Promise<ListResponse> {
    return this.once(undefined, signal, (c) => c.ps());
  }

  show(model: string, signal?: AbortSignal): Promise<ShowResponse> {
    return this.once(model, signal, (c) => c.show({ model }));
  }

  version(signal?: AbortSignal): Promise<string> {
    return this.once(undefined, signal, async (c) => (await c.version()).version);
  }

  async delete(model: string, signal?: AbortSignal): Promise<void> {
    await this.once(model, signal, (c) => c.delete({ model }));
  }

  /** Streams `/api/create` progress (forwarded for admins by Ollama's own API); throws GatewayErrors. */
  createStream(request: Omit<CreateRequest, 'stream'>, signal?: AbortSignal): AsyncGenerator<ProgressResponse> {
    return this.stream(request.model, signal, (client) => client.create({ ...request, stream: true }), { stallMs: this.timeouts.pullStallMs ?? this.timeouts.connectMs });
  }

  /** Streams `/api/push` progress; throws GatewayErrors. */
  pushStream(model: string, insecure: boolean, signal?: AbortSignal): AsyncGenerator<ProgressResponse> {
    return this.stream(model, signal, (client) => client.push({ model, insecure, stream: true }), { stallMs: this.timeouts.pullStallMs ?? this.timeouts.connectMs });
  }

  async copy(source: string, destination: string, signal?: AbortSignal): Promise<void> {
    await this.once(source, signal, (c) => c.copy({ source, destination }));
  }

  /** Loads (keepAlive > 0 or negative) or unloads (keepAlive 0) a model with an empty prompt. */
  async setResidency(model: string, keepAlive: number | string, numCtx?: number, signal?: AbortSignal): Promise<GenerateResponse> {
    return this.once(model, signal, (c) =>
      c.generate({ model, prompt: '', keep_alive: keepAlive, stream: false, ...(numCtx ? { options: { num_ctx: numCtx } } : {}) }),
    );
  }

  /** Loads a model (empty prompt); without keepAlive Ollama's own default (OLLAMA_KEEP_ALIVE) applies. */
  async load(model: string, opts: { keepAlive?: number | string; numCtx?: number } = {}, signal?: AbortSignal): Promise<GenerateResponse> {
    return this.once(model, signal, (c) =>
      c.generate({
        model,
        prompt: '',
        stream: false,
        ...(opts.keepAlive !== undefined ? { keep_alive: opts.keepAlive } : {}),
        ...(opts.numCtx ? { options: { num_ctx: opts.numCtx } } : {}),
      }),
    );
  }

  private client(signal: AbortSignal): Ollama {
    return new Ollama({
      host: this.host,
      // Aborted by the client's own signal (abort()) or by ours (cancellation, timeouts).
      fetch: (input, init) => this.transport.fetch(input as string | URL, init as ClientInit | undefined, signal),
    });
  }

  private async once<T>(model: string | undefined, signal: AbortSignal | undefined, call: (client: Ollama) => Promise<T>): Promise<T> {
    const guard = new AbortGuard(signal);
    guard.arm('connect-timeout', this.timeouts.connectMs);
    let complete = false;
    try {
      const result = await call(this.client(guard.signal));
      complete = true;
      return result;
    } catch (e) {
      throw mapUpstreamError(e, model, guard.reason);
    } finally {
      guard.dispose(complete);
    }
  }

  private async *stream<T>(
    model: string,
    signal: AbortSignal | undefined,
    start: (client: Ollama) => Promise<AsyncIterable<T>>,
    overrides: Partial<UpstreamTimeouts> = {},
    mapError: typeof mapUpstreamError = mapUpstreamError,
  ): AsyncGenerator<T> {
    const stallMs = overrides.stallMs ?? this.timeouts.stallMs;
    const guard = new AbortGuard(signal);
    let complete = false;
    try {
      guard.arm('connect-timeout', this.timeouts.connectMs);
      const parts = await start(this.client(guard.signal));
      guard.disarm();
      guard.waiting(stallMs);
      for await (const part of parts) {
        // The stall clock only runs while we wait on Ollama, not while the consumer is busy.
        guard.idle();
        // The final chunk (done / success) is the last Ollama sends: the response is complete.
        if ((part as { done?: boolean }).done || (part as { status?: string }).status === 'success') complete = true;
        yield part;
        guard.waiting(stallMs);
      }
      complete = true;
    } catch (e) {
      throw mapError(e, model, guard.reason);
    } finally {
      // Closes the HTTP request when the consumer stops early (break/return/throw).
      guard.dispose(complete);
    }
  }
}

/**
 * One AbortController per upstream call, remembering why it fired. The stall clock is a
 * timestamp per chunk and one lazily re-armed timer per call, not a timer per chunk.
 */
class AbortGuard {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private stallMs = 0;
  /** When the current wait on Ollama began (Date.now()); 0 while not waiting. */
  private waitingSince = 0;
  reason: AbortReason | undefined;
  private readonly onOuterAbort = () => this.abort('cancelled');

  constructor(private readonly outer: AbortSignal | undefined) {
    if (outer?.aborted) this.abort('cancelled');
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  arm(reason: AbortReason, ms: number): void {
    this.disarm();
    this.timer = setTimeout(() => this.abort(reason), ms);
  }

  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** A wait on Ollama begins: aborts with `stall-timeout` if it lasts `ms`. */
  waiting(ms: number): void {
    this.stallMs = ms;
    this.waitingSince = Date.now();
    if (!this.stallTimer && !this.controller.signal.aborted) this.stallTimer = setTimeout(this.checkStall, ms);
  }

  /** The wait ended (a chunk arrived); the clock stops until the next `waiting()`. */
  idle(): void {
    this.waitingSince = 0;
  }

  private readonly checkStall = (): void => {
    this.stallTimer = undefined;
    if (!this.waitingSince || this.controller.signal.aborted) return;
    const left = this.waitingSince + this.stallMs - Date.now();
    if (left <= 0) return this.abort('stall-timeout');
    this.stallTimer = setTimeout(this.checkStall, left);
  };

  /** Stops the timers; aborts the request unless it completed (an abort then only costs, and may cost the keep-alive connection). */
  dispose(complete = false): void {
    this.disarm();
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.waitingSince = 0;
    this.outer?.removeEventListener('abort', this.onOuterAbort);
    if (!complete && !this.controller.signal.aborted) this.controller.abort();
  }

  private abort(reason: AbortReason): void {
    if (this.controller.signal.aborted) return;
    this.reason = reason;
    this.controller.abort();
  }
}
