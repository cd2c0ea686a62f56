import type { HostModels } from '../services/models/fleet.js';
import type { OllamaHostStatus } from '../services/ollama/pool.js';
import { builder } from './builder.js';
import { GpuStatus } from './model.js';

/** A host's status and its model services (for the fields that ask it). */
export type OllamaHostShape = OllamaHostStatus & { models: HostModels };

export const OllamaHostStatusType = builder.objectRef<OllamaHostShape>('OllamaHost').implement({
  description: 'One Ollama host of the pool.',
  fields: (t) => ({
    url: t.exposeString('url', { description: 'Base URL, as in OLLAMA_HOST.' }),
    healthy: t.exposeBoolean('healthy', { description: 'False after a failed health check or connection, until it answers again; requests try healthy hosts first.' }),
    error: t.string({ nullable: true, description: 'Why it counts as unhealthy.', resolve: (h) => h.error }),
    checkedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it was last checked or last answered.', resolve: (h) => h.checkedAt }),
    activeRequests: t.exposeInt('activeRequests', { description: 'Generations this gateway instance has running on it now.' }),
    loadedModels: t.stringList({
      nullable: true,
      description: 'Canonical names of the models it has in memory (/api/ps); null when it does not answer.',
      resolve: async (h) => {
        try {
          return [...(await h.models.inventory.loaded(AbortSignal.timeout(2000))).keys()];
        } catch {
          return null;
        }
      },
    }),
    gpu: t.field({ type: GpuStatus, description: 'Its GPU memory.', resolve: async (h) => ({ ...(await h.models.gpu.probe()), host: h.url }) }),
  }),
});
