import { builder } from '../schema/builder.js';
import { MODEL_NAME_HELP, SetInactivityThresholdPayload } from '../schema/model.js';
import { Settings, type SettingsShape } from '../schema/settings.js';
import { MODEL_LIMITS } from '../services/models/limits.js';

const T = MODEL_LIMITS.inactivityThresholdSeconds;

builder.queryField('settings', (t) =>
  t.field({
    type: Settings,
    description: 'Gateway-wide settings: default system prompt, global inactivity threshold, default model.',
    authScopes: { authenticated: true },
    resolve: (): SettingsShape => ({}),
  }),
);

builder.mutationField('setDefaultSystemPrompt', (t) =>
  t.field({
    type: Settings,
    description: 'Sets the system prompt of sessions created from now on (existing sessions keep theirs). Admin only.',
    authScopes: { admin: true },
    args: { prompt: t.arg.string({ required: false, description: 'The prompt; null or blank removes it.' }) },
    resolve: async (_root, { prompt }, ctx): Promise<SettingsShape> => {
      await ctx.services.settings.setDefaultSystemPrompt(prompt ?? null);
      return {};
    },
  }),
);

builder.mutationField('setInactivityThreshold', (t) =>
  t.field({
    type: SetInactivityThresholdPayload,
    description:
      'Sets how long a model may stay idle before it is unloaded: globally, or for one model (catalogued on the fly if it is installed). ' +
      'Sent as keep_alive on every request to the model and enforced by the gateway\'s idle reaper. Admin only.',
    authScopes: { admin: true },
    args: {
      seconds: t.arg.int({ required: false, description: `${T.min} to ${T.max} seconds; null removes the threshold.` }),
      model: t.arg.string({ required: false, description: `Set this model's own threshold instead of the global one. ${MODEL_NAME_HELP}` }),
    },
    resolve: async (_root, { seconds, model }, ctx) => {
      if (model === null || model === undefined) {
        return { model: null, seconds: await ctx.services.settings.setInactivityThresholdSeconds(seconds ?? null) };
      }
      const entry = await ctx.services.models.setModelThreshold(model, seconds ?? null);
      return { model: entry.name, seconds: entry.inactivityThresholdSeconds };
    },
  }),
);
