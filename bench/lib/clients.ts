// The three ways the benchmark talks to a model: straight to the emulator with the `ollama` client,
// through the gateway with graphql-ws (createClient over `ws`), and through the gateway with SSE
// (fetch + accept: text/event-stream). Each stream reports its time to first token and token count,
// and adds every token to a shared counter as it arrives (for throughput windows).

import { type Client, createClient } from 'graphql-ws';
import { Ollama } from 'ollama';
import WebSocket from 'ws';

export type Mode = 'direct' | 'ws' | 'sse';
export const MODES: Mode[] = ['direct', 'ws', 'sse'];

export interface StreamSpec {
  model: string;
  prompt: string;
  maxTokens: number;
}

export interface StreamOutcome {
  /** Request sent → first TOKEN (text) received, ms; null when no token came. */
  ttftMs: number | null;
  tokens: number;
  /** Tokens the server reported at the end (eval_count / usage.completionTokens), when it got there. */
  reportedTokens: number | null;
  durationMs: number;
  ok: boolean;
  cancelled: boolean;
  error?: string;
}

/** Live counter shared by the streams of a phase. */
export interface Sink {
  tokens: number;
  events: number;
}

export const SUBSCRIPTION = /* GraphQL */ `
  subscription BenchGenerate($input: GenerateInput!) {
    generate(input: $input) { type delta tokenCount usage { completionTokens } }
  }
`;

export const MUTATION = /* GraphQL */ `
  mutation BenchGenerateText($input: GenerateInput!) {
    generate(input: $input) { generationId text usage { completionTokens } }
  }
`;

const variables = (s: StreamSpec) => ({ input: { model: s.model, prompt: s.prompt, options: { maxTokens: s.maxTokens } } });

type GenerateEvent = { type?: string; delta?: string | null; tokenCount?: number | null; usage?: { completionTokens?: number } | null };
type Payload = { data?: { generate?: GenerateEvent | null } | null; errors?: Array<{ message: string; extensions?: { code?: string } }> };

function errorText(e: unknown): string {
  if (e instanceof Error) {
    // fetch wraps the reason ("fetch failed"): show the socket-level cause.
    const cause = e.cause as { code?: string; message?: string } | undefined;
    return cause ? `${e.message}: ${cause.code ?? cause.message ?? String(cause)}` : e.message;
  }
  if (Array.isArray(e)) return e.map((x) => (x as { message?: string }).message ?? String(x)).join('; ');
  if (e && typeof e === 'object' && 'code' in e) return `close ${(e as { code: number }).code} ${(e as { reason?: string }).reason ?? ''}`;
  return String(e);
}

/** Ties a per-stream AbortController to the phase's signal, without piling listeners on it. */
function linked(signal: AbortSignal): { controller: AbortController; unlink: () => void } {
  const controller = new AbortController();
  if (signal.aborted) {
    controller.abort();
    return { controller, unlink: () => {} };
  }
  const onAbort = () => controller.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  return { controller, unlink: () => signal.removeEventListener('abort', onAbort) };
}

// ---------------------------------------------------------------------------------------------
// (a) direct: the `ollama` npm client against the emulator

export class DirectTarget {
  readonly client: Ollama;
  constructor(readonly url: string) {
    this.client = new Ollama({ host: url });
  }

  async stream(spec: StreamSpec, sink: Sink, signal: AbortSignal): Promise<StreamOutcome> {
    const t0 = performance.now();
    let ttftMs: number | null = null;
    let tokens = 0;
    let reportedTokens: number | null = null;
    let abortIt: (() => void) | undefined;
    const onAbort = () => abortIt?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const it = await this.client.generate({ model: spec.model, prompt: spec.prompt, stream: true, options: { num_predict: spec.maxTokens } });
      abortIt = () => it.abort();
      if (signal.aborted) it.abort();
      for await (const chunk of it) {
        sink.events++;
        if (chunk.response) {
          if (ttftMs === null) ttftMs = performance.now() - t0;
          tokens++;
          sink.tokens++;
        }
        if (chunk.done) {
          reportedTokens = chunk.eval_count ?? null;
          break;
        }
      }
      return { ttftMs, tokens, reportedTokens, durationMs: performance.now() - t0, ok: true, cancelled: false };
    } catch (e) {
      return { ttftMs, tokens, reportedTokens, durationMs: performance.now() - t0, ok: false, cancelled: signal.aborted, error: errorText(e) };
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async request(spec: StreamSpec): Promise<{ ok: boolean; ms: number; tokens: number; error?: string }> {
    const t0 = performance.now();
    try {
      const r = await this.client.generate({ model: spec.model, prompt: spec.prompt, stream: false, options: { num_predict: spec.maxTokens } });
      return { ok: true, ms: performance.now() - t0, tokens: r.eval_count ?? 0 };
    } catch (e) {
      return { ok: false, ms: performance.now() - t0, tokens: 0, error: errorText(e) };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (b) gateway over graphql-ws

/** One authenticated graphql-ws connection (connection_init with the key, acknowledged). */
export async function connectWs(wsUrl: string, apiKey: string, timeoutMs = 30_000): Promise<Client> {
  let fail: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    keepAlive: 0,
    connectionParams: { 'x-api-key': apiKey },
    onNonLazyError: (e) => fail(new Error(`ws connect failed: ${errorText(e)}`)),
  });
  const connected = new Promise<void>((resolve) => {
    const off = client.on('connected', () => {
      off();
      resolve();
    });
  });
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('ws connect timed out')), timeoutMs).unref());
  try {
    await Promise.race([connected, failed, timer]);
  } catch (e) {
    void client.dispose();
    throw e;
  }
  return client;
}

/** What one gateway stream delivered (ws and SSE read the same payloads): first token, tokens, the first error. */
class StreamTally {
  private readonly t0 = performance.now();
  private ttftMs: number | null = null;
  private tokens = 0;
  private reportedTokens: number | null = null;
  error: string | undefined;

  constructor(private readonly sink: Sink) {}

  add(p: Payload): void {
    this.sink.events++;
    if (p.errors?.length) {
      this.error ??= `${p.errors[0].extensions?.code ?? ''} ${p.errors[0].message}`.trim();
      return;
    }
    const e = p.data?.generate;
    if (!e) return;
    if (e.type === 'TOKEN') {
      const n = e.tokenCount ?? 1;
      if (this.ttftMs === null) this.ttftMs = performance.now() - this.t0;
      this.tokens += n;
      this.sink.tokens += n;
    } else if (e.type === 'DONE') this.reportedTokens = e.usage?.completionTokens ?? null;
  }

  outcome(ok: boolean, cancelled: boolean, error?: string): StreamOutcome {
    return { ttftMs: this.ttftMs, tokens: this.tokens, reportedTokens: this.reportedTokens, durationMs: performance.now() - this.t0, ok, cancelled, error };
  }
}

export function wsStream(client: Client, spec: StreamSpec, sink: Sink, signal: AbortSignal): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const tally = new StreamTally(sink);
    let settled = false;
    const finish = (ok: boolean, cancelled: boolean, err?: string) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      resolve(tally.outcome(ok, cancelled, err));
    };
    const onAbort = () => {
      dispose();
      finish(false, true, 'cancelled');
    };
    const dispose = client.subscribe<GenerateEvent>(
      { query: SUBSCRIPTION, variables: variables(spec) },
      {
        next: (r) => tally.add(r as Payload),
        error: (e) => finish(false, signal.aborted, errorText(e)),
        complete: () => finish(tally.error === undefined, false, tally.error),
      },
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---------------------------------------------------------------------------------------------
// (c) gateway over SSE (graphql-yoga's "distinct connections" mode: one POST per subscription)

export async function sseStream(graphqlUrl: string, apiKey: string, spec: StreamSpec, sink: Sink, signal: AbortSignal): Promise<StreamOutcome> {
  const tally = new StreamTally(sink);
  const { controller, unlink } = linked(signal);
  try {
    const res = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': apiKey },
      body: JSON.stringify({ query: SUBSCRIPTION, variables: variables(spec) }),
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    const decoder = new TextDecoder();
    let buffer = '';
    let completed = false;
    const reader = res.body.getReader();
    outer: while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (block.startsWith(':')) continue; // ping
        if (block.startsWith('event: complete')) {
          completed = true;
          break outer;
        }
        const at = block.indexOf('data: ');
        if (at < 0) continue;
        tally.add(JSON.parse(block.slice(at + 6)) as Payload);
      }
    }
    if (completed) await reader.cancel().catch(() => {});
    const ok = completed && tally.error === undefined;
    return tally.outcome(ok, false, ok ? undefined : (tally.error ?? 'stream ended without complete'));
  } catch (e) {
    return tally.outcome(false, signal.aborted, errorText(e));
  } finally {
    unlink();
  }
}

/** One non-streaming `generate` mutation over HTTP POST (keep-alive via fetch's pool). */
export async function gatewayRequest(graphqlUrl: string, apiKey: string, spec: StreamSpec): Promise<{ ok: boolean; ms: number; tokens: number; error?: string }> {
  const t0 = performance.now();
  try {
    const res = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', 'x-api-key': apiKey },
      body: JSON.stringify({ query: MUTATION, variables: variables(spec) }),
    });
    const body = (await res.json()) as { data?: { generate?: { usage?: { completionTokens?: number } } | null }; errors?: Array<{ message: string }> };
    if (body.errors?.length || !body.data?.generate) return { ok: false, ms: performance.now() - t0, tokens: 0, error: body.errors?.[0]?.message ?? `HTTP ${res.status}` };
    return { ok: true, ms: performance.now() - t0, tokens: body.data.generate.usage?.completionTokens ?? 0 };
  } catch (e) {
    return { ok: false, ms: performance.now() - t0, tokens: 0, error: errorText(e) };
  }
}

/** A GraphQL POST (setup calls: create the key). */
export async function gql<T>(graphqlUrl: string, apiKey: string, query: string, vars?: Record<string, unknown>): Promise<T> {
  const res = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({ query, variables: vars }),
  });
  const body = (await res.json()) as { data?: T; errors?: Array<{ message: string }> };
  if (body.errors?.length || !body.data) throw new Error(`GraphQL error: ${body.errors?.map((e) => e.message).join('; ') ?? res.status}`);
  return body.data;
}
