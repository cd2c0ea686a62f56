import { builder } from '../schema/builder.js';
import { GenerateInput, GenerationEvent, GenerationResult } from '../schema/generation.js';
import { rethrowFailure } from '../services/generation/event-stream.js';

builder.mutationField('generate', (t) =>
  t.field({
    type: GenerationResult,
    description: 'Generates a complete answer to a prompt (no streaming). Costs credits; recorded in the usage log.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: GenerateInput, required: true, description: 'Model, prompt and options.' }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.generation.generateText(ctx.principal!, input, { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp }),
  }),
);

builder.subscriptionField('generate', (t) =>
  t.field({
    type: GenerationEvent,
    description:
      'Streams an answer to a prompt: TOKEN events, then one DONE event with usage and credits charged. ' +
      'Ending the subscription (or closing the connection) stops the model at once; the partial answer is recorded as CANCELLED.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: GenerateInput, required: true, description: 'Model, prompt and options.' }) },
    subscribe: (_root, { input }, ctx) =>
      ctx.services.generation.generate(ctx.principal!, input, { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp, streamed: true }, { failuresAsItems: true }),
    resolve: rethrowFailure,
  }),
);
