import type { GenerationMessage } from '../../entities/generation.js';
import { badInput } from '../platform/errors.js';
import type { GenerationItems, GenerationService, GenerationStream } from './generation-service.js';
import type { GenerationPlan, GenerationResult, OutputFormat, RequestMeta } from './types.js';
import { checkTools, statedHistory } from './tools.js';
import type { GenerationOptions } from './options.js';
import { imageFromBase64 } from '../images/image-bytes.js';
import { type ImageLimits, type ImageSources, checkImageCounts, resolveImages } from '../images/resolve-images.js';
import type { Principal } from '../access/keys.js';
import type { ChatTurn, SessionService } from '../sessions/session-service.js';

export interface ChatMessageInput {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  images?: readonly string[] | null;
  /** assistant: the tool calls it made (sent back with the history). */
  toolCalls?: ReadonlyArray<{ id?: string | null; name: string; arguments?: unknown }> | null;
  /** tool: the tool that answered, and the call it answers. */
  toolName?: string | null;
  toolCallId?: string | null;
}

/** A chat turn: either in a stored session (`sessionId` + `message`), or stateless (`model` + `messages`). */
export interface ChatInput {
  images?: ImageSources['images'];
  imageUploads?: ImageSources['uploads'];
  imageUrls?: ImageSources['urls'];
  sessionId?: string | null;
  message?: string | null;
  model?: string | null;
  messages?: readonly ChatMessageInput[] | null;
  options?: GenerationOptions | null;
  /** Structured output ("json" or a JSON Schema). */
  format?: unknown;
  /** Tools the model may call this turn. */
  tools?: ReadonlyArray<{ name: string; description?: string | null; parameters?: unknown }> | null;
  /** Session chats: answers of the tools the model called. */
  toolResults?: ReadonlyArray<{ toolCallId: string; toolName?: string | null; content: string }> | null;
}

export interface ChatResult extends GenerationResult {
  /** The stored assistant message (session chats). */
  message: ChatTurn | null;
  /** The whole conversation after this turn, system prompt first. */
  history: ChatTurn[];
}

const MAX_MESSAGES = 1000;

/** Chat on top of the generation service: session turns and OpenAI-style stateless histories. */
export class ChatService {
  constructor(
    private readonly generation: GenerationService,
    private readonly sessions: SessionService,
    private readonly imageLimits: ImageLimits,
  ) {}

  /** Streams a chat turn; the plan (images, the session) is prepared on the first pull, cancellable like the rest. */
  stream(principal: Principal, input: ChatInput, meta: RequestMeta): GenerationStream;
  stream(principal: Principal, input: ChatInput, meta: RequestMeta, opts: { failuresAsItems: true }): GenerationItems;
  stream(principal: Principal, input: ChatInput, meta: RequestMeta, opts?: { failuresAsItems: true }): GenerationItems {
    const plan = () => this.plan(principal, input, meta);
    return opts ? this.generation.stream(principal, plan, meta, opts) : this.generation.stream(principal, plan, meta);
  }

  async complete(principal: Principal, input: ChatInput, meta: Omit<RequestMeta, 'streamed'>): Promise<ChatResult> {
    let plan!: GenerationPlan;
    const result = await this.generation.complete(principal, async () => (plan = await this.plan(principal, input, { ...meta, streamed: false })), meta);
    if (input.sessionId) {
      const session = await this.sessions.get(principal, input.sessionId);
      const history = await this.sessions.history(session);
      return { ...result, message: history.find((t) => t.id === plan.messageId) ?? null, history };
    }
    const now = new Date();
    const answer: GenerationMessage = { role: 'assistant', content: result.text, ...(result.toolCalls.length ? { toolCalls: result.toolCalls } : {}) };
    const turns: ChatTurn[] = [...(plan.messages ?? []), answer].map((m) => ({
      id: null,
      role: m.role,
      content: m.content,
      thinking: m === answer ? result.thinking : null,
      toolCalls: m.toolCalls ?? [],
      toolName: m.toolName ?? null,
      toolCallId: m.toolCallId ?? null,
      status: 'COMPLETE',
      imageCount: 'images' in m ? (m.images?.length ?? 0) : 0,
      promptTokens: null,
      completionTokens: null,
      errorCode: null,
      createdAt: now,
    }));
    return { ...result, message: null, history: turns };
  }

  private async plan(principal: Principal, input: ChatInput, meta: RequestMeta): Promise<GenerationPlan> {
    // Counted before anything is decoded or fetched; limits and credits checked before any download.
    const attached = (input.images?.length ?? 0) + (input.imageUploads?.length ?? 0) + (input.imageUrls?.length ?? 0);
    const counts = [...(input.messages ?? []).map((m) => m.images?.length ?? 0), attached];
    checkImageCounts(counts, this.imageLimits);
    if (counts.some((n) => n > 0)) {
      await this.generation.precheck(principal, { kind: 'chat', model: input.model ?? 'unknown', prompt: input.message ?? '', sessionId: input.sessionId }, meta);
    }
    const images = await resolveImages({ images: input.images, uploads: input.imageUploads, urls: input.imageUrls }, this.imageLimits);
    if (input.sessionId) {
      if (input.messages?.length || input.model) throw badInput('Give either sessionId and message, or model and messages, not both.', { field: 'sessionId' });
      return this.sessions.planTurn(principal, input.sessionId, input.message ?? '', images, input.options, {
        format: input.format as OutputFormat | null | undefined,
        tools: checkTools(input.tools),
        toolResults: input.toolResults,
      });
    }
    if (input.toolResults?.length) throw badInput('toolResults are for session chats; a stateless chat sends TOOL messages.', { field: 'toolResults' });
    if (!input.model) throw badInput('A stateless chat needs model and messages (or give a sessionId).', { field: 'model' });
    const history: GenerationMessage[] = statedHistory(input.messages ?? [], (b, i, j) => imageFromBase64(b, this.imageLimits.maxBytes, `messages[${i}].images[${j}]`));
    if (input.message) history.push({ role: 'user', content: input.message });
    if (!history.length) throw badInput('messages must not be empty.', { field: 'messages' });
    if (history.length > MAX_MESSAGES) throw badInput(`At most ${MAX_MESSAGES} messages.`, { field: 'messages' });
    const lastUser = [...history].reverse().find((m) => m.role === 'user');
    if (!lastUser) throw badInput('messages must contain a user message.', { field: 'messages' });
    // Images belong to the last user message, as vision models expect.
    if (images.length) lastUser.images = [...(lastUser.images ?? []), ...images];
    const tools = checkTools(input.tools);
    return {
      kind: 'chat',
      model: input.model,
      prompt: lastUser.content,
      messages: history,
      options: input.options,
      ...(input.format !== undefined && input.format !== null ? { format: input.format as OutputFormat } : {}),
      ...(tools ? { tools } : {}),
    };
  }
}
