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
import { OllamaHostStatusType } from '../schema/ollama-host.js';
import { ErrorCode, GatewayError, badInput } from '../services/platform/errors.js';
import { eventStream, rethrowFailure } from '../services/generation/event-stream.js';

const HOST_HELP = 'URL of one Ollama host, as in OLLAMA_HOST (see Query.ollamaHosts); BAD_USER_INPUT for another.';

/** An unknown `host` argument: admin keys are told the valid hosts, other keys are not (host URLs are internal). */
async function withoutHostList<T>(ctx: { principal: { role: string } | null }, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (ctx.principal?.role !== 'ADMIN' && e instanceof GatewayError && e.code === ErrorCode.BAD_USER_INPUT && e.details.field === 'host') {
      throw badInput('Not one of the gateway\'s Ollama hosts.', { field: 'host' });
    }
    throw e;
  }
}

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
    description: 'Models loaded in memory now (Ollama /api/ps of each host), longest time left first, host by host.',
    authScopes: { authenticated: true },
    args: { host: t.arg.string({ required: false, description: `Only this host. ${HOST_HELP}` }) },
    resolve: (_root, { host }, ctx) => withoutHostList(ctx, () => ctx.services.models.overview.running(host)),
  }),
);

builder.queryField('gpu', (t) =>
  t.field({
    type: GpuStatus,
    description: 'GPU memory of one Ollama host (default: the first): GPU_VRAM_BYTES minus what loaded models use, else nvidia-smi, else unknown.',
    authScopes: { authenticated: true },
    args: { host: t.arg.string({ required: false, description: HOST_HELP }) },
    resolve: (_root, { host }, ctx) =>
      withoutHostList(ctx, async () => {
        const target = ctx.services.models.fleet.of(host)[0];
        return { ...(await target.gpu.probe()), host: target.host.url };
      }),
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
      'Starts downloading a model onto one Ollama host, or onto every healthy host, or joins the pull of it already running. Returns once the registry ' +
      'has the model (MODEL_NOT_FOUND otherwise); follow the download with Subscription.pullModel. Admin only.',
    authScopes: { admin: true },
    args: { name: t.arg.string({ required: true, description: MODEL_NAME_HELP }), host: t.arg.string({ required: false, description: `Pull onto this host only. ${HOST_HELP}` }) },
    resolve: (_root, { name, host }, ctx) => ctx.services.models.fleet.beginPull(name, host),
  }),
);

builder.mutationField('loadModel', (t) =>
  t.field({
    type: LoadModelPayload,
    description:
      'Loads a model into memory, with the inactivity threshold as keep_alive. Checks free VRAM against the model\'s size first: ' +
      'INSUFFICIENT_VRAM (with neededBytes and freeBytes) unless force; unknown VRAM loads with a warning. Without a host, the model is loaded ' +
      'where it is already loaded, else on a healthy host that has it installed. Admin only.',
    authScopes: { admin: true },
    args: {
      name: t.arg.string({ required: true, description: MODEL_NAME_HELP }),
      host: t.arg.string({ required: false, description: HOST_HELP }),

      numCtx: t.arg.int({ required: false, description: `Context window in tokens, ${NUM_CTX_RANGE} (Ollama: num_ctx).` }),
      force: t.arg.boolean({ required: false, defaultValue: false, description: 'Load even when the VRAM check fails.' }),
    },
    resolve: (_root, { name, host, numCtx, force }, ctx) => ctx.services.models.fleet.load(name, { host, numCtx, force }),
  }),
);

builder.mutationField('unloadModel', (t) =>
  t.field({
    type: UnloadModelPayload,
    description: 'Unloads a model from memory (keep_alive 0) on one host, or on every host that has it loaded. Requests already running on it finish first. Admin only.',
    authScopes: { admin: true },
    args: { name: t.arg.string({ required: true, description: MODEL_NAME_HELP }), host: t.arg.string({ required: false, description: HOST_HELP }) },
    resolve: (_root, { name, host }, ctx) => ctx.services.models.fleet.unload(name, { host }),
  }),
);

builder.mutationField('deleteModel', (t) =>
  t.field({
    type: UnloadModelPayload,
    description:
      'Deletes a model from one Ollama host, or from every host that has it. A loaded or busy model is refused (BAD_USER_INPUT, extensions.reason MODEL_LOADED) ' +
      'unless force, which unloads it first; without force nothing is deleted while any of those hosts has it loaded. The catalog entry stays. Admin only.',
    authScopes: { admin: true },
    args: {
      name: t.arg.string({ required: true, description: MODEL_NAME_HELP }),
      host: t.arg.string({ required: false, description: HOST_HELP }),

      force: t.arg.boolean({ required: false, defaultValue: false, description: 'Unload and delete even while loaded.' }),
    },
    resolve: (_root, { name, host, force }, ctx) => ctx.services.models.fleet.delete(name, { host, force }),
  }),
);

builder.mutationField('changeModel', (t) =>
  t.field({
    type: ChangeModelPayload,
    description:
      'Switches the default model: checks VRAM (counting what the current default frees), unloads the current default, loads ' +
      'the new one and makes it the default, on one host (without a host: where the new model is loaded or installed). Reports its size in GB. Admin only.',
    authScopes: { admin: true },
    args: {
      to: t.arg.string({ required: true, description: `The new default model. ${MODEL_NAME_HELP}` }),
      host: t.arg.string({ required: false, description: HOST_HELP }),

      numCtx: t.arg.int({ required: false, description: `Context window in tokens, ${NUM_CTX_RANGE}.` }),
      force: t.arg.boolean({ required: false, defaultValue: false, description: 'Go ahead even when the VRAM check fails.' }),
    },
    resolve: (_root, { to, host, numCtx, force }, ctx) => ctx.services.models.fleet.change(to, { host, numCtx, force }),
  }),
);

builder.subscriptionField('pullModel', (t) =>
  t.field({
    type: PullProgress,
    description:
      'Progress of a model pull, to every subscriber, until success (a message with done: true) or a typed error. ' +
      'Starts the pull when none is running; otherwise joins it, beginning with its latest message. Without a host, follows the pulls on ' +
      'every healthy host (each message names its host) until all are done. Admin only.',
    authScopes: { admin: true },
    args: { name: t.arg.string({ required: true, description: MODEL_NAME_HELP }), host: t.arg.string({ required: false, description: HOST_HELP }) },
    subscribe: (_root, { name, host }, ctx) => eventStream(() => ctx.services.models.fleet.followPull(name, host), { failuresAsItems: true }),
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

builder.queryField('ollamaHosts', (t) =>
  t.field({
    type: [OllamaHostStatusType],
    description: 'The Ollama hosts behind the gateway (OLLAMA_HOST), with their health as this gateway instance sees it. Admin only.',
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) => ctx.services.models.fleet.hosts.map((h) => ({ ...h.host.status(), models: h })),
  }),
);
