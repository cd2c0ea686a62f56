import type { GenerationPlan } from './types.js';

// How much of a prompt a request is reserved and charged for, before Ollama reports its counts.

/** Tokens one image takes in the prompt (vision encoders use a few hundred to about a thousand). */
const IMAGE_TOKENS = 1024;
/** Tokens a chat template adds around each message (role markers). */
const MESSAGE_OVERHEAD_TOKENS = 8;

function promptShape(plan: GenerationPlan): { chars: number; images: number; messages: number } {
  const messages = plan.messages ?? [];
  return {
    chars: plan.prompt.length + (plan.system?.length ?? 0) + messages.reduce((n, m) => n + m.content.length, 0),
    images: (plan.images?.length ?? 0) + messages.reduce((n, m) => n + (m.images?.length ?? 0), 0),
    messages: Math.max(1, messages.length),
  };
}

/** Characters of prompt, system prompt and messages (the MAX_PROMPT_CHARS limit). */
export const promptChars = (plan: GenerationPlan): number => promptShape(plan).chars;

/** Upper bound of prompt tokens (a token is rarely under 2 characters), to size the credit reservation. */
export function promptTokenBound(plan: GenerationPlan): number {
  const p = promptShape(plan);
  return Math.ceil(p.chars / 2) + 16 + p.messages * MESSAGE_OVERHEAD_TOKENS + p.images * IMAGE_TOKENS;
}

/** Likely prompt tokens (about 4 characters a token), charged when Ollama evaluated a prompt but never reported its count. */
export function estimatePromptTokens(plan: GenerationPlan): number {
  const p = promptShape(plan);
  return Math.ceil(p.chars / 4) + p.messages * MESSAGE_OVERHEAD_TOKENS + p.images * IMAGE_TOKENS;
}
