import type { Generation } from '../entities/generation.js';
import type { GenerationPage, UsageBucket as UsageBucketShape } from '../services/access/usage.js';
import { builder } from './builder.js';

export const UsageGroupBy = builder.enumType('UsageGroupBy', {
  description: 'How usage totals are grouped.',
  values: {
    KEY: { description: 'One bucket per API key.' },
    MODEL: { description: 'One bucket per model (the Ollama name that answered).' },
    DAY: { description: 'One bucket per calendar day in UTC.' },
  } as const,
});

export const UsageBucket = builder.objectRef<UsageBucketShape>('UsageBucket').implement({
  description: 'Usage totals for one key, model or UTC day. requests = completed + cancelled + failed + inProgress.',
  fields: (t) => ({
    group: t.exposeString('group', { description: 'What the bucket is: the key id (KEY), the model name (MODEL) or the day as YYYY-MM-DD in UTC (DAY).' }),
    apiKeyId: t.exposeID('apiKeyId', { nullable: true, description: 'KEY: the key id.' }),
    apiKeyName: t.exposeString('apiKeyName', { nullable: true, description: 'KEY: the key name.' }),
    apiKeyPrefix: t.exposeString('apiKeyPrefix', { nullable: true, description: 'KEY: the key\'s display prefix.' }),
    model: t.exposeString('model', { nullable: true, description: 'MODEL: the model name.' }),
    day: t.exposeString('day', { nullable: true, description: 'DAY: the day, YYYY-MM-DD in UTC.' }),
    requests: t.exposeInt('requests', { description: 'Requests recorded in the usage log, whatever their outcome.' }),
    completed: t.exposeInt('completed', { description: 'Requests answered in full.' }),
    cancelled: t.exposeInt('cancelled', { description: 'Requests stopped by the client, by shutdown or by key revocation.' }),
    failed: t.exposeInt('failed', {
      description: 'Requests that failed: refused (INSUFFICIENT_CREDITS, RATE_LIMITED), upstream errors, or interrupted by a crash.',
    }),
    inProgress: t.exposeInt('inProgress', { description: 'Requests still running.' }),
    promptTokens: t.exposeInt('promptTokens', { description: 'Prompt tokens, as Ollama reported them.' }),
    completionTokens: t.exposeInt('completionTokens', { description: 'Generated tokens.' }),
    creditsCharged: t.exposeInt('creditsCharged', { description: 'Credits charged (after settlement; refunds already deducted).' }),
  }),
});

export const GenerationStatus = builder.enumType('GenerationStatus', {
  description: 'How a request in the usage log ended (or that it is still running).',
  values: {
    STREAMING: { description: 'Still running.' },
    COMPLETE: { description: 'Answered in full.' },
    CANCELLED: { description: 'Stopped before the end: the client left, the gateway shut down, or the key was revoked (errorCode tells which).' },
    ERROR: { description: 'Failed or refused; see errorCode.' },
    INTERRUPTED: { description: 'Cut by a gateway crash or restart.' },
  } as const,
});

export const GenerationLogEntry = builder.objectRef<Generation>('GenerationLogEntry').implement({
  description: 'One request in the usage log.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Identifier (the generationId of the stream events).' }),
    createdAt: t.field({ type: 'DateTime', description: 'When the request started.', resolve: (g) => g.createdAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it ended, or null while it runs.', resolve: (g) => g.finishedAt }),
    model: t.exposeString('model', { description: 'Model that was asked (its Ollama name).' }),
    apiKeyId: t.exposeID('apiKeyId', { description: 'The key that made the request.' }),
    kind: t.exposeString('kind', { description: '"generate" (one-shot prompt), "chat" or "embed" (embeddings).' }),
    host: t.exposeString('host', { nullable: true, description: 'URL of the Ollama host that answered (null in entries from before host pools).' }),
    streamed: t.exposeBoolean('streamed', { description: 'True for subscriptions, false for mutations.' }),
    sessionId: t.exposeID('sessionId', { nullable: true, description: 'The chat session, if any.' }),
    status: t.field({ type: GenerationStatus, description: 'How it ended.', resolve: (g) => g.status }),
    errorCode: t.exposeString('errorCode', { nullable: true, description: 'The error code the client received, if any.' }),
    doneReason: t.exposeString('doneReason', { nullable: true, description: 'Why generation stopped ("stop" or "length"), when complete.' }),
    prompt: t.exposeString('prompt', { description: 'The prompt (or the last user message of a chat).' }),
    response: t.exposeString('response', { description: 'The answer, partial if the request did not complete.' }),
    promptTokens: t.exposeInt('promptTokens', { description: 'Prompt tokens.' }),
    completionTokens: t.exposeInt('completionTokens', { description: 'Generated tokens.' }),
    creditsCharged: t.exposeInt('creditsCharged', { description: 'Credits charged.' }),
    firstTokenMs: t.exposeInt('firstTokenMs', { nullable: true, description: 'Milliseconds until the first token, if one came.' }),
    durationMs: t.exposeInt('totalDurationMs', { nullable: true, description: 'Wall time in milliseconds, once finished.' }),
  }),
});

export const GenerationLogPage = builder.objectRef<GenerationPage>('GenerationLogPage').implement({
  description: 'One page of the usage log, newest first (cursor pagination).',
  fields: (t) => ({
    nodes: t.field({ type: [GenerationLogEntry], description: 'The entries on this page.', resolve: (p) => p.entries }),
    totalCount: t.exposeInt('total', { description: 'Entries for the key, on all pages.' }),
    nextCursor: t.exposeString('nextCursor', { nullable: true, description: 'Pass as `after` to get the next page; null on the last page.' }),
  }),
});
