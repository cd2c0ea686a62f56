import { MAX_SYSTEM_PROMPT_CHARS } from '../services/platform/settings.js';
import { builder } from './builder.js';

/** Settings have no shape of their own: every field reads the current value. */
export type SettingsShape = Record<string, never>;

export const Settings = builder.objectRef<SettingsShape>('Settings').implement({
  description: 'Gateway-wide settings an admin can change at run time.',
  fields: (t) => ({
    defaultSystemPrompt: t.string({
      nullable: true,
      description: `System prompt that sessions created from now on start with (at most ${MAX_SYSTEM_PROMPT_CHARS} characters); existing sessions keep theirs.`,
      resolve: (_s, _a, ctx) => ctx.services.settings.getDefaultSystemPrompt(),
    }),
    inactivityThresholdSeconds: t.int({
      nullable: true,
      description:
        'Global idle time in seconds after which a loaded model is unloaded (models may have their own). Sent to Ollama as keep_alive. ' +
        'Null: no threshold (the gateway sends OLLAMA_KEEP_ALIVE, default 5m).',
      resolve: (_s, _a, ctx) => ctx.services.settings.getInactivityThresholdSeconds(),
    }),
    defaultModel: t.string({
      nullable: true,
      description: 'Ollama name of the default model (set by changeModel or the catalog), if any.',
      resolve: async (_s, _a, ctx) => (await ctx.services.models.catalog.defaultEntry())?.name ?? null,
    }),
  }),
});
