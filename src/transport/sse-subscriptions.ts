import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ExecutionArgs, type ExecutionResult, GraphQLError, Lexer, Source, TokenKind } from 'graphql';
import { createGraphQLError, getSSEProcessor, isAsyncIterable, mapAsyncIterator, processRegularResult } from 'graphql-yoga';
import type { Histogram, Registry } from 'prom-client';
import type { Config } from '../config.js';
import { readBodyWithin, sendJsonError, bodyTooLarge } from './http-guards.js';
import { GRAPHQL_PATH, type AuthedRequest, type GatewayYoga } from './yoga.js';

/** What a request carries once its body (if any) is read; hardening.prepareGraphQL may have read it already. */
type BodiedRequest = AuthedRequest & { body?: Buffer };

/** The GraphQL-over-HTTP parameters, as yoga's GET and JSON parsers produce them. */
interface GraphQLParams {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  extensions?: Record<string, unknown> | null;
}

type OperationType = 'query' | 'mutation' | 'subscription';

/** yoga's maskedErrors options (private in its typings): the gateway's mask function wrapped by yoga. */
interface MaskedErrorsOpts {
  maskError(error: unknown, message: string, isDev?: boolean): Error;
  errorMessage: string;
  isDev?: boolean;
}

const PING = ':\n\n';
const PING_INTERVAL_MS = 12_000;
const COMPLETE = 'event: complete\ndata:\n\n';
/** The headers of yoga's SSE processor (node_modules/graphql-yoga/esm/plugins/result-processor/sse.js). */
const SSE_HEADERS = { 'content-type': 'text/event-stream', connection: 'keep-alive', 'cache-control': 'no-cache', 'content-encoding': 'none' };
const PARAM_NAMES = new Set(['query', 'variables', 'operationName', 'extensions']);
const OPERATION_KEYWORDS = new Set<string>(['query', 'mutation', 'subscription']);
const MAX_REMEMBERED_QUERIES = 256;
const MAX_REMEMBERED_QUERY_CHARS = 8192;

/**
 * GraphQL subscriptions over SSE ("distinct connections" mode: graphql-sse, urql, Apollo) served
 * on the node response itself: the operation runs through yoga's envelop pipeline
 * (`yoga.getEnveloped`: armor, masked errors, operation log, metrics, the context factory), as
 * graphql-ws operations do, but without yoga's fetch layer (a `Request` built from the
 * IncomingMessage, a `Response` with a ReadableStream piped back), which cost SSE streams their
 * first-token time and throughput (docs/performance.md). The wire format is yoga's SSE
 * processor's, byte for byte; each event is one `res.write`, and the next event is pulled only
 * once the client drained the last one.
 *
 * Only requests that are surely SSE subscriptions come here (`claims`, then the document's
 * selected operation); anything else goes to yoga with the body already read, so yoga answers
 * it exactly as before. The router calls this after the edge authenticated the request and
 * hardening prepared it (body limits, slow-client guard).
 */
export function createSseSubscriptions(config: Config, yoga: GatewayYoga, registry: Registry) {
  const operationTypes = new OperationTypeCache(config.limits.graphqlMaxTokens);
  // graphql_yoga_http_duration: yoga's prometheus plugin observes it in its server adapter's
  // onRequest/onResponse, which this path skips. Observed here at the same moment (the response's
  // head), with the labels src/plugins/use-graphql-metrics.ts leaves on, and like yoga's only for a
  // document that parsed.
  let httpDuration: Histogram | undefined;
  const observeHead = (req: IncomingMessage, status: number, startedAt: number | undefined) => {
    if (startedAt === undefined) return;
    httpDuration ??= registry.getSingleMetric('graphql_yoga_http_duration') as Histogram | undefined;
    httpDuration?.observe({ operationType: 'subscription', method: req.method, statusCode: status }, (Date.now() - startedAt) / 1000);
  };
  const maskedErrors = (yoga as unknown as { maskedErrorsOpts: MaskedErrorsOpts | null }).maskedErrorsOpts;
  const cors = config.corsOrigins.length ? { origins: config.corsOrigins } : undefined;
  let open = 0;
  let served = 0;

  /** yoga's handleError (not exported): masked errors, an abort is no error. */
  const errorsOf = (error: unknown): GraphQLError[] => {
    if (error && typeof error === 'object' && 'errors' in error && Array.isArray(error.errors)) return [...new Set(error.errors.flatMap(errorsOf))];
    if (isAbortError(error)) return [];
    if (!maskedErrors) return [error instanceof GraphQLError ? error : createGraphQLError(String((error as Error)?.message ?? error))];
    const masked = maskedErrors.maskError(error, maskedErrors.errorMessage, maskedErrors.isDev);
    return [masked instanceof GraphQLError ? masked : createGraphQLError(masked.message, { originalError: masked })];
  };

  const handToYoga = (req: BodiedRequest, res: ServerResponse, body?: Buffer) => {
    // @whatwg-node/server takes a pre-read body from `req.body` instead of the stream.
    if (body) req.body = body;
    void yoga.handle(req, res);
  };

  /** Runs the operation as yoga's handleParams does: parse, validate, context, subscribe; failures become `{ errors }`. */
  const run = async (
    req: BodiedRequest,
    res: ServerResponse,
    params: GraphQLParams,
    signal: AbortSignal,
    onParsed: () => void,
  ): Promise<ExecutionResult | AsyncIterable<ExecutionResult>> => {
    try {
      const enveloped = yoga.getEnveloped({ req, res, params, signal } as never);
      let document;
      try {
        document = enveloped.parse(params.query);
      } catch (e) {
        // What yoga's usePreventMutationViaGET adds to a parse error of an HTTP request.
        if (e instanceof GraphQLError) {
          const extensions = e.extensions as Record<string, unknown> & { http?: { spec?: boolean; status?: number } };
          extensions.code ||= 'GRAPHQL_PARSE_FAILED';
          const http = (extensions.http ||= {});
          http.spec ||= true;
          http.status ||= 400;
        }
        throw e;
      }
      onParsed();
      const errors = enveloped.validate(enveloped.schema, document);
      if (errors.length) return { errors };
      const args: ExecutionArgs = {
        schema: enveloped.schema,
        document,
        contextValue: await enveloped.contextFactory(),
        variableValues: params.variables,
        operationName: params.operationName,
      };
      const result = (await enveloped.subscribe(args)) as ExecutionResult | AsyncIterable<ExecutionResult>;
      if (!isAsyncIterable(result)) return result;
      // As yoga's handleParams: an error thrown by the stream becomes its last event; an abort ends it.
      return mapAsyncIterator(result, (v) => v, (error: unknown) => {
        if (isAbortError(error)) throw error;
        return { errors: errorsOf(error) };
      });
    } catch (error) {
      return { errors: errorsOf(error) };
    }
  };

  /** Writes a stream of results: the initial ping, one write per event, pings while idle, `complete`. */
  const stream = async (req: BodiedRequest, res: ServerResponse, results: AsyncIterable<ExecutionResult>, startedAt: number | undefined) => {
    const iterator = results[Symbol.asyncIterator]();
    let closed = false;
    let wakeUp: (() => void) | undefined;
    const onClose = () => {
      closed = true;
      wakeUp?.();
      // As the ReadableStream's cancel in yoga's SSE processor: end the source at once.
      void Promise.resolve(iterator.return?.()).catch(() => {});
    };
    res.once('close', onClose);
    res.writeHead(200, { ...SSE_HEADERS, ...corsHeaders(req, cors) });
    observeHead(req, 200, startedAt);
    res.write(PING);
    // A ping is skipped while output waits for the client (yoga's: while the stream is full).
    const ping = setInterval(() => !res.writableNeedDrain && res.write(PING), PING_INTERVAL_MS);
    open++;
    served++;
    try {
      while (!closed) {
        let step: IteratorResult<ExecutionResult>;
        try {
          step = await iterator.next();
        } catch {
          // An abort (the client left, or its key was revoked): the response is gone or goes now.
          return void res.destroy();
        }
        if (closed) return;
        if (step.done) return void res.end(COMPLETE);
        if (step.value == null) continue;
        if (!res.write(`event: next\ndata: ${jsonStringifyResultWithoutInternals(step.value)}\n\n`) && !closed) {
          // Backpressure: the next event is pulled once the client has read this one (or has gone).
          await new Promise<void>((resolve) => {
            wakeUp = resolve;
            res.once('drain', resolve);
          });
          res.off('drain', wakeUp!);
          wakeUp = undefined;
        }
      }
    } finally {
      open--;
      clearInterval(ping);
      res.off('close', onClose);
    }
  };

  /** A result that is not a stream (a parse or validation error, a subscription refused at once), answered by yoga's own processors. */
  const answerOnce = async (req: BodiedRequest, res: ServerResponse, result: ExecutionResult, processor: NonStreamProcessor, startedAt: number | undefined) => {
    const response =
      processor.kind === 'sse'
        ? await getSSEProcessor()(result, yoga.fetchAPI, 'text/event-stream')
        : await processRegularResult(result, yoga.fetchAPI, processor.mediaType);
    const body = await response.text();
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => (headers[name] = value));
    res.writeHead(response.status, { ...headers, ...corsHeaders(req, cors) });
    observeHead(req, response.status, startedAt);
    res.end(body);
  };

  return {
    /** SSE subscription streams open now (for tests). */
    get open() {
      return open;
    },

    /** SSE subscription streams this writer has begun since start (for tests). */
    get served() {
      return served;
    },

    /**
     * Before the body is read: true when the request may be an SSE subscription this module serves
     * (GET, or POST with a JSON body; Accept asks for text/event-stream and, for a result that is
     * not a stream, does not pick multipart; not GraphiQL's page).
     */
    claims(req: IncomingMessage): boolean {
      if (req.method !== 'GET' && req.method !== 'POST') return false;
      if (req.url !== GRAPHQL_PATH && !req.url?.startsWith(`${GRAPHQL_PATH}?`)) return false;
      const accept = req.headers.accept;
      if (!accept || !/text\/event-stream/i.test(accept) || /text\/html/i.test(accept)) return false;
      if (req.headers['content-encoding'] !== undefined) return false;
      if (req.method === 'POST' && !isJsonContentType(req.headers['content-type'])) return false;
      return nonStreamProcessor(accept) !== undefined;
    },

    /** Serves a request `claims` accepted: streams it when it is a subscription, else hands it to yoga. */
    async serve(req: BodiedRequest, res: ServerResponse): Promise<void> {
      const startedAt = Date.now();
      let body: Buffer | undefined;
      if (req.method === 'POST') {
        // The router refused a declared length over MAX_BODY_BYTES; a chunked body was read by hardening.
        const read = req.body ?? (await readBodyWithin(req, config.maxBodyBytes).catch(() => null));
        if (read === null) return; // the client went away mid-body
        if (read === undefined) {
          const { message, extensions } = bodyTooLarge(config.maxBodyBytes);
          return sendJsonError(res, 413, message, extensions);
        }
        body = read;
      }
      const params = body ? paramsFromJson(body) : paramsFromUrl(req.url!);
      const processor = nonStreamProcessor(req.headers.accept!);
      if (!params || !processor || operationTypes.selected(params.query, params.operationName) !== 'subscription') return handToYoga(req, res, body);

      // The signal the context carries (yoga.ts callerOf): aborted when the client goes away before the end.
      const abort = new AbortController();
      res.once('close', () => !res.writableFinished && abort.abort(new DOMException('The client closed the SSE stream.', 'AbortError')));
      let parsed = false;
      const result = await run(req, res, params, abort.signal, () => (parsed = true));
      const observedFrom = parsed ? startedAt : undefined;
      if (res.destroyed) {
        // The client left while the operation started: end its stream (the abort signal already fired).
        if (isAsyncIterable(result)) void Promise.resolve(result[Symbol.asyncIterator]().return?.()).catch(() => {});
        return;
      }
      if (isAsyncIterable(result)) return stream(req, res, result, observedFrom);
      return answerOnce(req, res, result, processor, observedFrom);
    },
  };
}

export type SseSubscriptions = ReturnType<typeof createSseSubscriptions>;

type NonStreamProcessor = { kind: 'sse' } | { kind: 'regular'; mediaType: string };

/**
 * The processor yoga's useResultProcessors picks for a result that is not a stream, given the
 * Accept header (its last match wins, in yoga's order: SSE, multipart, JSON); undefined when it
 * would be multipart or nothing, which this module leaves to yoga. A stream always goes to SSE
 * here, as in yoga, since Accept names text/event-stream.
 */
export function nonStreamProcessor(accept: string): NonStreamProcessor | undefined {
  const asked = acceptedMediaTypes(accept);
  let picked: NonStreamProcessor | 'multipart' | undefined;
  const candidates: Array<[string[], (mediaType: string) => NonStreamProcessor | 'multipart']> = [
    [['text/event-stream'], () => ({ kind: 'sse' })],
    [['multipart/mixed'], () => 'multipart'],
    [['application/graphql-response+json', 'application/json'], (mediaType) => ({ kind: 'regular', mediaType })],
  ];
  for (const [mediaTypes, make] of candidates) {
    for (const requested of asked) for (const offered of mediaTypes) if (mediaTypeMatches(offered, requested)) picked = make(offered);
  }
  if (!asked.includes('text/event-stream')) return undefined;
  return picked === 'multipart' ? undefined : picked;
}

/** yoga's getMediaTypesForRequestInOrder: the media types asked for with utf-8 (or no) charset, last first. */
function acceptedMediaTypes(accept: string): string[] {
  const out: string[] = [];
  for (const entry of accept.replace(/\s/g, '').toLowerCase().split(',')) {
    const [mediaType, ...parameters] = entry.split(';');
    const charset = parameters.find((p) => p.includes('charset=')) ?? 'charset=utf-8';
    if (mediaType !== undefined && charset === 'charset=utf-8') out.push(mediaType);
  }
  return out.reverse();
}

function mediaTypeMatches(asked: string, offered: string): boolean {
  const [askedType, askedSub] = asked.split('/');
  const [type, sub] = offered.split('/');
  return (type === '*' || type === askedType) && (sub === '*' || sub === askedSub);
}

/** yoga's isPOSTJsonRequest. */
function isJsonContentType(contentType: string | undefined): boolean {
  const first = contentType?.split(',')[0];
  return ['application/json', 'application/graphql+json'].some((t) => first === t || !!first?.startsWith(`${t};`));
}

const isObjectOrAbsent = (v: unknown) => v == null || (typeof v === 'object' && !Array.isArray(v));

/** Parameters yoga would accept without complaint; undefined for anything else (yoga then answers it). */
function checkedParams(raw: unknown): GraphQLParams | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const p = raw as Record<string, unknown>;
  for (const key in p) if (p[key] != null && !PARAM_NAMES.has(key)) return undefined;
  if (typeof p.query !== 'string' || !p.query) return undefined;
  if (p.operationName != null && typeof p.operationName !== 'string') return undefined;
  if (!isObjectOrAbsent(p.variables) || !isObjectOrAbsent(p.extensions)) return undefined;
  return p as unknown as GraphQLParams;
}

function paramsFromJson(body: Buffer): GraphQLParams | undefined {
  try {
    return checkedParams(JSON.parse(body.toString('utf8')));
  } catch {
    return undefined;
  }
}

/** yoga's parseGETRequest (empty values count as absent). */
function paramsFromUrl(url: string): GraphQLParams | undefined {
  const search = new URLSearchParams(url.slice(url.indexOf('?') + 1));
  try {
    const variables = search.get('variables') || undefined;
    const extensions = search.get('extensions') || undefined;
    return checkedParams({
      query: search.get('query') || undefined,
      operationName: search.get('operationName') || undefined,
      variables: variables ? JSON.parse(variables) : undefined,
      extensions: extensions ? JSON.parse(extensions) : undefined,
    });
  } catch {
    return undefined;
  }
}

/**
 * The type of the operation a document selects, read from its top-level tokens without
 * building the AST (the envelop pipeline parses it once, after the decision). Undefined when it
 * is unclear (a lexing error, an unknown operation name, more tokens than MAX_TOKENS): yoga then
 * answers the request. Remembered per query text, as clients send the same few documents.
 */
export class OperationTypeCache {
  private readonly known = new Map<string, Map<string | null, OperationType> | null>();

  constructor(private readonly maxTokens: number) {}

  selected(query: string, operationName: string | null | undefined): OperationType | undefined {
    let operations = this.known.get(query);
    if (operations === undefined) {
      operations = this.scan(query);
      // Bounded in entries and in size, whatever documents clients send.
      if (query.length <= MAX_REMEMBERED_QUERY_CHARS) {
        if (this.known.size >= MAX_REMEMBERED_QUERIES) this.known.clear();
        this.known.set(query, operations);
      }
    }
    if (!operations) return undefined;
    if (operationName) return operations.get(operationName);
    return operations.size === 1 ? operations.values().next().value : undefined;
  }

  /** Operation types by name (null: anonymous); null when the document cannot be read this way. */
  private scan(query: string): Map<string | null, OperationType> | null {
    const operations = new Map<string | null, OperationType>();
    try {
      const lexer = new Lexer(new Source(query));
      let depth = 0;
      let atDefinitionStart = true;
      let tokens = 0;
      for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
        if (this.maxTokens > 0 && ++tokens > this.maxTokens) return null;
        const kind = token.kind;
        if (kind === TokenKind.BRACE_L || kind === TokenKind.PAREN_L || kind === TokenKind.BRACKET_L) {
          // A shorthand query: `{ ... }`.
          if (atDefinitionStart && depth === 0 && kind === TokenKind.BRACE_L) {
            if (operations.has(null)) return null;
            operations.set(null, 'query');
            atDefinitionStart = false;
          }
          depth++;
        } else if (kind === TokenKind.BRACE_R || kind === TokenKind.PAREN_R || kind === TokenKind.BRACKET_R) {
          if (--depth < 0) return null;
          // Every executable definition ends with its selection set.
          if (depth === 0 && kind === TokenKind.BRACE_R) atDefinitionStart = true;
        } else if (atDefinitionStart && depth === 0) {
          atDefinitionStart = false;
          if (kind !== TokenKind.NAME || !token.value) return null;
          if (token.value === 'fragment') continue;
          if (!OPERATION_KEYWORDS.has(token.value)) return null;
          const next = lexer.lookahead();
          const name = next.kind === TokenKind.NAME ? next.value! : null;
          if (operations.has(name)) return null;
          operations.set(name, token.value as OperationType);
        }
      }
      return depth === 0 && operations.size > 0 ? operations : null;
    } catch {
      return null;
    }
  }
}

/** The headers yoga's CORS plugin (whatwg-node useCORS with `{ origin: corsOrigins, credentials: true }`) adds to a response. */
function corsHeaders(req: IncomingMessage, cors: { origins: string[] } | undefined): Record<string, string> {
  const origin = req.headers.origin;
  if (!cors || origin === undefined) return {};
  const headers: Record<string, string> = {};
  const { origins } = cors;
  if (origins.includes('*')) {
    headers['Access-Control-Allow-Origin'] = origin;
    headers.Vary = 'Origin';
  } else if (origins.length === 1) {
    headers['Access-Control-Allow-Origin'] = origins[0]!;
  } else if (origins.includes(origin)) {
    headers['Access-Control-Allow-Origin'] = origin;
    headers.Vary = 'Origin';
  } else {
    headers['Access-Control-Allow-Origin'] = 'null';
  }
  const requestMethod = req.headers['access-control-request-method'];
  if (typeof requestMethod === 'string' && requestMethod) headers['Access-Control-Allow-Methods'] = requestMethod;
  const requestHeaders = req.headers['access-control-request-headers'];
  if (typeof requestHeaders === 'string' && requestHeaders) {
    headers['Access-Control-Allow-Headers'] = requestHeaders;
    headers.Vary = headers.Vary ? `${headers.Vary}, Access-Control-Request-Headers` : 'Access-Control-Request-Headers';
  }
  headers['Access-Control-Allow-Credentials'] = 'true';
  return headers;
}

const isAbortError = (error: unknown): boolean =>
  typeof error === 'object' && error?.constructor?.name === 'DOMException' && ['AbortError', 'TimeoutError'].includes((error as DOMException).name);

/** yoga's jsonStringifyResultWithoutInternals (not exported), for the one shape a subscription event has. */
function jsonStringifyResultWithoutInternals(result: ExecutionResult & { stringify?: (r: unknown) => string }): string {
  return (result.stringify ?? JSON.stringify)(omitInternals(result));
}

function omitInternals(result: ExecutionResult): ExecutionResult {
  const http = (result.extensions as { http?: unknown } | undefined)?.http;
  if (!result.errors?.length && !http) return result;
  const cleaned: ExecutionResult = { ...result };
  if (cleaned.errors) cleaned.errors = cleaned.errors.map(omitErrorInternals);
  if (cleaned.extensions) {
    const { http: _http, ...extensions } = cleaned.extensions as Record<string, unknown>;
    cleaned.extensions = Object.keys(extensions).length ? extensions : undefined;
  }
  return cleaned;
}

function omitErrorInternals(error: GraphQLError): GraphQLError {
  if (!(error instanceof GraphQLError)) return error;
  const { http: _http, unexpected: _unexpected, ...extensions } = (error.toJSON().extensions ?? {}) as Record<string, unknown>;
  return createGraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError ? (omitErrorInternals(error.originalError as GraphQLError) as Error) : undefined,
    extensions: Object.keys(extensions).length ? extensions : undefined,
  });
}
