import type {
  DoneEvent,
  GenerationEvent as GenerationEventShape,
  GenerationResult as GenerationResultShape,
  Usage as UsageShape,
} from '../services/generation/types.js';
import { OPTION_LIMITS as L } from '../services/generation/options.js';
import { builder } from './builder.js';
import { FORMAT_HELP, Think, ToolCall } from './reasoning-and-tools.js';

export const GenerationOptionsInput = builder.inputType('GenerationOptions', {
  description: 'Sampling options. Unset fields use the model\'s defaults. Out-of-range values are rejected with BAD_USER_INPUT.',
  fields: (t) => ({
    temperature: t.float({ required: false, description: `Randomness, ${L.temperature.min} to ${L.temperature.max} (Ollama: temperature).` }),
    maxTokens: t.int({ required: false, description: `Most tokens to generate, ${L.maxTokens.min} to ${L.maxTokens.max} (Ollama: num_predict).` }),
    repetitionPenalty: t.float({ required: false, description: `Penalty for repeating tokens, ${L.repetitionPenalty.min} to ${L.repetitionPenalty.max} (Ollama: repeat_penalty).` }),
    topP: t.float({ required: false, description: `Nucleus sampling, ${L.topP.min} to ${L.topP.max} (Ollama: top_p).` }),
    topK: t.int({ required: false, description: `Sample from the K most likely tokens, ${L.topK.min} to ${L.topK.max} (Ollama: top_k).` }),
    seed: t.int({ required: false, description: 'Random seed for reproducible output (Ollama: seed).' }),
    stop: t.stringList({ required: false, description: `Stop generating at any of these strings; at most ${L.stop.maxItems}, each at most ${L.stop.maxLength} characters (Ollama: stop).` }),
    numCtx: t.int({ required: false, description: `Context window in tokens, ${L.numCtx.min} to ${L.numCtx.max} (Ollama: num_ctx). Changing it reloads the model.` }),
    think: t.field({ type: Think, required: false, description: 'Reasoning on, off or a level (Ollama: think). ON or a level on a model without the thinking capability is CAPABILITY_MISSING.' }),
  }),
});

export const GenerateInput = builder.inputType('GenerateInput', {
  description: 'A one-shot prompt for a model.',
  fields: (t) => ({
    model: t.string({ required: true, description: 'Ollama model name, e.g. "llama3.2" or "llama3.2:latest".' }),
    prompt: t.string({ required: true, description: 'The prompt.' }),
    system: t.string({ required: false, description: 'System prompt for this request (else the model\'s, else the gateway\'s default).' }),
    options: t.field({ type: GenerationOptionsInput, required: false, description: 'Sampling options.' }),
    format: t.field({ type: 'JSON', required: false, description: FORMAT_HELP }),
    images: t.stringList({ required: false, description: 'Base64 images (a data: prefix is accepted); vision models only.' }),
    imageUploads: t.field({ type: ['File'], required: false, description: 'Images uploaded with the GraphQL multipart request spec; vision models only.' }),
    imageUrls: t.stringList({
      required: false,
      description: 'http(s) URLs the gateway downloads (private, loopback and link-local addresses are refused unless allowed by configuration); vision models only.',
    }),
  }),
});

export const GenerationEventType = builder.enumType('GenerationEventType', {
  description: 'Kind of a streamed generation event.',
  values: {
    PHASE: { description: 'Where the request is before its first token: `phase` (and `queuePosition` while QUEUED).' },
    TOKEN: { description: 'More output: `delta` holds one or more tokens of the answer, `thinking` of the reasoning, `toolCalls` the calls completed.' },
    DONE: { description: 'The last event: usage, done reason and credits charged. The answer is stored before it is sent.' },
  } as const,
});

export const GenerationPhase = builder.enumType('GenerationPhase', {
  description: 'Progress of a request before its first token.',
  values: {
    QUEUED: { description: 'Waiting for a free slot on the model; `queuePosition` says how many requests are ahead, plus one.' },
    LOADING_MODEL: { description: 'The model is not in GPU memory and is being loaded.' },
    GENERATING: { description: 'The model is working on the request; tokens follow.' },
  } as const,
});

export const Usage = builder.objectRef<UsageShape>('Usage').implement({
  description: 'Token counts reported by Ollama.',
  fields: (t) => ({
    promptTokens: t.exposeInt('promptTokens', { description: 'Tokens in the prompt (Ollama: prompt_eval_count).' }),
    completionTokens: t.exposeInt('completionTokens', { description: 'Tokens generated (Ollama: eval_count).' }),
    totalTokens: t.exposeInt('totalTokens', { description: 'Prompt plus completion tokens.' }),
  }),
});

const done = (e: GenerationEventShape): DoneEvent | null => (e.type === 'DONE' ? e : null);

export const GenerationEvent = builder.objectRef<GenerationEventShape>('GenerationEvent').implement({
  description: 'One event of a generation stream: PHASE events, TOKEN events with text, then one DONE event that ends the stream.',
  fields: (t) => ({
    type: t.field({ type: GenerationEventType, description: 'Kind of event.', resolve: (e) => e.type }),
    generationId: t.exposeID('generationId', { description: 'Identifier of the generation in the usage log.' }),
    phase: t.field({ type: GenerationPhase, nullable: true, description: 'PHASE: where the request is.', resolve: (e) => (e.type === 'PHASE' ? e.phase : null) }),
    queuePosition: t.int({ nullable: true, description: 'PHASE QUEUED: requests ahead of this one, plus one.', resolve: (e) => (e.type === 'PHASE' ? e.queuePosition : null) }),
    delta: t.string({ nullable: true, description: 'TOKEN: the new text (one or more tokens).', resolve: (e) => (e.type === 'TOKEN' ? e.delta : null) }),
    tokenCount: t.int({ nullable: true, description: 'TOKEN: how many tokens `delta` and `thinking` hold.', resolve: (e) => (e.type === 'TOKEN' ? e.tokenCount : null) }),
    thinking: t.string({ nullable: true, description: 'TOKEN: new reasoning text (thinking models stream it before the answer); null when none.', resolve: (e) => (e.type === 'TOKEN' ? (e.thinking ?? null) : null) }),
    toolCalls: t.field({ type: [ToolCall], nullable: true, description: 'TOKEN: tool calls the model completed; null when none.', resolve: (e) => (e.type === 'TOKEN' ? (e.toolCalls ?? null) : null) }),
    doneReason: t.string({ nullable: true, description: 'DONE: why generation stopped ("stop" or "length").', resolve: (e) => done(e)?.doneReason ?? null }),
    usage: t.field({ type: Usage, nullable: true, description: 'DONE: token counts.', resolve: (e) => done(e)?.usage ?? null }),
    creditsCharged: t.int({ nullable: true, description: 'DONE: credits taken from the key for this request.', resolve: (e) => done(e)?.creditsCharged ?? null }),
    durationMs: t.int({ nullable: true, description: 'DONE: wall time of the request in milliseconds.', resolve: (e) => done(e)?.durationMs ?? null }),
    messageId: t.id({ nullable: true, description: 'DONE: the stored assistant message (session chats only).', resolve: (e) => done(e)?.messageId ?? null }),
  }),
});

export const GenerationResult = builder.objectRef<GenerationResultShape>('GenerationResult').implement({
  description: 'A complete, non-streamed answer.',
  fields: (t) => ({
    generationId: t.exposeID('generationId', { description: 'Identifier of the generation in the usage log.' }),
    model: t.exposeString('model', { description: 'Model that answered, as requested.' }),
    text: t.exposeString('text', { description: 'The whole answer.' }),
    thinking: t.string({ nullable: true, description: 'The whole reasoning, or null when the model did not reason.', resolve: (r) => r.thinking }),
    toolCalls: t.field({ type: [ToolCall], description: 'Tool calls the model made (empty when none).', resolve: (r) => r.toolCalls }),
    doneReason: t.exposeString('doneReason', { description: 'Why generation stopped ("stop" or "length").' }),
    usage: t.field({ type: Usage, description: 'Token counts.', resolve: (r) => r.usage }),
    creditsCharged: t.exposeInt('creditsCharged', { description: 'Credits taken from the key for this request.' }),
    durationMs: t.exposeInt('durationMs', { description: 'Wall time of the request in milliseconds.' }),
  }),
});
