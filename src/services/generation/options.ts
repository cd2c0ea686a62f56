import type { Options as OllamaOptions } from 'ollama';
import { z } from 'zod';
import { badInput } from '../platform/errors.js';

/** Sampling options as clients give them (camelCase); every field optional. */
export interface GenerationOptions {
  temperature?: number | null;
  maxTokens?: number | null;
  repetitionPenalty?: number | null;
  topP?: number | null;
  topK?: number | null;
  seed?: number | null;
  stop?: string[] | null;
  numCtx?: number | null;
  /** Reasoning: on, off or a level (sent as Ollama's top-level `think`, not as an option). */
  think?: ThinkOption | null;
}

const THINK_OPTIONS = ['on', 'off', 'low', 'medium', 'high'] as const;
export type ThinkOption = (typeof THINK_OPTIONS)[number];

/** The `think` Ollama takes: a boolean, or a level. */
export function thinkSetting(v: ThinkOption | null | undefined): boolean | 'low' | 'medium' | 'high' | undefined {
  if (v === undefined || v === null) return undefined;
  return v === 'on' ? true : v === 'off' ? false : v;
}

/** Accepted ranges; also shown in the schema's field descriptions. */
export const OPTION_LIMITS = {
  temperature: { min: 0, max: 2 },
  maxTokens: { min: 1, max: 131_072 },
  repetitionPenalty: { min: 0, max: 2 },
  topP: { min: 0, max: 1 },
  topK: { min: 1, max: 1000 },
  numCtx: { min: 256, max: 1_048_576 },
  stop: { maxItems: 16, maxLength: 200 },
} as const;

const L = OPTION_LIMITS;
export const optionsSchema = z
  .object({
    temperature: z.number().min(L.temperature.min).max(L.temperature.max),
    maxTokens: z.number().int().min(L.maxTokens.min).max(L.maxTokens.max),
    repetitionPenalty: z.number().min(L.repetitionPenalty.min).max(L.repetitionPenalty.max),
    topP: z.number().min(L.topP.min).max(L.topP.max),
    topK: z.number().int().min(L.topK.min).max(L.topK.max),
    seed: z.number().int(),
    stop: z.array(z.string().min(1).max(L.stop.maxLength)).max(L.stop.maxItems),
    numCtx: z.number().int().min(L.numCtx.min).max(L.numCtx.max),
    think: z.enum(['on', 'off', 'low', 'medium', 'high']),
  })
  .partial();

const inRange = (v: unknown, limit: { min: number; max: number }, integer: boolean): boolean =>
  typeof v === 'number' && (integer ? Number.isSafeInteger(v) : Number.isFinite(v)) && v >= limit.min && v <= limit.max;

/** Fields and how a value is certainly valid (a subset of what optionsSchema accepts). */
const CLEARLY_VALID: Record<string, (v: unknown) => boolean> = {
  temperature: (v) => inRange(v, L.temperature, false),
  maxTokens: (v) => inRange(v, L.maxTokens, true),
  repetitionPenalty: (v) => inRange(v, L.repetitionPenalty, false),
  topP: (v) => inRange(v, L.topP, false),
  topK: (v) => inRange(v, L.topK, true),
  seed: (v) => typeof v === 'number' && Number.isSafeInteger(v),
  stop: (v) =>
    Array.isArray(v) && v.length <= L.stop.maxItems && v.every((s) => typeof s === 'string' && s.length >= 1 && s.length <= L.stop.maxLength),
  numCtx: (v) => inRange(v, L.numCtx, true),
  think: (v) => typeof v === 'string' && THINK_OPTIONS.includes(v as ThinkOption),
};

/** Validates options and translates them to Ollama's field names; throws BAD_USER_INPUT. */
export function toOllamaOptions(options: GenerationOptions | null | undefined): Partial<OllamaOptions> {
  if (!options) return {};
  const present = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== null && v !== undefined));
  // Every request passes here: plainly valid options skip zod (tens of µs), anything else gets
  // zod's verdict and message.
  let o = present as z.infer<typeof optionsSchema>;
  if (!Object.entries(present).every(([k, v]) => CLEARLY_VALID[k]?.(v))) {
    const parsed = optionsSchema.safeParse(present);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.join('.');
      throw badInput(`Invalid option ${field}: ${issue.message}.`, { field: `options.${field}` });
    }
    o = parsed.data;
  }
  const out: Partial<OllamaOptions> = {};
  if (o.temperature !== undefined) out.temperature = o.temperature;
  if (o.maxTokens !== undefined) out.num_predict = o.maxTokens;
  if (o.repetitionPenalty !== undefined) out.repeat_penalty = o.repetitionPenalty;
  if (o.topP !== undefined) out.top_p = o.topP;
  if (o.topK !== undefined) out.top_k = o.topK;
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.stop !== undefined) out.stop = o.stop;
  if (o.numCtx !== undefined) out.num_ctx = o.numCtx;
  return out;
}
