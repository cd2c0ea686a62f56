import { builder } from '../schema/builder.js';
import { EmbedInput, EmbedResult } from '../schema/embeddings.js';

const description =
  'Embeds texts with an embedding model. Costs credits (REQUEST_COST plus prompt-token prices), counts against the key\'s rate limits and leaves one usage-log row of kind `embed`. ' +
  'A model without the `embedding` capability is CAPABILITY_MISSING.';

builder.mutationField('embed', (t) =>
  t.field({
    type: EmbedResult,
    description,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: EmbedInput, required: true, description: 'Model, texts and options.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.embeddings.embed(ctx.principal!, input, { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp }),
  }),
);

// Also a query: it changes nothing but the key's balance, and clients that cache or batch reads may prefer it.
builder.queryField('embed', (t) =>
  t.field({
    type: EmbedResult,
    description: `${description} The same as the mutation \`embed\`.`,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: EmbedInput, required: true, description: 'Model, texts and options.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.embeddings.embed(ctx.principal!, input, { requestId: ctx.requestId, signal: ctx.signal, clientIp: ctx.clientIp }),
  }),
);
