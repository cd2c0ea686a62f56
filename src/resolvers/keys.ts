import { Viewer } from '../schema/api-key.js';
import { builder } from '../schema/builder.js';

builder.queryField('me', (t) =>
  t.field({
    type: Viewer,
    description: 'The API key making this request.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.principal!,
  }),
);
