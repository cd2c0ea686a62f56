import { builder } from '../schema/builder.js';
import { LiveGeneration } from '../schema/live.js';

builder.queryField('liveGenerations', (t) =>
  t.field({
    type: [LiveGeneration],
    description: 'Generations running now on this gateway instance, oldest first, with phase, queue position and tokens/s. Admin only.',
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) => ctx.services.live.list(),
  }),
);

builder.subscriptionField('liveGenerations', (t) =>
  t.field({
    type: [LiveGeneration],
    description:
      'The generations running on this gateway instance, as a whole list: at once, then after each change (at most 4 a second) ' +
      'and at least once a second while any runs, so tokens/s stays current. Admin only.',
    authScopes: { admin: true },
    subscribe: (_root, _args, ctx) => ctx.services.live.watch(ctx.signal),
    resolve: (list) => list,
  }),
);
