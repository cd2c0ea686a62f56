import { ErrorCode, GatewayError } from '../../services/platform/errors.js';

/** The body OpenAI's API (and so its SDKs) uses for errors. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

interface Mapping {
  status: number;
  type: string;
  /** OpenAI's own code where it has one, else the gateway's code in lower case. */
  code: string;
}

/**
 * Gateway codes to HTTP statuses, chosen so the OpenAI SDKs raise the matching class
 * (401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 429 RateLimitError,
 * 400 BadRequestError, 5xx InternalServerError). Credits are 402: unlike OpenAI's 429
 * `insufficient_quota`, the SDKs do not retry it, and retrying cannot help.
 */
const MAPPINGS: Record<ErrorCode, Mapping> = {
  UNAUTHENTICATED: { status: 401, type: 'authentication_error', code: 'invalid_api_key' },
  FORBIDDEN: { status: 403, type: 'permission_error', code: 'forbidden' },
  BAD_USER_INPUT: { status: 400, type: 'invalid_request_error', code: 'invalid_request' },
  NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'not_found' },
  MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  CAPABILITY_MISSING: { status: 400, type: 'invalid_request_error', code: 'capability_missing' },
  SESSION_BUSY: { status: 409, type: 'invalid_request_error', code: 'session_busy' },
  INSUFFICIENT_CREDITS: { status: 402, type: 'insufficient_quota', code: 'insufficient_quota' },
  RATE_LIMITED: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  INSUFFICIENT_VRAM: { status: 503, type: 'server_error', code: 'insufficient_vram' },
  UPSTREAM_UNAVAILABLE: { status: 502, type: 'upstream_error', code: 'upstream_unavailable' },
  UPSTREAM_BUSY: { status: 503, type: 'upstream_error', code: 'upstream_busy' },
  UPSTREAM_TIMEOUT: { status: 504, type: 'upstream_error', code: 'upstream_timeout' },
  UPSTREAM_ERROR: { status: 502, type: 'upstream_error', code: 'upstream_error' },
  CANCELLED: { status: 503, type: 'server_error', code: 'cancelled' },
  INTERNAL_SERVER_ERROR: { status: 500, type: 'server_error', code: 'internal_error' },
};

/** OpenAI request fields for the gateway's option names, so `param` names what the client sent. */
const PARAMS: Record<string, string> = {
  'options.temperature': 'temperature',
  'options.maxTokens': 'max_tokens',
  'options.topP': 'top_p',
  'options.seed': 'seed',
  'options.stop': 'stop',
  'options.think': 'reasoning_effort',
  format: 'response_format',
};

/** The gateway's field for a request parameter, in OpenAI's terms (`tools[0].parameters` is `tools[0].function.parameters`). */
const paramOf = (field: string) => PARAMS[field] ?? field.replace(/^tools\[(\d+)\]\.(name|description|parameters)$/, 'tools[$1].function.$2');

/** An error that is already in OpenAI's terms (bad JSON, unsupported fields). */
export class OpenAIRequestError extends GatewayError {
  constructor(
    message: string,
    readonly param: string | null = null,
    readonly status = 400,
  ) {
    super(ErrorCode.BAD_USER_INPUT, message, param ? { field: param } : {});
  }
}

export interface OpenAIErrorResponse {
  status: number;
  body: OpenAIErrorBody;
  /** The gateway's code (metrics, logs). */
  gatewayCode: ErrorCode;
  headers: Record<string, string>;
}

/** Turns any error into OpenAI's shape; unexpected ones are masked (`errorId` points to the log). */
export function toOpenAIError(e: unknown, errorId: string): OpenAIErrorResponse {
  if (!(e instanceof GatewayError)) {
    return {
      status: 500,
      gatewayCode: ErrorCode.INTERNAL_SERVER_ERROR,
      headers: {},
      body: { error: { message: `Unexpected error (errorId ${errorId}).`, type: 'server_error', code: 'internal_error', param: null } },
    };
  }
  const m = MAPPINGS[e.code] ?? MAPPINGS.INTERNAL_SERVER_ERROR;
  const field = e instanceof OpenAIRequestError ? e.param : typeof e.details.field === 'string' ? e.details.field : null;
  const headers: Record<string, string> = {};
  const retryAfter = e.details.retryAfterSeconds;
  if (typeof retryAfter === 'number' && retryAfter > 0) headers['retry-after'] = String(Math.ceil(retryAfter));
  return {
    status: e instanceof OpenAIRequestError ? e.status : m.status,
    gatewayCode: e.code,
    headers,
    body: { error: { message: e.message, type: m.type, code: m.code, param: field ? paramOf(field) : null } },
  };
}
