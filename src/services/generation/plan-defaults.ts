import type { ResolvedModel } from './hooks.js';
import { thinkSetting } from './options.js';
import type { GenerationPlan } from './types.js';

/**
 * What a plan leaves to the gateway: `think` from the options, and a system prompt when the
 * request brings none. Precedence: the request's, then the session's (already in a session's
 * messages), then the model's catalog entry, then the gateway's default.
 */
export async function withDefaults(plan: GenerationPlan, model: ResolvedModel, defaultSystemPrompt?: () => Promise<string | null>): Promise<GenerationPlan> {
  const think = plan.think ?? thinkSetting(plan.options?.think);
  let out: GenerationPlan = think !== undefined && think !== plan.think ? { ...plan, think } : plan;
  const hasSystem = plan.kind === 'chat' ? (plan.messages ?? []).some((m) => m.role === 'system') : Boolean(plan.system);
  if (hasSystem || plan.sessionId) return out;
  const system = model.systemPrompt || (await defaultSystemPrompt?.()) || null;
  if (!system) return out;
  out = plan.kind === 'chat' ? { ...out, messages: [{ role: 'system', content: system }, ...(out.messages ?? [])] } : { ...out, system };
  return out;
}
