import type { Session } from '../entities/session.js';
import type { ChatResult } from '../services/generation/chat-service.js';
import type { ChatTurn, SessionPage } from '../services/sessions/session-service.js';
import { builder } from './builder.js';
import { FORMAT_HELP, ToolCall, ToolCallInput, ToolInput, ToolResultInput } from './reasoning-and-tools.js';
import { GenerationOptionsInput, Usage } from './generation.js';

export const ChatRole = builder.enumType('ChatRole', {
  description: 'Who wrote a message.',
  values: {
    SYSTEM: { value: 'system', description: 'Instructions for the model (the system prompt).' },
    USER: { value: 'user', description: 'The person or application asking.' },
    ASSISTANT: { value: 'assistant', description: 'The model.' },
    TOOL: { value: 'tool', description: 'The answer of a tool the model called (toolName, toolCallId).' },
  } as const,
});

export const MessageStatus = builder.enumType('MessageStatus', {
  description: 'State of a stored message.',
  values: {
    STREAMING: { description: 'The model is still writing it.' },
    COMPLETE: { description: 'Finished normally.' },
    CANCELLED: { description: 'Stopped early by the client or the gateway; holds the text produced until then.' },
    ERROR: { description: 'Stopped by an error; holds the text produced until then and `errorCode`.' },
    INTERRUPTED: { description: 'Cut by a gateway crash; holds the text saved until then.' },
  } as const,
});

export const MessageType = builder.objectRef<ChatTurn>('Message').implement({
  description: 'One message of a conversation.',
  fields: (t) => ({
    id: t.id({ nullable: true, description: 'Identifier of the stored message; null for a session\'s system prompt and for stateless chats.', resolve: (m) => m.id }),
    role: t.field({ type: ChatRole, description: 'Who wrote it.', resolve: (m) => m.role }),
    content: t.exposeString('content', { description: 'The text.' }),
    thinking: t.string({ nullable: true, description: 'ASSISTANT: the model\'s reasoning, kept apart from the answer (never sent back to the model).', resolve: (m) => m.thinking }),
    toolCalls: t.field({ type: [ToolCall], description: 'ASSISTANT: tool calls the model made (empty when none).', resolve: (m) => m.toolCalls }),
    toolName: t.string({ nullable: true, description: 'TOOL: the tool that answered.', resolve: (m) => m.toolName }),
    toolCallId: t.id({ nullable: true, description: 'TOOL: the call it answers.', resolve: (m) => m.toolCallId }),
    status: t.field({ type: MessageStatus, description: 'State of the message.', resolve: (m) => m.status }),
    imageCount: t.exposeInt('imageCount', { description: 'Number of images attached (user messages).' }),
    promptTokens: t.int({ nullable: true, description: 'Tokens of the prompt this user message completed (reported by Ollama).', resolve: (m) => m.promptTokens }),
    completionTokens: t.int({ nullable: true, description: 'Tokens generated (assistant messages).', resolve: (m) => m.completionTokens }),
    errorCode: t.string({ nullable: true, description: 'Error code when the message ended in ERROR or CANCELLED.', resolve: (m) => m.errorCode }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was written.', resolve: (m) => m.createdAt }),
  }),
});

export const SessionOptions = builder.objectRef<Record<string, unknown>>('SessionOptions').implement({
  description: 'Sampling options stored with a session (each chat turn may override them).',
  fields: (t) => ({
    temperature: t.float({ nullable: true, description: 'Randomness.', resolve: (o) => (o.temperature as number | undefined) ?? null }),
    maxTokens: t.int({ nullable: true, description: 'Most tokens per answer.', resolve: (o) => (o.maxTokens as number | undefined) ?? null }),
    repetitionPenalty: t.float({ nullable: true, description: 'Penalty for repeating tokens.', resolve: (o) => (o.repetitionPenalty as number | undefined) ?? null }),
    topP: t.float({ nullable: true, description: 'Nucleus sampling.', resolve: (o) => (o.topP as number | undefined) ?? null }),
    topK: t.int({ nullable: true, description: 'Top-K sampling.', resolve: (o) => (o.topK as number | undefined) ?? null }),
    seed: t.int({ nullable: true, description: 'Random seed.', resolve: (o) => (o.seed as number | undefined) ?? null }),
    stop: t.stringList({ nullable: true, description: 'Stop sequences.', resolve: (o) => (o.stop as string[] | undefined) ?? null }),
    numCtx: t.int({ nullable: true, description: 'Context window in tokens.', resolve: (o) => (o.numCtx as number | undefined) ?? null }),
  }),
});

export const SessionType = builder.objectRef<Session>('Session').implement({
  description: 'A conversation stored by the gateway, owned by one API key.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Identifier of the session.' }),
    model: t.exposeString('model', { description: 'Model (name or alias) the session talks to.' }),
    title: t.string({ nullable: true, description: 'Title given by the client.', resolve: (s) => s.title }),
    systemPrompt: t.string({ nullable: true, description: 'System prompt of this session, fixed when it was created unless changed with setSessionSystemPrompt.', resolve: (s) => s.systemPrompt }),
    options: t.field({ type: SessionOptions, nullable: true, description: 'Sampling options used for every turn.', resolve: (s) => s.options }),
    createdAt: t.field({ type: 'DateTime', description: 'When the session was created.', resolve: (s) => s.createdAt }),
    updatedAt: t.field({ type: 'DateTime', description: 'When the session last changed.', resolve: (s) => s.updatedAt }),
    messages: t.field({
      type: [MessageType],
      description: 'The conversation in order, the system prompt first.',
      resolve: (s, _args, ctx) => ctx.services.sessions.history(s),
    }),
  }),
});

export const SessionConnection = builder.objectRef<SessionPage>('SessionConnection').implement({
  description: 'A page of sessions, newest first.',
  fields: (t) => ({
    nodes: t.field({ type: [SessionType], description: 'The sessions of this page.', resolve: (p) => p.sessions }),
    endCursor: t.string({ nullable: true, description: 'Pass as `after` to get the next page.', resolve: (p) => p.endCursor }),
    hasNextPage: t.exposeBoolean('hasNextPage', { description: 'True when more sessions follow.' }),
  }),
});

export const CreateSessionInput = builder.inputType('CreateSessionInput', {
  description: 'A new chat session.',
  fields: (t) => ({
    model: t.string({ required: true, description: 'Model name or alias.' }),
    systemPrompt: t.string({ required: false, description: 'System prompt; when omitted the gateway\'s default system prompt at this moment is used.' }),
    options: t.field({ type: GenerationOptionsInput, required: false, description: 'Sampling options for every turn.' }),
    title: t.string({ required: false, description: 'A title for people.' }),
  }),
});

export const ChatMessageInput = builder.inputType('ChatMessageInput', {
  description: 'A message of a conversation sent by the client (stateless chat).',
  fields: (t) => ({
    role: t.field({ type: ChatRole, required: true, description: 'Who wrote it.' }),
    content: t.string({ required: true, description: 'The text (TOOL: what the tool returned).' }),
    images: t.stringList({ required: false, description: 'Base64 images (a data: URL prefix is accepted).' }),
    toolCalls: t.field({ type: [ToolCallInput], required: false, description: 'ASSISTANT: the tool calls it made, as received in toolCalls.' }),
    toolName: t.string({ required: false, description: 'TOOL: the tool that answered (found from the call when omitted).' }),
    toolCallId: t.id({ required: false, description: 'TOOL: the call it answers.' }),
  }),
});

export const ChatInput = builder.inputType('ChatInput', {
  description:
    'One chat turn. Either `sessionId` + `message` (the gateway keeps the history), or `model` + `messages` (stateless, OpenAI style). Images need a model with the vision capability.',
  fields: (t) => ({
    sessionId: t.id({ required: false, description: 'A stored session to continue.' }),
    message: t.string({ required: false, description: 'The new user message (added after `messages` in a stateless chat).' }),
    model: t.string({ required: false, description: 'Stateless chat: model name or alias.' }),
    messages: t.field({ type: [ChatMessageInput], required: false, description: 'Stateless chat: the conversation so far.' }),
    images: t.stringList({ required: false, description: 'Base64 images for the new user message.' }),
    imageUploads: t.field({ type: ['File'], required: false, description: 'Images uploaded with the GraphQL multipart request spec.' }),
    imageUrls: t.stringList({ required: false, description: 'http(s) URLs the gateway downloads (private, loopback and link-local addresses are refused unless allowed by configuration).' }),
    options: t.field({ type: GenerationOptionsInput, required: false, description: 'Sampling options for this turn (override the session\'s); `think` turns reasoning on, off or to a level.' }),
    format: t.field({ type: 'JSON', required: false, description: FORMAT_HELP }),
    tools: t.field({ type: [ToolInput], required: false, description: 'Tools the model may call this turn (models with the tools capability, else CAPABILITY_MISSING); calls come in toolCalls.' }),
    toolResults: t.field({ type: [ToolResultInput], required: false, description: 'Session chats: answers of the tools the model called, stored as TOOL messages before it goes on (`message` may then be omitted).' }),
  }),
});

export const ChatResultRef = builder.objectRef<ChatResult>('ChatResult').implement({
  description: 'A complete, non-streamed chat answer with the conversation.',
  fields: (t) => ({
    generationId: t.exposeID('generationId', { description: 'Identifier of the generation in the usage log.' }),
    text: t.exposeString('text', { description: 'The answer.' }),
    thinking: t.string({ nullable: true, description: 'The whole reasoning, or null when the model did not reason.', resolve: (r) => r.thinking }),
    toolCalls: t.field({ type: [ToolCall], description: 'Tool calls the model made (empty when none); answer them with TOOL messages or toolResults.', resolve: (r) => r.toolCalls }),
    doneReason: t.exposeString('doneReason', { description: 'Why generation stopped ("stop" or "length").' }),
    usage: t.field({ type: Usage, description: 'Token counts.', resolve: (r) => r.usage }),
    creditsCharged: t.exposeInt('creditsCharged', { description: 'Credits taken from the key.' }),
    durationMs: t.exposeInt('durationMs', { description: 'Wall time in milliseconds.' }),
    message: t.field({ type: MessageType, nullable: true, description: 'The stored assistant message (session chats).', resolve: (r) => r.message }),
    history: t.field({ type: [MessageType], description: 'The whole conversation after this turn: system, user and assistant messages.', resolve: (r) => r.history }),
  }),
});
