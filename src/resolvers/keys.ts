import { AddCreditsInput, ApiKey, ApiKeyPage, CreateApiKeyInput, CreatedApiKey, UpdateApiKeyInput, Viewer } from '../schema/api-key.js';
import { builder } from '../schema/builder.js';
import { unauthenticated } from '../services/platform/errors.js';

builder.queryField('me', (t) =>
  t.field({
    type: Viewer,
    description: 'The API key making this request, with its credits and rate limits.',
    authScopes: { authenticated: true },
    resolve: async (_root, _args, ctx) => {
      // Read fresh: credits and limits change while a socket stays open.
      const key = await ctx.services.keys.findActive(ctx.principal!.id);
      if (!key) throw unauthenticated('The API key is invalid or revoked.');
      return key;
    },
  }),
);

builder.queryField('apiKeys', (t) =>
  t.field({
    type: ApiKeyPage,
    description: 'API keys, newest first, a page at a time (offset pagination). Admin only.',
    authScopes: { admin: true },
    args: {
      first: t.arg.int({ required: false, defaultValue: 50, description: 'Keys per page, 1 to 500.' }),
      offset: t.arg.int({ required: false, defaultValue: 0, description: 'Keys to skip.' }),
      includeRevoked: t.arg.boolean({ required: false, defaultValue: true, description: 'Include revoked keys.' }),
      search: t.arg.string({ required: false, description: 'Only keys whose name or prefix contains this text (case-insensitive, at most 200 characters).' }),
    },
    resolve: async (_root, args, ctx) => {
      const opts = { first: args.first ?? 50, offset: args.offset ?? 0, includeRevoked: args.includeRevoked ?? true, search: args.search };
      return { ...(await ctx.services.keys.list(opts)), offset: opts.offset };
    },
  }),
);

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: CreatedApiKey,
    description: 'Creates an API key and returns its secret, this once only. Admin only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true, description: 'Name, role, credits and limits.' }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.keys.create({ name: input.name, role: input.role ?? 'USER', credits: input.credits, limits: input.limits }),
  }),
);

builder.mutationField('updateApiKey', (t) =>
  t.field({
    type: ApiKey,
    description: 'Renames a key, changes its role or its rate limits. Admin only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateApiKeyInput, required: true, description: 'The key and what to change.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.keys.update(String(input.id), { name: input.name, role: input.role, limits: input.limits }),
  }),
);

builder.mutationField('addCredits', (t) =>
  t.field({
    type: ApiKey,
    description: 'Adds credits to a key (or takes some away), atomically. Admin only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: AddCreditsInput, required: true, description: 'The key and the amount.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.keys.addCredits(String(input.id), input.amount),
  }),
);

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: ApiKey,
    description:
      'Revokes a key for good, at once: its requests fail with UNAUTHENTICATED, its running streams end with UNAUTHENTICATED ' +
      'and its websockets close (code 4403). Revoking a revoked key changes nothing; the last active admin key cannot be revoked. Admin only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true, description: 'The key to revoke.' }) },
    resolve: (_root, { id }, ctx) => ctx.services.keys.revoke(String(id)),
  }),
);
