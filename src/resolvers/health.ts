import { Health } from '../schema/health.js';
import { builder } from '../schema/builder.js';
import { checkHealth } from '../services/platform/health.js';
import { VERSION } from '../version.js';

builder.queryField('health', (t) =>
  t.field({
    type: Health,
    description: 'Whether the gateway, its database and its Ollama hosts answer. Needs no API key.',
    resolve: (_root, _args, ctx) => checkHealth(ctx.services.db, ctx.services.pool, VERSION),
  }),
);
