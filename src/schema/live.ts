import type { LiveGeneration as LiveGenerationShape } from '../services/generation/live-generations.js';
import { builder } from './builder.js';
import { GenerationPhase } from './generation.js';

export const LiveGeneration = builder.objectRef<LiveGenerationShape>('LiveGeneration').implement({
  description: 'A generation running now on this gateway instance, as its stream reports it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The generationId (also the usage-log entry id); pass it to cancelGeneration.' }),
    apiKeyId: t.exposeID('apiKeyId', { description: 'The key that asked.' }),
    apiKeyName: t.exposeString('apiKeyName', { description: 'Name of the key that asked.' }),
    apiKeyPrefix: t.exposeString('apiKeyPrefix', { description: 'Prefix of the key that asked.' }),
    model: t.exposeString('model', { description: 'Model as the client named it (a name or an alias).' }),
    kind: t.exposeString('kind', { description: '"generate" (one-shot prompt) or "chat".' }),
    streamed: t.exposeBoolean('streamed', { description: 'True for subscriptions, false for mutations.' }),
    phase: t.field({ type: GenerationPhase, description: 'Where the request is: queued, loading the model, or generating.', resolve: (g) => g.phase }),
    queuePosition: t.exposeInt('queuePosition', { nullable: true, description: 'While QUEUED: requests ahead of this one, plus one.' }),
    completionTokens: t.exposeInt('completionTokens', { description: 'Tokens generated so far.' }),
    tokensPerSecond: t.exposeFloat('tokensPerSecond', { nullable: true, description: 'Generation speed since the first token; null until it can be measured.' }),
    startedAt: t.field({ type: 'DateTime', description: 'When the stream started.', resolve: (g) => g.startedAt }),
    firstTokenAt: t.field({ type: 'DateTime', nullable: true, description: 'When the first token came, if one did.', resolve: (g) => g.firstTokenAt }),
  }),
});
