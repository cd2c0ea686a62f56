import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ExecutionArgs, type ExecutionResult, GraphQLError } from 'graphql';
import { createGraphQLError, getSSEProcessor, isAsyncIterable, mapAsyncIterator, processRegularResult } from 'graphql-yoga';
import type { Histogram, Registry } from 'prom-client';
import type { Config } from '../config.js';
import { readBodyWithin, sendJsonError, bodyTooLarge } from './http-guards.js';
import { type GraphQLParams, type NonStreamProcessor, OperationTypeCache, isJsonContentType, nonStreamProcessor, paramsFromJson, paramsFromUrl } from './sse-request.js';
import { COMPLETE, PING, PING_INTERVAL_MS, SSE_HEADERS, corsHeaders, jsonStringifyResultWithoutInternals } from './sse-wire.js';
import { GRAPHQL_PATH, type AuthedRequest, type GatewayYoga } from './yoga.js';

/** What a request carries once its body (if any) is read; hardening.prepareGraphQL may have read it already. */
type BodiedRequest = AuthedRequest & { body?: Buffer };

/** yoga's maskedErrors options (private in its typings): the gateway's mask function wrapped by yoga. */
interface MaskedErrorsOpts {
  maskError(error: unknown, message: string, isDev?: boolean): Error;
  errorMessage: string;
  isDev?: boolean;
}

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

const isAbortError = (error: unknown): boolean =>
  typeof error === 'object' && error?.constructor?.name === 'DOMException' && ['AbortError', 'TimeoutError'].includes((error as DOMException).name);
