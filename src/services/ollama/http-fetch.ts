import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

/** The part of `fetch`'s `init` the `ollama` client passes: method, headers as a plain object, a string body, a signal. */
export interface ClientInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal | null;
}

/**
 * A `fetch` for the `ollama` client (its documented `fetch` option), on `node:http` with a
 * keep-alive agent per Ollama host. The client still builds every request and parses every
 * answer (NDJSON lines, error bodies, the `{"error": …}` line after a 200); this only moves the
 * bytes. It answers with the part of a `Response` the client reads (`ok`, `status`,
 * `statusText`, `headers.get`, `json()`, `text()`, `body.getReader()`), reading the body straight
 * from the socket: Node 20's `fetch` (undici, web streams) was the largest single cost of a
 * non-streaming request and of each paced token. (With no delay between tokens at all, Node's
 * HTTP parser costs more per tiny chunk than undici; see docs/performance.md.)
 * Failures look like undici's, so they are classified the same way: a request that cannot be sent
 * rejects with `TypeError('fetch failed')` whose `cause` is the system error, a body cut short
 * fails its read with `TypeError('terminated')`, and an abort with the signal's `AbortError`.
 */
export class OllamaHttpTransport {
  /** Idle connections close after 4 s (as with fetch), before a server is likely to drop them under a reused request. */
  private readonly agents = { http: new http.Agent({ keepAlive: true, timeout: 4000 }), https: new https.Agent({ keepAlive: true, timeout: 4000 }) };

  /** `fetch(input, init)`, also aborted by `signal` (the gateway's own, for this call). */
  fetch(input: string | URL, init: ClientInit | undefined, signal?: AbortSignal): Promise<Response> {
    const signals = [init?.signal, signal].filter((s): s is AbortSignal => Boolean(s));
    const aborted = signals.find((s) => s.aborted);
    if (aborted) return Promise.reject(abortError(aborted));
    const url = typeof input === 'string' ? new URL(input) : input;
    const secure = url.protocol === 'https:';
    const body = init?.body;
    return new Promise<Response>((resolve, reject) => {
      const request = (secure ? https : http).request({
        agent: secure ? this.agents.https : this.agents.http,
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: init?.method ?? 'GET',
        headers: body === undefined ? init?.headers : { ...init?.headers, 'Content-Length': String(Buffer.byteLength(body)) },
      });
      let response: NodeResponse | undefined;
      const detach = () => {
        for (const s of signals) s.removeEventListener('abort', onAbort);
      };
      // The abort is reported here, not passed to destroy(): once a response is complete (even
      // unread), its socket no longer reports errors to the request and would emit it unheard.
      const onAbort = (event: Event) => {
        const error = abortError(event.target as AbortSignal);
        detach();
        if (response) response.abort(error);
        else reject(error);
        request.destroy();
      };
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
      request.on('error', (e) => {
        if (response) return; // the body reader reports it
        detach();
        reject(e.name === 'AbortError' ? e : new TypeError('fetch failed', { cause: e }));
      });
      request.on('response', (message) => {
        response = new NodeResponse(message, detach);
        resolve(response as unknown as Response);
      });
      request.end(body);
    });
  }

  /** Closes the idle keep-alive connections. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'AbortError' ? reason : new DOMException('This operation was aborted', 'AbortError');
}

/** What the `ollama` client reads of a `Response`, over a `node:http` response. */
class NodeResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): BodyReader };

  constructor(response: IncomingMessage, done: () => void) {
    this.status = response.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.statusText = response.statusMessage ?? '';
    this.headers = {
      get: (name) => {
        const value = response.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    };
    const reader = new BodyReader(response, done);
    this.body = { getReader: () => reader };
  }

  /** Fails the body with the abort (its reads reject with it). */
  abort(error: Error): void {
    this.body.getReader().fail(error);
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
 * `ReadableStreamDefaultReader.read()` straight from the response in paused mode: each read takes
 * everything buffered since the previous one as one chunk (a fast model's many small HTTP chunks
 * cost one decode and one split in the client, not one each), and the response's own high-water
 * mark pauses the socket while nobody reads, so backpressure reaches Ollama.
 */
class BodyReader {
  private ended = false;
  private failure: unknown;
  private waiting: { resolve: (r: ReadableStreamReadResult<Buffer>) => void; reject: (e: unknown) => void } | undefined;

  constructor(
    private readonly response: IncomingMessage,
    private readonly done: () => void,
  ) {
    response.on('readable', () => {
      const waiting = this.waiting;
      if (!waiting) return;
      const chunk = response.read() as Buffer | null;
      if (chunk === null) return;
      this.waiting = undefined;
      waiting.resolve({ done: false, value: chunk });
    });
    response.on('end', () => {
      this.ended = true;
      this.settle();
    });
    response.on('error', (e) => this.fail(e));
    response.on('close', () => {
      if (!this.ended) this.fail(new Error('other side closed'));
    });
  }

  read(): Promise<ReadableStreamReadResult<Buffer>> {
    const chunk = this.failure === undefined ? (this.response.read() as Buffer | null) : null;
    if (chunk !== null) return Promise.resolve({ done: false, value: chunk });
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  releaseLock(): void {}

  async cancel(): Promise<void> {
    this.response.destroy();
  }

  fail(e: Error): void {
    if (this.ended || this.failure !== undefined) return;
    this.failure = e.name === 'AbortError' ? e : new TypeError('terminated', { cause: e });
    this.settle();
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
