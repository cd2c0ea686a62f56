import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Ollama } from 'ollama';
import type {
  ChatRequest,
  ChatResponse,
  GenerateRequest,
  GenerateResponse,
  ListResponse,
  ProgressResponse,
  ShowResponse,
} from 'ollama';
import { type AbortReason, mapUpstreamError } from './errors.js';

export interface UpstreamTimeouts {
  /** Until the response headers arrive (Ollama may be loading the model meanwhile). */
  connectMs: number;
  /** Longest gap allowed between two chunks while the gateway is waiting on Ollama. */
  stallMs: number;
}

/**
 * The gateway's only door to one Ollama host. Calls go through the `ollama` npm client, with a
 * per-call fetch wrapper that gives each request an AbortSignal (the client has no way to take
 * one), so cancellation, timeouts and disconnects close the HTTP request to Ollama. The two calls
 * on every generation's path, streamed `/api/generate` and `/api/chat`, are sent with node:http on
 * a keep-alive agent and their NDJSON read line by line here instead (same requests, same error
 * semantics as the client: a non-2xx status is a ResponseError, an `{"error"}` line an Error, an
 * end without `done` "Did not receive done"): fetch and web streams cost about half a millisecond
 * of CPU per request and three async layers per token more.
 */
export class OllamaUpstream {
  /** `host` as the ollama client normalises it (scheme, default port 11434). */
  private readonly base: URL;
  private readonly agent: http.Agent;

  constructor(
    readonly host: string,
    private readonly timeouts: UpstreamTimeouts,
  ) {
    this.base = new URL((new Ollama({ host }) as unknown as { config: { host: string } }).config.host);
    const secure = this.base.protocol === 'https:';
    // Idle sockets are closed after a few seconds, as undici does, so none goes stale behind a proxy.
    this.agent = new (secure ? https : http).Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  }

  /** Streams `/api/generate` chunks; throws GatewayErrors. */
  generateStream(request: Omit<GenerateRequest, 'stream'>, signal?: AbortSignal): AsyncGenerator<GenerateResponse> {
    return this.post<GenerateResponse>('generate', { ...request, stream: true }, request.model, signal);
  }

  /** Streams `/api/chat` chunks; throws GatewayErrors. */
  chatStream(request: Omit<ChatRequest, 'stream'>, signal?: AbortSignal): AsyncGenerator<ChatResponse> {
    return this.post<ChatResponse>('chat', { ...request, stream: true }, request.model, signal);
  }

  /** Streams `/api/pull` progress; throws GatewayErrors. */
  pullStream(model: string, signal?: AbortSignal): AsyncGenerator<ProgressResponse> {
    return this.stream(model, signal, (client) => client.pull({ model, stream: true }), { stallMs: this.timeouts.connectMs });
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

  /** True when Ollama answers `/api/version` within `timeoutMs`. */
  async reachable(timeoutMs = 2000): Promise<boolean> {
    try {
      await this.version(AbortSignal.timeout(timeoutMs));
      return true;
    } catch {
      return false;
    }
  }

  /** POSTs a streaming request and yields its NDJSON objects; the last one is `done` (see the class comment). */
  private async *post<T extends { done?: boolean }>(endpoint: 'generate' | 'chat', body: unknown, model: string, signal: AbortSignal | undefined): AsyncGenerator<T> {
    const stallMs = this.timeouts.stallMs;
    const guard = new AbortGuard(signal);
    let request: ClientRequest | undefined;
    let response: IncomingMessage | undefined;
    let lines: LineReader | undefined;
    const onAbort = () => request?.destroy(abortError());
    let complete = false;
    try {
      guard.arm('connect-timeout', this.timeouts.connectMs);
      if (guard.signal.aborted) throw abortError();
      guard.signal.addEventListener('abort', onAbort, { once: true });
      const payload = JSON.stringify(body);
      response = await new Promise<IncomingMessage>((resolve, reject) => {
        const secure = this.base.protocol === 'https:';
        request = (secure ? https : http).request(
          {
            protocol: this.base.protocol,
            hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
            port: this.base.port,
            path: `${this.base.pathname.replace(/\/$/, '')}/api/${endpoint}`,
            method: 'POST',
            agent: this.agent,
            headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload), 'user-agent': USER_AGENT },
          },
          resolve,
        );
        request.once('error', reject);
        request.end(payload);
      });
      // From here on failures arrive through the response (its 'error' / 'close').
      request!.on('error', () => {});
      if (!response.statusCode || response.statusCode < 200 || response.statusCode > 299) throw await responseError(response);
      guard.disarm();
      lines = new LineReader(response);
      guard.waiting(stallMs);
      for (;;) {
        const line = await lines.next();
        if (line === null) throw new Error('Did not receive done or success response in stream.');
        let part: T & { error?: unknown };
        try {
          part = JSON.parse(line) as T & { error?: unknown };
        } catch {
          continue; // as the ollama client: a line that is not JSON is skipped
        }
        if (part !== null && typeof part === 'object' && 'error' in part) throw new Error(String(part.error));
        // The stall clock only runs while we wait on Ollama, not while the consumer is busy.
        guard.idle();
        if (part.done) {
          complete = true;
          yield part;
          return;
        }
        yield part;
        guard.waiting(stallMs);
      }
    } catch (e) {
      throw mapUpstreamError(e, model, guard.reason);
    } finally {
      guard.signal.removeEventListener('abort', onAbort);
      // A complete answer: read what is left (the end of the chunked body) so the socket goes back to the pool.
      if (complete) lines?.release();
      else request?.destroy();
      guard.dispose(complete);
    }
  }

  private client(signal: AbortSignal): Ollama {
    return new Ollama({
      host: this.host,
      fetch: (input, init) =>
        fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal }),
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
      throw mapUpstreamError(e, model, guard.reason);
    } finally {
      // Closes the HTTP request when the consumer stops early (break/return/throw).
      guard.dispose(complete);
    }
  }
}

const IDLE_SOCKET_MS = 4000;
const USER_AGENT = `llm-graphql-gateway (${process.arch} ${process.platform} Node.js/${process.version})`;

const abortError = () => Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });

/** The error the ollama client throws for a non-2xx answer (what mapUpstreamError reads: name, error, status_code). */
async function responseError(res: IncomingMessage): Promise<Error> {
  const status = res.statusCode ?? 0;
  let message = `Error ${status}: ${res.statusMessage ?? ''}`;
  const text = await new Promise<string>((resolve) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (s: string) => {
      if (body.length < 64 * 1024) body += s;
    });
    res.once('end', () => resolve(body));
    res.once('error', () => resolve(body));
    res.once('close', () => resolve(body));
  });
  if (String(res.headers['content-type'] ?? '').includes('application/json')) {
    try {
      const data = JSON.parse(text) as { error?: unknown };
      if (typeof data?.error === 'string' && data.error) message = data.error;
    } catch {
      // keep the status line
    }
  } else if (text) {
    message = text;
  }
  return Object.assign(new Error(message), { name: 'ResponseError', error: message, status_code: status });
}

/**
 * The lines of a response body, read only when asked for (the response stays paused meanwhile,
 * so a consumer that stops asking stops the socket: backpressure up to Ollama).
 */
class LineReader {
  private buffer = '';
  private pos = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly res: IncomingMessage) {
    res.setEncoding('utf8');
    res.on('readable', this.notify);
    res.once('end', () => {
      this.ended = true;
      this.notify();
    });
    res.once('error', (e) => {
      this.error ??= e;
      this.notify();
    });
    res.once('close', () => {
      // Closed before its end: the connection was lost mid-answer.
      if (!this.ended) this.error ??= Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
      this.notify();
    });
  }

  /** Reads whatever follows (the end of the body) without looking at it, so the socket can be reused. */
  release(): void {
    this.res.off('readable', this.notify);
    this.res.resume();
  }

  private readonly notify = (): void => {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  };

  /** The next non-empty line, or null at the end of the body. */
  async next(): Promise<string | null> {
    for (;;) {
      const nl = this.buffer.indexOf('\n', this.pos);
      if (nl >= 0) {
        const line = this.buffer.slice(this.pos, nl);
        this.pos = nl + 1;
        if (line.trim()) return line;
        continue;
      }
      const more = this.res.read() as string | null;
      if (more !== null) {
        this.buffer = this.pos < this.buffer.length ? this.buffer.slice(this.pos) + more : more;
        this.pos = 0;
        continue;
      }
      if (this.error) throw this.error;
      if (this.ended) {
        const rest = this.buffer.slice(this.pos);
        this.buffer = '';
        this.pos = 0;
        return rest.trim() ? rest : null;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
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
