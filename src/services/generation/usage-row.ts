import type { GenerationMessage } from '../../entities/generation.js';
import type { Principal } from '../access/keys.js';
import type { GenerationPlan, RequestMeta } from './types.js';

/** The conversation as stored in the usage log (images are counted, not copied). */
export function loggedMessages(plan: GenerationPlan): GenerationMessage[] | null {
  if (plan.messages) return plan.messages.map(({ role, content, images }) => ({ role, content, ...(images?.length ? { images: images.map(() => '[image]') } : {}) }));
  if (plan.system) return [{ role: 'system', content: plan.system }, { role: 'user', content: plan.prompt }];
  return null;
}

/** The usage-log columns a generation's row starts with. */
export function usageRow(run: { id: string; startedAt: number }, plan: GenerationPlan, principal: Principal, meta: RequestMeta, model: string) {
  return {
    id: run.id,
    apiKeyId: principal.id,
    sessionId: plan.sessionId ?? null,
    model,
    kind: plan.kind,
    streamed: meta.streamed,
    prompt: plan.prompt,
    messages: loggedMessages(plan),
    requestId: meta.requestId,
    createdAt: new Date(run.startedAt),
  };
}
