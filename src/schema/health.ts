import type { HealthReport } from '../services/platform/health.js';
import { builder } from './builder.js';

export const HealthStatus = builder.enumType('HealthStatus', {
  description: 'Overall state of the gateway.',
  values: {
    ok: { value: 'ok', description: 'The database and at least one Ollama host answer.' },
    degraded: { value: 'degraded', description: 'The gateway runs, but the database or every Ollama host does not answer.' },
  } as const,
});

export const Health = builder.objectRef<HealthReport>('Health').implement({
  description: 'Whether the gateway and what it depends on are working.',
  fields: (t) => ({
    status: t.field({ type: HealthStatus, description: 'Overall state.', resolve: (h) => h.status }),
    version: t.exposeString('version', { description: 'Version of the gateway.' }),
    database: t.exposeBoolean('database', { description: 'True when the database answers a query.' }),
    upstream: t.exposeBoolean('upstream', { description: 'True when at least one Ollama host answers (see ollamaHosts for each).' }),
  }),
});
