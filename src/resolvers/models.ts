import { builder } from '../schema/builder.js';
import {
  ChangeModelPayload,
  GpuStatus,
  LoadModelPayload,
  MODEL_NAME_HELP,
  Model,
  ModelEvent,
  NUM_CTX_RANGE,
  PullModelPayload,
  PullProgress,
  RegisterModelInput,
  UnloadModelPayload,
  UpdateModelInput,
} from '../schema/model.js';
import { failuresAsItems, rethrowFailure } from './stream.js';

builder.queryField('models', (t) =>
  t.field({
    type: [Model],
    description: 'Every catalogued or installed model, with install, memory and catalog details.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.models.overview.list(),
  }),
);

builder.queryField('model', (t) =>
  t.field({
    type: Model,
    description: 'One model by alias or Ollama name (MODEL_NOT_FOUND when it is neither catalogued nor installed).',
    authScopes: { authenticated: true },
    args: { name: t.arg.string({ required: true, description: MODEL_NAME_HELP }) },
    resolve: (_root, { name }, ctx) => ctx.services.models.overview.get(name),
  }),
);

builder.queryField('runningModels', (t) =>
  t.field({
    type: [Model],
    description: 'Models loaded in memory now (Ollama /api/ps), longest time left first.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.models.overview.running(),
  }),
);

builder.queryField('gpu', (t) =>
  t.field({
    type: GpuStatus,
    description: 'GPU memory: GPU_VRAM_BYTES minus what loaded models use, else nvidia-smi, else unknown.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.gpu.probe(),
  }),
);

builder.mutationField('registerModel', (t) =>
  t.field({
    type: Model,
    description: 'Adds a catalog entry (alias, description, prices, threshold). BAD_USER_INPUT when the name is already catalogued or the alias is taken. Admin only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RegisterModelInput, required: true, description: 'The entry.' }) },
    resolve: async (_root, { input }, ctx) => ctx.services.models.overview.get((await ctx.services.models.catalog.register(input)).name),
  }),
);

builder.mutationField('updateModel', (t) =>
  t.field({
    type: Model,
    description: 'Changes a catalog entry (MODEL_NOT_FOUND when the name or alias has none). Admin only.',
    authScopes: { admin: true },
    args: {
      name: t.arg.string({ required: true, description: MODEL_NAME_HELP }),
      input: t.arg({ type: UpdateModelInput, required: true, description: 'Fields to change.' }),
    },
    resolve: async (_root, { name, input }, ctx) => ctx.services.models.overview.get((await ctx.services.models.catalog.update(name, input)).name),
  }),
);

builder.mutationField('pullModel', (t) =>
  t.field({
    type: PullModelPayload,
    description:
      'Starts downloading a model onto the Ollama host, or joins the pull of it already running. Returns once the registry ' +
      'has the model (MODEL_NOT_FOUND otherwise); follow the download with Subscription.pullModel. Admin only.',
    authScopes: { admin: true },
    args: { name: t.arg.string({ required: true, description: MODEL_NAME_HELP }) },
    resolve: (_root, { name }, ctx) => ctx.services.models.pulls.begin(name),
  }),
);

builder.mutationField('loadModel', (t) =>
  t.field({
    type: LoadModelPayload,
    description:
      'Loads a model into memory, with the inactivity threshold as keep_alive. Checks free VRAM against the model\'s size first: ' +
      'INSUFFICIENT_VRAM (with neededBytes and freeBytes) unless force; unknown VRAM loads with a warning. Admin only.',
    authScopes: { admin: true },
    args: {
      name: t.arg.string({ required: true, description: MODEL_NAME_HELP }),
      numCtx: t.arg.int({ required: false, description: `Context window in tokens, ${NUM_CTX_RANGE} (Ollama: num_ctx).` }),
      force: t.arg.boolean({ required: false, defaultValue: false, description: 'Load even when the VRAM check fails.' }),
    },
    resolve: (_root, { name, numCtx, force }, ctx) => ctx.services.models.lifecycle.load(name, { numCtx, force }),
  }),
);

builder.mutationField('unloadModel', (t) =>
  t.field({
    type: UnloadModelPayload,
    description: 'Unloads a model from memory (keep_alive 0). Requests already running on it finish first. Admin only.',
    authScopes: { admin: true },
    args: { name: t.arg.string({ required: true, description: MODEL_NAME_HELP }) },
    resolve: (_root, { name }, ctx) => ctx.services.models.lifecycle.unload(name),
  }),
);

builder.mutationField('deleteModel', (t) =>
  t.field({
    type: UnloadModelPayload,
    description:
      'Deletes a model from the Ollama host. A loaded or busy model is refused (BAD_USER_INPUT, extensions.reason MODEL_LOADED) ' +
      'unless force, which unloads it first. The catalog entry stays. Admin only.',
    authScopes: { admin: true },
    args: {
      name: t.arg.string({ required: true, description: MODEL_NAME_HELP }),
      force: t.arg.boolean({ required: false, defaultValue: false, description: 'Unload and delete even while loaded.' }),
    },
    resolve: (_root, { name, force }, ctx) => ctx.services.models.lifecycle.delete(name, { force }),
  }),
);

builder.mutationField('changeModel', (t) =>
  t.field({
    type: ChangeModelPayload,
    description:
      'Switches the default model: checks VRAM (counting what the current default frees), unloads the current default, loads ' +
      'the new one and makes it the default. Reports its size in GB. Admin only.',
    authScopes: { admin: true },
    args: {
      to: t.arg.string({ required: true, description: `The new default model. ${MODEL_NAME_HELP}` }),
      numCtx: t.arg.int({ required: false, description: `Context window in tokens, ${NUM_CTX_RANGE}.` }),
      force: t.arg.boolean({ required: false, defaultValue: false, description: 'Go ahead even when the VRAM check fails.' }),
    },
    resolve: (_root, { to, numCtx, force }, ctx) => ctx.services.models.lifecycle.change(to, { numCtx, force }),
  }),
);

builder.subscriptionField('pullModel', (t) =>
  t.field({
    type: PullProgress,
    description:
      'Progress of a model pull, to every subscriber, until success (a message with done: true) or a typed error. ' +
      'Starts the pull when none is running; otherwise joins it, beginning with its latest message. Admin only.',
    authScopes: { admin: true },
    args: { name: t.arg.string({ required: true, description: MODEL_NAME_HELP }) },
    subscribe: (_root, { name }, ctx) => failuresAsItems(ctx.services.models.pulls.follow(name)),
    resolve: rethrowFailure,
  }),
);

builder.subscriptionField('modelEvents', (t) =>
  t.field({
    type: ModelEvent,
    description: 'Model lifecycle events as they happen: PULLED, LOADED, UNLOADED (reason REQUEST, IDLE or CHANGED), DELETED.',
    authScopes: { authenticated: true },
    subscribe: (_root, _args, ctx) => ctx.services.pubsub.subscribe('models:event'),
    resolve: (event) => event,
  }),
);
