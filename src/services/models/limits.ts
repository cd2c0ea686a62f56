import { badInput } from '../platform/errors.js';
import { OPTION_LIMITS } from '../generation/options.js';

/** Accepted ranges for catalogue and lifecycle input; also quoted in the schema descriptions. */
export const MODEL_LIMITS = {
  /** Seconds; a year at most. 0 is refused: Ollama reads keep_alive 0 as "unload now". */
  inactivityThresholdSeconds: { min: 1, max: 31_536_000 },
  pricePer1k: { min: 0, max: 1_000_000 },
  descriptionLength: 2000,
  systemPromptLength: 32_000,
  numCtx: OPTION_LIMITS.numCtx,
} as const;

export function checkThreshold(seconds: number | null | undefined, field = 'seconds'): number | null {
  if (seconds === null || seconds === undefined) return null;
  const { min, max } = MODEL_LIMITS.inactivityThresholdSeconds;
  if (!Number.isInteger(seconds) || seconds < min || seconds > max)
    throw badInput(`${field} must be a whole number of seconds from ${min} to ${max} (or null to remove the threshold).`, { field });
  return seconds;
}

export function checkPrice(price: number | null | undefined, field: string): number | null {
  if (price === null || price === undefined) return null;
  const { min, max } = MODEL_LIMITS.pricePer1k;
  if (!Number.isFinite(price) || price < min || price > max) throw badInput(`${field} must be from ${min} to ${max} credits per 1,000 tokens.`, { field });
  return price;
}

export function checkDescription(text: string | null | undefined, field = 'description'): string | null {
  if (text === null || text === undefined) return null;
  const trimmed = text.trim();
  if (trimmed.length > MODEL_LIMITS.descriptionLength) throw badInput(`${field} must be at most ${MODEL_LIMITS.descriptionLength} characters.`, { field });
  return trimmed === '' ? null : trimmed;
}

export function checkSystemPrompt(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  if (text.length > MODEL_LIMITS.systemPromptLength) throw badInput(`systemPrompt must be at most ${MODEL_LIMITS.systemPromptLength} characters.`, { field: 'systemPrompt' });
  return text.trim() === '' ? null : text;
}

export function checkNumCtx(numCtx: number | null | undefined): number | undefined {
  if (numCtx === null || numCtx === undefined) return undefined;
  const { min, max } = MODEL_LIMITS.numCtx;
  if (!Number.isInteger(numCtx) || numCtx < min || numCtx > max) throw badInput(`numCtx must be a whole number from ${min} to ${max}.`, { field: 'numCtx' });
  return numCtx;
}
