import { builder } from '../schema/builder.js';
import { GenerationEvent } from '../schema/generation.js';
import { ChatInput, ChatResultRef } from '../schema/session.js';
import { rethrowFailure } from '../services/generation/event-stream.js';

builder.mutationField('chat', (t) =>
  t.field({
    type: ChatResultRef,
    description: 'One chat turn, answered in full (no streaming), with the whole conversation. Costs credits; recorded in the usage log.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: ChatInput, required: true, description: 'Session and message, or model and messages.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.chat.complete(ctx.principal!, input, { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp }),
  }),
);

builder.subscriptionField('chat', (t) =>
  t.field({
    type: GenerationEvent,
    description:
      'Streams one chat turn: PHASE events, TOKEN events, then DONE (with `messageId` for session chats). In a session the user message ' +
      'and the answer are stored; leaving early stores the partial answer as CANCELLED.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: ChatInput, required: true, description: 'Session and message, or model and messages.' }) },
    subscribe: (_root, { input }, ctx) =>
      ctx.services.chat.stream(ctx.principal!, input, { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp, streamed: true }, { failuresAsItems: true }),
    resolve: rethrowFailure,
  }),
);

builder.mutationField('cancelGeneration', (t) =>
  t.boolean({
    description:
      'Stops a running generation of the caller\'s key, from any connection; an admin key may stop any key\'s generation running on ' +
      'this gateway instance (see liveGenerations). The partial answer is stored as CANCELLED.',
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true, description: 'generationId from the stream\'s events.' }) },
    resolve: (_root, { id }, ctx) =>
      ctx.principal!.role === 'ADMIN' ? ctx.services.live.cancel(String(id)) : ctx.services.generation.cancel(ctx.principal!, String(id)),
  }),
);
