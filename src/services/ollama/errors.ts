import { ErrorCode, GatewayError } from '../platform/errors.js';

/** Why the gateway itself aborted an upstream request; read back when classifying the failure. */
export type AbortReason = 'cancelled' | 'connect-timeout' | 'stall-timeout';

/** Seconds a client should wait before retrying after Ollama said it is busy. */
export const BUSY_RETRY_AFTER_SECONDS = 2;

interface ResponseErrorLike {
  name: 'ResponseError';
  error: string;
  status_code: number;
}
const isResponseError = (e: unknown): e is ResponseErrorLike =>
  e instanceof Error && e.name === 'ResponseError' && typeof (e as { status_code?: unknown }).status_code === 'number';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

function networkCode(e: unknown): string | undefined {
  // undici reports network failures as TypeError('fetch failed') with the system error as `cause`.
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  }
  return undefined;
}

/**
 * Ollama's own text behind a mapped error (for the log only: clients get the gateway's message,
 * since Ollama's may name internal paths, digests or hosts).
 */
export function upstreamText(e: unknown): string | undefined {
  const cause = e instanceof GatewayError ? (e.cause as unknown) : undefined;
  if (isResponseError(cause)) return cause.error;
  if (cause instanceof Error && (cause as { upstream?: boolean }).upstream) return cause.message;
  return undefined;
}

/**
 * Maps anything the `ollama` client (or fetch below it) throws to the gateway's catalogue, with
 * the gateway's own messages: Ollama's text stays in `cause` for the log (upstreamText).
 * `abortReason` tells an abort we caused on purpose apart from a network failure.
 */
export function mapUpstreamError(e: unknown, model: string | undefined, abortReason?: AbortReason): GatewayError {
  if (e instanceof GatewayError) return e;
  if (abortReason === 'cancelled') return new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled.', {}, { cause: e });
  if (abortReason === 'connect-timeout')
    return new GatewayError(ErrorCode.UPSTREAM_TIMEOUT, 'Ollama did not start answering in time.', {}, { cause: e });
  if (abortReason === 'stall-timeout')
    return new GatewayError(ErrorCode.UPSTREAM_TIMEOUT, 'Ollama stopped sending tokens mid-stream.', {}, { cause: e });

  if (isResponseError(e)) {
    const msg = e.error;
    switch (e.status_code) {
      case 404:
        return new GatewayError(ErrorCode.MODEL_NOT_FOUND, model ? `Model "${model}" is not installed on the Ollama host.` : 'Ollama does not have what was asked for (HTTP 404).', { model }, { cause: e });
      case 400:
        if (/does not support/i.test(msg))
          return new GatewayError(ErrorCode.CAPABILITY_MISSING, `${model ? `Model "${model}"` : 'The model'} does not support what the request asks for (${capabilityIn(msg)}).`, { model }, { cause: e });
        return new GatewayError(ErrorCode.BAD_USER_INPUT, 'Ollama rejected the request as invalid (HTTP 400).', {}, { cause: e });
      case 503:
        return new GatewayError(ErrorCode.UPSTREAM_BUSY, 'Ollama is busy (its queue is full); retry shortly.', { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS }, { cause: e });
      default:
        return new GatewayError(ErrorCode.UPSTREAM_ERROR, `Ollama failed (HTTP ${e.status_code}).`, { status: e.status_code }, { cause: e });
    }
  }
  const code = networkCode(e);
  if (code) return new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, `Ollama is unreachable (${code}).`, {}, { cause: e });
  if (e instanceof Error && e.name === 'AbortError')
    // An abort nobody here asked for: the connection to Ollama went away.
    return new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The connection to Ollama was lost.', {}, { cause: e });
  if (e instanceof Error && /Did not receive done or success response/.test(e.message))
    return new GatewayError(ErrorCode.UPSTREAM_ERROR, 'Ollama ended the stream before it was complete.', {}, { cause: e });
  if (e instanceof TypeError && /terminated|fetch failed/i.test(e.message))
    return new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The connection to Ollama was lost.', {}, { cause: e });
  // ollama-js turns a mid-stream {"error": "..."} line into a plain Error with that message.
  const cause = e instanceof Error ? Object.assign(e, { upstream: true }) : Object.assign(new Error(String(e)), { upstream: true });
  return new GatewayError(ErrorCode.UPSTREAM_ERROR, 'Ollama reported an error during generation.', {}, { cause });
}

/**
 * Ollama says a model is missing from the registry only in text. Its PullHandler
 * (ollama/ollama server/routes.go) streams PullModel's error as an `{"error": ...}` line after
 * the "pulling manifest" progress line, and PullModel (server/images.go) wraps the registry's 404,
 * which makeRequestWithRetry turns into os.ErrNotExist, as "pull model manifest: file does not
 * exist" (read at ollama/ollama@fb30760). A registry's other refusals reach the text as
 * "<status>: <body>", where an OCI registry says "manifest unknown" or "not found".
 */
const MISSING_FROM_REGISTRY = /file does not exist|not found|manifest unknown/i;

/**
 * mapUpstreamError for `/api/pull`: Ollama's text for a model the registry does not have becomes
 * MODEL_NOT_FOUND (with the model in `details`), so callers check the code, never the text.
 */
export function mapPullError(e: unknown, model: string | undefined, abortReason?: AbortReason): GatewayError {
  const error = mapUpstreamError(e, model, abortReason);
  const said = upstreamText(error);
  if (error.code !== ErrorCode.UPSTREAM_ERROR || !said || !MISSING_FROM_REGISTRY.test(said)) return error;
  return new GatewayError(ErrorCode.MODEL_NOT_FOUND, `Model "${model}" was not found in the registry.`, { model }, { cause: error.cause });
}

/** The one capability word of Ollama's "... does not support X" (vision, tools, thinking, ...), nothing else of its text. */
function capabilityIn(message: string): string {
  const word = /does not support (\w+)/i.exec(message)?.[1]?.toLowerCase();
  return word && /^(vision|tools|thinking|completion|embedding|insert|generate|chat)$/.test(word) ? word : 'a capability it lacks';
}
