import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';

/** The part of `fetch`'s `init` the `ollama` client passes: method, headers as a plain object, a string body, a signal. */
export interface ClientInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal | null;
}

/** The dispatch controller of undici 7's handler API (what this module uses of it). */
interface DispatchController {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** While this much of a body waits to be read, the connection is paused (backpressure reaches Ollama). */
const PAUSE_ABOVE_BYTES = 64 * 1024;

/**
 * A `fetch` for the `ollama` client (its documented `fetch` option), on undici's `Agent.dispatch`:
 * its HTTP parser hands each body chunk straight to a handler, with no request object, no
 * readable stream and no web stream in between. The client still builds every request and parses
 * every answer (NDJSON lines, error bodies, the `{"error": …}` line after a 200); this only moves
 * the bytes. Node 20's own `fetch` (undici with web streams) was the largest single cost of a
 * non-streaming request and of each paced token, and `node:http`'s client (parser callbacks into
 * a readable stream per chunk) a large part of relaying fast tokens; measured on the `ollama`
 * client with 100 streams of 200 tokens, dispatch costs about a fifth less CPU per token.
 * It answers with the part of a `Response` the client reads (`ok`, `status`, `statusText`,
 * `headers.get`, `json()`, `text()`, `body.getReader()`). Failures look like undici's fetch, so
 * they are classified the same way: a request that cannot be sent rejects with
 * `TypeError('fetch failed')` whose `cause` is the system error, a body cut short fails its read
 * with `TypeError('terminated')`, and an abort with the signal's `AbortError`.
 */
export class OllamaHttpTransport {
  /**
   * Idle connections close after 4 s (as with fetch), before a server is likely to drop them
   * under a reused request. No header or body timeouts here: the caller (upstream.ts) owns the
   * connect and stall timeouts, through the signal.
   */
  private readonly agent = new Agent({ keepAliveTimeout: 4000, keepAliveMaxTimeout: 4000, headersTimeout: 0, bodyTimeout: 0 });

  /** `fetch(input, init)`, also aborted by `signal` (the gateway's own, for this call). */
  fetch(input: string | URL, init: ClientInit | undefined, signal?: AbortSignal): Promise<Response> {
    const signals = [init?.signal, signal].filter((s): s is AbortSignal => Boolean(s));
    const aborted = signals.find((s) => s.aborted);
    if (aborted) return Promise.reject(abortError(aborted));
    const url = typeof input === 'string' ? new URL(input) : input;
    return new Promise<Response>((resolve, reject) => {
      let controller: DispatchController | undefined;
      let body: BodyReader | undefined;
      const detach = () => {
        for (const s of signals) s.removeEventListener('abort', onAbort);
      };
      // Before the answer the promise rejects (a second rejection is a no-op); after it, the body's reads fail.
      const fail = (error: Error) => {
        detach();
        if (body) body.fail(error);
        else reject(error);
      };
      const onAbort = (event: Event) => {
        const error = abortError(event.target as AbortSignal);
        fail(error);
        controller?.abort(error);
      };
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
      const handler = {
        onRequestStart: (c: DispatchController) => {
          controller = c;
          const gone = signals.find((s) => s.aborted);
          if (gone) c.abort(abortError(gone)); // aborted before undici took the request
        },
        onResponseStart: (c: DispatchController, status: number, headers: IncomingHttpHeaders, statusText?: string) => {
          if (status < 200) return; // 1xx: the real answer follows
          body = new BodyReader(c, detach);
          resolve(new DispatchResponse(status, statusText ?? '', headers, body) as unknown as Response);
        },
        onResponseData: (_c: DispatchController, chunk: Buffer) => body?.push(chunk),
        onResponseEnd: () => body?.end(),
        onResponseError: (_c: DispatchController, error: Error) =>
          fail(error.name === 'AbortError' ? error : new TypeError(body ? 'terminated' : 'fetch failed', { cause: error })),
      };
      this.agent.dispatch(
        { origin: url.origin, path: `${url.pathname}${url.search}`, method: (init?.method ?? 'GET') as Dispatcher.HttpMethod, headers: init?.headers, body: init?.body ?? null },
        handler as unknown as Dispatcher.DispatchHandler,
      );
    });
  }

  /** Closes the connections (at shutdown). */
  close(): void {
    void this.agent.destroy().catch(() => {});
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'AbortError' ? reason : new DOMException('This operation was aborted', 'AbortError');
}

/** What the `ollama` client reads of a `Response`. */
class DispatchResponse {
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): BodyReader };

  constructor(
    readonly status: number,
    readonly statusText: string,
    headers: IncomingHttpHeaders,
    reader: BodyReader,
  ) {
    this.ok = status >= 200 && status < 300;
    this.headers = {
      get: (name) => {
        const value = headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    };
    this.body = { getReader: () => reader };
  }

  async text(): Promise<string> {
    const reader = this.body.getReader();
    const parts: Buffer[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
    return Buffer.concat(parts).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }
}

/**
 * `ReadableStreamDefaultReader.read()` over the chunks undici hands in: each read takes everything
 * buffered since the previous one as one chunk (a fast model's many small HTTP chunks cost one
 * decode and one split in the client, not one each). Above PAUSE_ABOVE_BYTES unread, the
 * connection is paused until the next read, so backpressure reaches Ollama.
 */
class BodyReader {
  private parts: Buffer[] = [];
  private bytes = 0;
  private paused = false;
  private ended = false;
  private failure: Error | undefined;
  private waiting: { resolve: (r: ReadableStreamReadResult<Buffer>) => void; reject: (e: unknown) => void } | undefined;

  constructor(
    private readonly controller: DispatchController,
    private readonly done: () => void,
  ) {}

  push(chunk: Buffer): void {
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      return waiting.resolve({ done: false, value: chunk });
    }
    this.parts.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes > PAUSE_ABOVE_BYTES && !this.paused) {
      this.paused = true;
      this.controller.pause();
    }
  }

  end(): void {
    this.ended = true;
    this.settle();
  }

  fail(e: Error): void {
    if (this.ended || this.failure !== undefined) return;
    this.failure = e;
    this.settle();
  }

  read(): Promise<ReadableStreamReadResult<Buffer>> {
    if (this.parts.length) {
      const value = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.bytes);
      this.parts = [];
      this.bytes = 0;
      if (this.paused) {
        this.paused = false;
        this.controller.resume();
      }
      return Promise.resolve({ done: false, value });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  releaseLock(): void {}

  async cancel(): Promise<void> {
    const aborted = new DOMException('This operation was aborted', 'AbortError');
    this.fail(aborted);
    this.controller.abort(aborted);
  }

  private settle(): void {
    this.done();
    const waiting = this.waiting;
    if (!waiting) return;
    this.waiting = undefined;
    if (this.failure !== undefined) waiting.reject(this.failure);
    else waiting.resolve({ done: true, value: undefined });
  }
}
