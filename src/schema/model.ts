import type { GpuDevice, VramReport } from '../services/models/gpu.js';
import type { ModelEvent as ModelEventShape, PullProgress as PullProgressShape } from '../services/models/events.js';
import type { FleetPullStart, FleetUnloadResult, Placement } from '../services/models/fleet.js';
import { type ChangeResult, type LoadResult, toGb } from '../services/models/lifecycle.js';
import { MODEL_LIMITS } from '../services/models/limits.js';
import { type Offload, offloadOf } from '../services/ollama/inventory.js';
import type { ModelView } from '../services/models/overview.js';
import { builder } from './builder.js';
import { Settings, type SettingsShape } from './settings.js';

const T = MODEL_LIMITS.inactivityThresholdSeconds;
const P = MODEL_LIMITS.pricePer1k;
export const NUM_CTX_RANGE = `${MODEL_LIMITS.numCtx.min} to ${MODEL_LIMITS.numCtx.max}`;

/** Model-name arguments accept an alias or an Ollama name. */
const SYSTEM_PROMPT_HELP = `The model's own system prompt, at most ${MODEL_LIMITS.systemPromptLength} characters: used when a request or session brings none (precedence: the request's, the session's, the model's, the gateway's default).`;

export const MODEL_NAME_HELP = 'A catalog alias or an Ollama name ("llama3.2" means "llama3.2:latest"; case does not matter).';

export const ModelOffload = builder.enumType('ModelOffload', {
  description: 'Where a loaded model runs. A model that does not fit in VRAM runs partly or wholly on the CPU, much slower.',
  values: {
    GPU: { description: 'Wholly in GPU memory.' },
    PARTIAL: { description: 'Split: some layers in GPU memory, the rest on the CPU (partly offloaded).' },
    CPU: { description: 'Wholly on the CPU.' },
  } satisfies Record<Offload, { description: string }>,
});

export const ModelRuntime = builder.objectRef<ModelView>('ModelRuntime').implement({
  description: 'A model loaded in memory, as Ollama reports it (/api/ps), plus the gateway\'s idle tracking.',
  fields: (t) => ({
    vramBytes: t.float({ description: 'Bytes of the model in GPU memory (size_vram); 0 when it runs on the CPU.', resolve: (v) => v.loaded!.vramBytes }),
    sizeBytes: t.float({ description: 'Bytes the loaded model takes in memory.', resolve: (v) => v.loaded!.sizeBytes }),
    cpuBytes: t.float({ description: 'Bytes of it in CPU memory (sizeBytes - vramBytes): more than 0 when it is partly or wholly offloaded.', resolve: (v) => Math.max(0, v.loaded!.sizeBytes - v.loaded!.vramBytes) }),
    offload: t.field({ type: ModelOffload, description: 'GPU, PARTIAL or CPU: where it runs.', resolve: (v) => offloadOf(v.loaded!) }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, description: 'When Ollama will unload it unless it is used again (its keep_alive).', resolve: (v) => v.loaded!.expiresAt }),
    contextLength: t.int({ nullable: true, description: 'Context window it was loaded with, in tokens.', resolve: (v) => v.loaded!.contextLength }),
    busy: t.boolean({ description: 'True while requests through the gateway are running on it (the idle reaper leaves it alone).', resolve: (v) => v.busy }),
    lastActiveAt: t.field({ type: 'DateTime', nullable: true, description: 'Last request or load through the gateway.', resolve: (v) => v.lastActiveAt }),
  }),
});

const isAdmin = (ctx: { principal: { role: string } | null }) => ctx.principal?.role === 'ADMIN';
/** Host URLs and probe details are internal: admin keys see them, other keys get null. */
const adminOnly = <T>(ctx: { principal: { role: string } | null }, value: T): T | null => (isAdmin(ctx) ? value : null);

export const ModelPlacement = builder.objectRef<Placement>('ModelPlacement').implement({
  description: 'What one Ollama host has of a model.',
  fields: (t) => ({
    host: t.string({ nullable: true, description: 'URL of the Ollama host (as in OLLAMA_HOST); null for non-admin keys (host URLs are internal).', resolve: (p, _a, ctx) => adminOnly(ctx, p.host) }),
    installed: t.boolean({ description: 'True when the host has the model on disk.', resolve: (p) => p.installed !== null }),
    digest: t.string({ nullable: true, description: 'Digest of the host\'s copy.', resolve: (p) => p.installed?.digest ?? null }),
    loaded: t.boolean({ description: 'True while the model is in the host\'s memory.', resolve: (p) => p.loaded !== null }),
    vramBytes: t.float({ nullable: true, description: 'Bytes of it in the host\'s GPU memory while loaded.', resolve: (p) => p.loaded?.vramBytes ?? null }),
    cpuBytes: t.float({ nullable: true, description: 'Bytes of it in the host\'s CPU memory while loaded (partly or wholly offloaded).', resolve: (p) => (p.loaded ? Math.max(0, p.loaded.sizeBytes - p.loaded.vramBytes) : null) }),
    offload: t.field({ type: ModelOffload, nullable: true, description: 'Where it runs on this host while loaded: GPU, PARTIAL or CPU.', resolve: (p) => (p.loaded ? offloadOf(p.loaded) : null) }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, description: 'When the host will unload it unless it is used again.', resolve: (p) => p.loaded?.expiresAt ?? null }),
  }),
});

export const Model = builder.objectRef<ModelView>('Model').implement({
  description: 'A model: its catalog entry (if any), merged with what the Ollama hosts have installed (/api/tags) and loaded (/api/ps).',
  fields: (t) => ({
    name: t.string({ description: 'Canonical Ollama name: lower case, with a tag ("llama3.2:latest").', resolve: (v) => v.key }),
    alias: t.string({ nullable: true, description: 'Short name requests may use instead of the Ollama name.', resolve: (v) => v.entry?.alias ?? null }),
    description: t.string({ nullable: true, description: 'Catalog description.', resolve: (v) => v.entry?.description ?? null }),
    systemPrompt: t.string({ nullable: true, description: 'The model\'s own system prompt (catalog), used when a request or session brings none.', resolve: (v) => v.entry?.systemPrompt ?? null }),
    inCatalog: t.boolean({ description: 'True when the model has a catalog entry.', resolve: (v) => v.entry !== null }),
    enabled: t.boolean({ description: 'False when the catalog disables it: requests for it get MODEL_NOT_FOUND.', resolve: (v) => v.entry?.enabled ?? true }),
    isDefault: t.boolean({ description: 'True for the default model.', resolve: (v) => v.entry?.isDefault ?? false }),
    promptPricePer1k: t.float({ nullable: true, description: 'Credits per 1,000 prompt tokens, on top of the flat request cost.', resolve: (v) => v.entry?.promptPricePer1k ?? null }),
    completionPricePer1k: t.float({ nullable: true, description: 'Credits per 1,000 generated tokens, on top of the flat request cost.', resolve: (v) => v.entry?.completionPricePer1k ?? null }),
    inactivityThresholdSeconds: t.int({ nullable: true, description: 'The model\'s own inactivity threshold in seconds (null: the global one applies).', resolve: (v) => v.entry?.inactivityThresholdSeconds ?? null }),
    effectiveInactivityThresholdSeconds: t.int({
      nullable: true,
      description: 'Threshold that applies (own, else global): sent as keep_alive and enforced by the idle reaper. Null: none.',
      resolve: (v) => v.effectiveThresholdSeconds,
    }),
    installed: t.boolean({ description: 'True when an Ollama host has the model (the fields below describe the first host\'s copy).', resolve: (v) => v.installed !== null }),
    sizeBytes: t.float({ nullable: true, description: 'Size on disk in bytes (null when not installed).', resolve: (v) => v.installed?.sizeBytes ?? null }),
    sizeGb: t.float({ nullable: true, description: 'Size on disk in GB (10^9 bytes), two decimals.', resolve: (v) => (v.installed ? toGb(v.installed.sizeBytes) : null) }),
    digest: t.string({ nullable: true, description: 'Digest of the installed model.', resolve: (v) => v.installed?.digest ?? null }),
    family: t.string({ nullable: true, description: 'Model family, e.g. "llama".', resolve: (v) => v.installed?.family ?? null }),
    parameterSize: t.string({ nullable: true, description: 'Parameter count as Ollama reports it, e.g. "3.2B".', resolve: (v) => v.installed?.parameterSize ?? null }),
    quantizationLevel: t.string({ nullable: true, description: 'Quantization, e.g. "Q4_K_M".', resolve: (v) => v.installed?.quantizationLevel ?? null }),
    modifiedAt: t.field({ type: 'DateTime', nullable: true, description: 'When the installed copy last changed.', resolve: (v) => v.installed?.modifiedAt ?? null }),
    capabilities: t.stringList({
      nullable: true,
      description: 'What the model can do, from /api/show (e.g. "completion", "tools", "vision", "thinking"); cached per digest. Null when not installed or unknown.',
      resolve: async (v, _a, ctx) =>
        v.installed && v.installedOn ? ctx.services.models.fleet.one(v.installedOn).inventory.capabilities(v.installed.name, v.installed.digest).catch(() => null) : null,
    }),
    loaded: t.boolean({ description: 'True while the model is in memory on some host.', resolve: (v) => v.loaded !== null }),
    runtime: t.field({ type: ModelRuntime, nullable: true, description: 'Memory use and expiry on the first host that has it loaded; null when none has.', resolve: (v) => (v.loaded ? v : null) }),
    hosts: t.field({ type: [ModelPlacement], description: 'Each Ollama host that has the model installed or loaded.', resolve: (v) => v.placements }),
  }),
});

export const RegisterModelInput = builder.inputType('RegisterModelInput', {
  description: 'A new catalog entry. The model does not have to be installed yet.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Ollama name, e.g. "llama3.2" (stored as "llama3.2:latest").' }),
    alias: t.string({ required: false, description: 'Short name, 1 to 64 of a-z 0-9 _ - . (no ":" or "/"); stored in lower case, unique.' }),
    description: t.string({ required: false, description: `Free text, at most ${MODEL_LIMITS.descriptionLength} characters.` }),
    systemPrompt: t.string({ required: false, description: SYSTEM_PROMPT_HELP }),
    enabled: t.boolean({ required: false, description: 'Whether requests may use it (default true).' }),
    isDefault: t.boolean({ required: false, description: 'Make it the default model (the previous default stops being one).' }),
    promptPricePer1k: t.float({ required: false, description: `Credits per 1,000 prompt tokens, ${P.min} to ${P.max}.` }),
    completionPricePer1k: t.float({ required: false, description: `Credits per 1,000 generated tokens, ${P.min} to ${P.max}.` }),
    inactivityThresholdSeconds: t.int({ required: false, description: `Own inactivity threshold, ${T.min} to ${T.max} seconds.` }),
  }),
});

export const UpdateModelInput = builder.inputType('UpdateModelInput', {
  description: 'Changes to a catalog entry: omitted fields stay as they are; null clears alias, description, prices and threshold.',
  fields: (t) => ({
    alias: t.string({ required: false, description: 'Short name (null removes it).' }),
    description: t.string({ required: false, description: `Free text, at most ${MODEL_LIMITS.descriptionLength} characters (null removes it).` }),
    systemPrompt: t.string({ required: false, description: `${SYSTEM_PROMPT_HELP} Null removes it.` }),
    enabled: t.boolean({ required: false, description: 'Whether requests may use it.' }),
    isDefault: t.boolean({ required: false, description: 'Make it the default model (true), or stop it being the default (false).' }),
    promptPricePer1k: t.float({ required: false, description: `Credits per 1,000 prompt tokens, ${P.min} to ${P.max} (null: none).` }),
    completionPricePer1k: t.float({ required: false, description: `Credits per 1,000 generated tokens, ${P.min} to ${P.max} (null: none).` }),
    inactivityThresholdSeconds: t.int({ required: false, description: `Own inactivity threshold, ${T.min} to ${T.max} seconds (null: the global one applies).` }),
  }),
});

export const VramSource = builder.enumType('VramSource', {
  description: 'Where the VRAM figures come from.',
  values: {
    NVIDIA_SMI: { description: 'nvidia-smi on the gateway host.' },
    CONFIGURED: { description: 'GPU_VRAM_BYTES minus what Ollama reports its loaded models use.' },
    UNKNOWN: { description: 'No probe worked: loads proceed without a VRAM check, with a warning.' },
  } as const,
});

export const Gpu = builder.objectRef<GpuDevice>('Gpu').implement({
  description: 'One GPU as nvidia-smi reports it.',
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'GPU index.' }),
    name: t.exposeString('name', { description: 'Product name.' }),
    totalBytes: t.float({ nullable: true, description: 'Total memory in bytes (null when the driver reports [N/A]).', resolve: (g) => g.totalBytes }),
    usedBytes: t.float({ nullable: true, description: 'Used memory in bytes.', resolve: (g) => g.usedBytes }),
    freeBytes: t.float({ nullable: true, description: 'Free memory in bytes.', resolve: (g) => g.freeBytes }),
  }),
});

/** A VRAM report and the host it describes. */
export type HostVramReport = VramReport & { host: string };

export const GpuStatus = builder.objectRef<HostVramReport>('GpuStatus').implement({
  description: 'GPU memory on one Ollama host, summed over its GPUs.',
  fields: (t) => ({
    host: t.string({ nullable: true, description: 'URL of the Ollama host (as in OLLAMA_HOST); null for non-admin keys.', resolve: (r, _a, ctx) => adminOnly(ctx, r.host) }),
    source: t.field({ type: VramSource, description: 'Where the figures come from.', resolve: (r) => r.source }),
    totalBytes: t.float({ nullable: true, description: 'Total VRAM in bytes; null when unknown.', resolve: (r) => r.totalBytes }),
    usedBytes: t.float({ nullable: true, description: 'Used VRAM in bytes; null when unknown.', resolve: (r) => r.usedBytes }),
    freeBytes: t.float({ nullable: true, description: 'Free VRAM in bytes; null when unknown.', resolve: (r) => r.freeBytes }),
    gpus: t.field({ type: [Gpu], description: 'Each GPU (nvidia-smi only).', resolve: (r) => r.gpus }),
    warning: t.string({
      nullable: true,
      description: 'Why the figures are unknown, when they are; non-admin keys get a general note (no paths or probe details).',
      resolve: (r, _a, ctx) => (r.warning && !isAdmin(ctx) ? 'Some VRAM figures are unknown.' : r.warning),
    }),
  }),
});

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer X> ? X : never;

/** Fields shared by the payloads of loadModel and changeModel. */
const loadFields = <R extends LoadResult>(t: PothosSchemaTypes.ObjectFieldBuilder<Types, R>) => ({
  host: t.string({ description: 'URL of the Ollama host the model was loaded on.', resolve: (r) => r.host }),
  model: t.field({ type: Model, description: 'The model, as it is now.', resolve: (r, _a, ctx) => ctx.services.models.overview.get(r.model) }),
  neededBytes: t.float({ description: 'VRAM the model needs (its size).', resolve: (r) => r.neededBytes }),
  freeBytes: t.float({ nullable: true, description: 'Free VRAM it was checked against; null when unknown (no check).', resolve: (r) => r.freeBytes }),
  keepAliveSeconds: t.int({ nullable: true, description: 'keep_alive sent to Ollama as the inactivity threshold; null: none applies, so the gateway sent its OLLAMA_KEEP_ALIVE default.', resolve: (r) => r.keepAliveSeconds }),
  warnings: t.stringList({ description: 'E.g. VRAM unknown, or forced past the VRAM check.', resolve: (r) => r.warnings }),
});

export const LoadModelPayload = builder.objectRef<LoadResult>('LoadModelPayload').implement({
  description: 'Result of loadModel.',
  fields: (t) => loadFields(t),
});

export const ChangeModelPayload = builder.objectRef<ChangeResult>('ChangeModelPayload').implement({
  description: 'Result of changeModel: the new default model, loaded.',
  fields: (t) => ({
    ...loadFields(t),
    sizeGb: t.float({ description: 'Size of the new default model in GB (10^9 bytes), two decimals.', resolve: (r) => toGb(r.sizeBytes) }),
    previous: t.string({ nullable: true, description: 'The default model before the change.', resolve: (r) => r.previous }),
    previousUnloaded: t.boolean({ description: 'True when the previous default was loaded and has been unloaded.', resolve: (r) => r.previousUnloaded }),
  }),
});

export const UnloadModelPayload = builder.objectRef<FleetUnloadResult>('UnloadModelPayload').implement({
  description: 'Result of unloadModel or deleteModel.',
  fields: (t) => ({
    model: t.exposeString('model', { description: 'Canonical Ollama name.' }),
    wasLoaded: t.exposeBoolean('wasLoaded', { description: 'True when the model was in memory on at least one host (and was unloaded).' }),
    hosts: t.exposeStringList('hosts', { description: 'unloadModel: hosts it was unloaded from; deleteModel: hosts it was deleted from.' }),
  }),
});

export const PullProgress = builder.objectRef<PullProgressShape>('PullProgress').implement({
  description: 'One progress message of a model pull.',
  fields: (t) => ({
    model: t.exposeString('model', { description: 'Canonical Ollama name being pulled.' }),
    host: t.exposeString('host', { description: 'URL of the Ollama host pulling it.' }),
    status: t.exposeString('status', { description: 'Ollama\'s status: "pulling manifest", "pulling <digest>", "verifying sha256 digest", "writing manifest", "success".' }),
    digest: t.string({ nullable: true, description: 'Layer being downloaded.', resolve: (p) => p.digest }),
    completed: t.float({ nullable: true, description: 'Bytes of the layer downloaded so far.', resolve: (p) => p.completed }),
    total: t.float({ nullable: true, description: 'Bytes of the layer.', resolve: (p) => p.total }),
    percent: t.float({ nullable: true, description: 'completed / total of the layer in percent (100 on success).', resolve: (p) => p.percent }),
    done: t.exposeBoolean('done', { description: 'True on the last message (success).' }),
  }),
});

export const PullModelPayload = builder
  .objectRef<FleetPullStart>('PullModelPayload')
  .implement({
    description: 'A pull that started (or was already running): follow it with Subscription.pullModel.',
    fields: (t) => ({
      model: t.exposeString('model', { description: 'Canonical Ollama name being pulled.' }),
      joined: t.exposeBoolean('joined', { description: 'True when a pull of this model was already running and this request joined it.' }),
      progress: t.field({ type: PullProgress, nullable: true, description: 'Latest progress message (of the first host).', resolve: (p) => p.progress }),
      hosts: t.exposeStringList('hosts', { description: 'Ollama hosts pulling the model.' }),
    }),
  });

export const ModelEventType = builder.enumType('ModelEventType', {
  description: 'What happened to a model.',
  values: {
    PULLED: { description: 'A pull finished: the model is installed.' },
    LOADED: { description: 'The model was loaded into memory.' },
    UNLOADED: { description: 'The model left memory.' },
    DELETED: { description: 'The model was deleted from an Ollama host.' },
  } as const,
});

export const ModelEventReason = builder.enumType('ModelEventReason', {
  description: 'Why it happened.',
  values: {
    REQUEST: { description: 'An admin asked for it.' },
    IDLE: { description: 'Unused for longer than its inactivity threshold.' },
    CHANGED: { description: 'changeModel swapped the default model.' },
  } as const,
});

export const ModelEvent = builder.objectRef<ModelEventShape>('ModelEvent').implement({
  description: 'A model lifecycle event.',
  fields: (t) => ({
    type: t.field({ type: ModelEventType, description: 'What happened.', resolve: (e) => e.type }),
    reason: t.field({ type: ModelEventReason, description: 'Why.', resolve: (e) => e.reason }),
    model: t.exposeString('model', { description: 'Canonical Ollama name.' }),
    at: t.field({ type: 'DateTime', description: 'When.', resolve: (e) => new Date(e.at) }),
    sizeBytes: t.float({ nullable: true, description: 'Size of the model in bytes, when known.', resolve: (e) => e.sizeBytes }),
    host: t.string({ nullable: true, description: 'URL of the Ollama host it happened on; null for non-admin keys.', resolve: (e, _a, ctx) => adminOnly(ctx, e.host ?? null) }),
  }),
});

export const SetInactivityThresholdPayload = builder
  .objectRef<{ model: string | null; seconds: number | null }>('SetInactivityThresholdPayload')
  .implement({
    description: 'The stored threshold and the settings after the change.',
    fields: (t) => ({
      seconds: t.int({ nullable: true, description: 'The threshold now stored (null: removed).', resolve: (p) => p.seconds }),
      model: t.field({
        type: Model,
        nullable: true,
        description: 'The model whose own threshold was set; null when the global threshold was set.',
        resolve: (p, _a, ctx) => (p.model ? ctx.services.models.overview.get(p.model) : null),
      }),
      settings: t.field({ type: Settings, description: 'Settings, including the global threshold.', resolve: (): SettingsShape => ({}) }),
    }),
  });
