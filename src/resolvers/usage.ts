import { builder } from '../schema/builder.js';
import { GenerationLogPage, UsageBucket, UsageGroupBy } from '../schema/usage.js';
import { MAX_PAGE_SIZE, allKeysScope, timeRange, usageScope } from '../services/access/usage.js';

builder.queryField('usage', (t) =>
  t.field({
    type: [UsageBucket],
    description:
      'Usage totals from the usage log in [from, to), grouped by key, model or UTC day. ' +
      'An admin key sees every key (or one, with apiKeyId); any other key sees only its own usage, and naming another key is FORBIDDEN.',
    authScopes: { authenticated: true },
    args: {
      from: t.arg({ type: 'DateTime', required: false, description: 'Start, inclusive (default: the beginning of the log).' }),
      to: t.arg({ type: 'DateTime', required: false, description: 'End, exclusive (default: now).' }),
      groupBy: t.arg({ type: UsageGroupBy, required: true, description: 'How to group the totals.' }),
      apiKeyId: t.arg.id({ required: false, description: 'Only this key. Non-admin keys may only name themselves.' }),
    },
    resolve: (_root, args, ctx) => {
      const keyId = usageScope(ctx.principal!, args.apiKeyId === null || args.apiKeyId === undefined ? undefined : String(args.apiKeyId), true);
      return ctx.services.usage.aggregate(timeRange(args.from, args.to), args.groupBy, keyId);
    },
  }),
);

builder.queryField('generations', (t) =>
  t.field({
    type: GenerationLogPage,
    description:
      'The usage log of a key, newest first: every request with its prompt, answer, tokens, credits and outcome. ' +
      'By default the calling key\'s own log; an admin may name any key, any other key naming another key gets FORBIDDEN.',
    authScopes: { authenticated: true },
    args: {
      first: t.arg.int({ required: false, defaultValue: 20, description: `Entries per page, 1 to ${MAX_PAGE_SIZE}.` }),
      after: t.arg.string({ required: false, description: 'The nextCursor of the previous page.' }),
      apiKeyId: t.arg.id({ required: false, description: 'Whose log (default: the calling key).' }),
      allKeys: t.arg.boolean({ required: false, defaultValue: false, description: 'Every key\'s log at once (admin only; FORBIDDEN for other keys, BAD_USER_INPUT with apiKeyId).' }),
    },
    resolve: (_root, args, ctx) => {
      if (args.allKeys) return ctx.services.usage.generations(allKeysScope(ctx.principal!, args.apiKeyId), { first: args.first ?? 20, after: args.after });
      const keyId = usageScope(ctx.principal!, args.apiKeyId === null || args.apiKeyId === undefined ? undefined : String(args.apiKeyId), false)!;
      return ctx.services.usage.generations(keyId, { first: args.first ?? 20, after: args.after });
    },
  }),
);
