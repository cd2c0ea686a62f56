import { ErrorCode, GatewayError } from '../../services/platform/errors.js';

/** Ollama's error body: `{"error": "..."}` (ollama-js reads `error` into ResponseError.message). */
export interface OllamaErrorBody {
  error: string;
}

/**
 * Gateway codes to the statuses Ollama's own clients know: its 400/404/500/503 plus the gateway's
 * 401, 402 (credits: not retried), 403 and 429. Upstream trouble is 503 (Ollama's "busy"
 * status, which clients treat as retryable), except a failure Ollama itself reported (500).
 */
const STATUS: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  CAPABILITY_MISSING: 400,
  SESSION_BUSY: 409,
  INSUFFICIENT_CREDITS: 402,
  RATE_LIMITED: 429,
  INSUFFICIENT_VRAM: 503,
  UPSTREAM_UNAVAILABLE: 503,
  UPSTREAM_BUSY: 503,
  UPSTREAM_TIMEOUT: 503,
  UPSTREAM_ERROR: 500,
  CANCELLED: 503,
  INTERNAL_SERVER_ERROR: 500,
};

/** A request the gateway refuses in Ollama's terms (malformed body, unsupported field, wrong method). */
export class OllamaRequestError extends GatewayError {
  constructor(
    message: string,
    readonly status = 400,
    code: ErrorCode = ErrorCode.BAD_USER_INPUT,
  ) {
    super(code, message);
  }
}

export interface OllamaErrorResponse {
  status: number;
  body: OllamaErrorBody;
  /** The gateway's code (metrics, logs). */
  gatewayCode: ErrorCode;
  headers: Record<string, string>;
}

/** Turns any error into Ollama's shape; unexpected ones are masked (`errorId` points to the log). */
export function toOllamaError(e: unknown, errorId: string): OllamaErrorResponse {
  if (!(e instanceof GatewayError)) {
    return { status: 500, gatewayCode: ErrorCode.INTERNAL_SERVER_ERROR, headers: {}, body: { error: `Unexpected error (errorId ${errorId}).` } };
  }
  const headers: Record<string, string> = {};
  const retryAfter = e.details.retryAfterSeconds;
  if (typeof retryAfter === 'number' && retryAfter > 0) headers['retry-after'] = String(Math.ceil(retryAfter));
  return {
    status: e instanceof OllamaRequestError ? e.status : (STATUS[e.code] ?? 500),
    gatewayCode: e.code,
    headers,
    body: { error: e.message },
  };
}
