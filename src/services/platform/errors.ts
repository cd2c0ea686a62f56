/**
 * The gateway's error catalogue. Services throw `GatewayError`s; the GraphQL layer turns them into
 * errors with `extensions.code` (see src/schema/errors.ts). Nothing here knows about GraphQL.
 */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  MODEL_NOT_FOUND: 'MODEL_NOT_FOUND',
  CAPABILITY_MISSING: 'CAPABILITY_MISSING',
  SESSION_BUSY: 'SESSION_BUSY',
  INSUFFICIENT_CREDITS: 'INSUFFICIENT_CREDITS',
  RATE_LIMITED: 'RATE_LIMITED',
  INSUFFICIENT_VRAM: 'INSUFFICIENT_VRAM',
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  UPSTREAM_BUSY: 'UPSTREAM_BUSY',
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UPSTREAM_ERROR: 'UPSTREAM_ERROR',
  CANCELLED: 'CANCELLED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An expected failure with a stable code clients can branch on. */
export class GatewayError extends Error {
  override name = 'GatewayError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra machine-readable details (e.g. retryAfterSeconds); must never hold secrets. */
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const isGatewayError = (e: unknown): e is GatewayError => e instanceof GatewayError;

export const unauthenticated = (message = 'A valid API key is required.') =>
  new GatewayError(ErrorCode.UNAUTHENTICATED, message);
export const forbidden = (message = 'This API key is not allowed to do that.') =>
  new GatewayError(ErrorCode.FORBIDDEN, message);
export const badInput = (message: string, details: Record<string, unknown> = {}) =>
  new GatewayError(ErrorCode.BAD_USER_INPUT, message, details);
