import { ErrorCode, GatewayError } from '../platform/errors.js';

/** MODEL_NOT_FOUND for a name or alias; `reason` says why when it is not simply unknown. */
export const modelNotFound = (requested: string, message?: string, details: Record<string, unknown> = {}) =>
  new GatewayError(ErrorCode.MODEL_NOT_FOUND, message ?? `Model "${requested.slice(0, 200)}" is not installed on the Ollama host.`, {
    model: requested.slice(0, 200),
    ...details,
  });
