import { randomUUID } from 'node:crypto';
import type { Repository } from 'typeorm';
import type { GatewayDatabase } from '../db/database.js';
import type { GenerationMessage, ToolCall } from '../../entities/generation.js';
import type { Message } from '../../entities/message.js';
import type { Session } from '../../entities/session.js';
import { type NewMessage, finishMessage, insertMessage, lastMessage, setPromptTokens, touchSession } from '../db/messages.js';
import { SqlError, type SqlTx } from '../db/sql-client.js';
import { inTransaction } from '../db/transactions.js';
import { ErrorCode, GatewayError, badInput } from '../platform/errors.js';
import type { GenerationOutcome, GenerationPlan, OutputFormat, ToolDefinition } from '../generation/types.js';
import { type GenerationOptions, toOllamaOptions } from '../generation/options.js';
import type { Principal } from '../access/keys.js';

export interface CreateSessionInput {
  model: string;
  systemPrompt?: string | null;
  options?: GenerationOptions | null;
  title?: string | null;
}

export interface SessionPage {
  sessions: Session[];
  endCursor: string | null;
  hasNextPage: boolean;
}

/** A turn of a conversation as shown to clients; the system prompt has no stored message, so no id. */
export interface ChatTurn {
  id: string | null;
  role: Message['role'];
  content: string;
  /** assistant: the model's reasoning, stored apart from the answer. */
  thinking: string | null;
  /** assistant: the tool calls it made. */
  toolCalls: ToolCall[];
  /** tool: the tool that answered, and the call it answers. */
  toolName: string | null;
  toolCallId: string | null;
  status: Message['status'];
  imageCount: number;
  promptTokens: number | null;
  completionTokens: number | null;
  errorCode: string | null;
  createdAt: Date;
}

const MAX_TITLE = 200;
const MAX_SYSTEM_PROMPT = 100_000;
const MAX_PAGE = 100;

export const sessionBusy = () =>
  new GatewayError(ErrorCode.SESSION_BUSY, 'This session is already answering a message; wait for it to finish (or cancel it) before sending another.');

/**
 * Chat sessions persisted server-side: the system prompt is snapshotted at creation, every turn is
 * stored, and a chat turn is prepared as a GenerationPlan whose hooks write the user and
 * assistant messages in the same transactions as the usage log.
 */
export class SessionService {
  constructor(
    private readonly db: GatewayDatabase,
    /** The gateway's current default system prompt (applies to sessions created afterwards). */
    private readonly defaultSystemPrompt: () => Promise<string | null>,
    /** A model's own system prompt (its catalog entry), which comes before the gateway's default. */
    private readonly modelSystemPrompt: (model: string) => Promise<string | null> = async () => null,
  ) {}

  // Entities by name: their classes import TypeORM, which loads on first use (db.orm()).
  private async sessionRepo(): Promise<Repository<Session>> {
    return (await this.db.orm()).getRepository<Session>('Session');
  }

  private async messageRepo(): Promise<Repository<Message>> {
    return (await this.db.orm()).getRepository<Message>('Message');
  }

  async create(owner: Principal, input: CreateSessionInput): Promise<Session> {
    const model = input.model.trim();
    if (!model || model.length > 200) throw badInput('model must be 1 to 200 characters.', { field: 'model' });
    if ((input.title?.length ?? 0) > MAX_TITLE) throw badInput(`title must be at most ${MAX_TITLE} characters.`, { field: 'title' });
    if ((input.systemPrompt?.length ?? 0) > MAX_SYSTEM_PROMPT) throw badInput(`systemPrompt must be at most ${MAX_SYSTEM_PROMPT} characters.`, { field: 'systemPrompt' });
    toOllamaOptions(input.options); // validate now, not at the first message
    // Fixed now: the request's, else the model's, else the gateway's default.
    const systemPrompt = input.systemPrompt ?? ((await this.modelSystemPrompt(model)) || (await this.defaultSystemPrompt()));
    const session = (await this.sessionRepo()).create({
      id: randomUUID(),
      apiKeyId: owner.id,
      model,
      systemPrompt: systemPrompt ?? null,
      options: (stripNulls(input.options) as Record<string, unknown> | null) ?? null,
      title: input.title ?? null,
    });
    await inTransaction(this.db, (tx) => tx.save(session));
    return session;
  }

  /** The caller's session, or NOT_FOUND (also for sessions of other keys: their existence is not revealed). */
  async get(owner: Principal, id: string): Promise<Session> {
    const session = isUuid(id) ? await (await this.sessionRepo()).findOneBy({ id, apiKeyId: owner.id }) : null;
    if (!session) throw new GatewayError(ErrorCode.NOT_FOUND, `No session ${JSON.stringify(id)} for this key.`, { id });
    return session;
  }

  /** The caller's sessions, newest first, `first` at a time after the opaque `after` cursor. */
  async list(owner: Principal, first = 20, after?: string | null): Promise<SessionPage> {
    if (first < 1 || first > MAX_PAGE) throw badInput(`first must be 1 to ${MAX_PAGE}.`, { field: 'first' });
    const cursor = after ? decodeCursor(after) : undefined;
    const qb = (await this.sessionRepo())
      .createQueryBuilder('s')
      .where('s.apiKeyId = :owner', { owner: owner.id })
      .orderBy('s.createdAt', 'DESC')
      .addOrderBy('s.id', 'DESC')
      .take(first + 1);
    if (cursor) qb.andWhere('(s.createdAt < :at OR (s.createdAt = :at AND s.id < :id))', { at: cursor.at, id: cursor.id });
    const rows = await qb.getMany();
    const sessions = rows.slice(0, first);
    const last = sessions.at(-1);
    return { sessions, hasNextPage: rows.length > first, endCursor: last ? encodeCursor(last) : null };
  }

  async messages(sessionId: string): Promise<Message[]> {
    return (await this.messageRepo()).find({ where: { sessionId }, order: { seq: 'ASC' } });
  }

  /** The conversation as clients see it: the system prompt first, then the stored turns. */
  async history(session: Session): Promise<ChatTurn[]> {
    const turns = (await this.messages(session.id)).map(toTurn);
    return session.systemPrompt ? [systemTurn(session), ...turns] : turns;
  }

  async setSystemPrompt(owner: Principal, id: string, systemPrompt: string | null): Promise<Session> {
    if ((systemPrompt?.length ?? 0) > MAX_SYSTEM_PROMPT) throw badInput(`systemPrompt must be at most ${MAX_SYSTEM_PROMPT} characters.`, { field: 'systemPrompt' });
    const session = await this.get(owner, id);
    session.systemPrompt = systemPrompt;
    await inTransaction(this.db, (tx) => tx.save(session));
    return session;
  }

  /** Drops the session's messages and keeps the session (refused while it is answering). */
  async clear(owner: Principal, id: string): Promise<Session> {
    const session = await this.get(owner, id);
    await inTransaction(this.db, async (tx) => {
      if (await tx.exists('Message', { where: { sessionId: id, status: 'STREAMING' } })) throw sessionBusy();
      await tx.delete('Message', { sessionId: id });
    });
    return session;
  }

  async delete(owner: Principal, id: string): Promise<boolean> {
    const session = await this.get(owner, id);
    await inTransaction(this.db, async (tx) => {
      if (await tx.exists('Message', { where: { sessionId: id, status: 'STREAMING' } })) throw sessionBusy();
      await tx.delete('Session', { id: session.id });
    });
    return true;
  }

  /**
   * Prepares one chat turn: the whole history (system prompt first) plus the new user message.
   * Refuses while another turn of the session is streaming, and re-checks inside the transaction
   * that nobody added a turn meanwhile, so history order stays correct across instances too.
   */
  async planTurn(
    owner: Principal,
    sessionId: string,
    message: string,
    images: string[],
    options: GenerationOptions | null | undefined,
    turn: TurnExtras = {},
  ): Promise<GenerationPlan & { messageId: string; userMessageId: string }> {
    const results = turn.toolResults ?? [];
    if (!message.trim() && images.length === 0 && results.length === 0) throw badInput('message must not be empty.', { field: 'message' });
    const session = await this.get(owner, sessionId);
    const stored = await this.messages(session.id);
    if (stored.some((m) => m.status === 'STREAMING')) throw sessionBusy();
    const lastSeq = stored.at(-1)?.seq ?? 0;
    const history: GenerationMessage[] = [];
    if (session.systemPrompt) history.push({ role: 'system', content: session.systemPrompt });
    for (const m of stored) {
      // Failed answers are kept for people to read but not sent back to the model.
      if (m.role === 'assistant' && m.status === 'ERROR' && !m.content && !m.toolCalls?.length) continue;
      history.push(storedToHistory(m));
    }
    // Tool answers follow the call they answer; their tool's name comes from it when not given.
    const calls = new Map(stored.flatMap((m) => m.toolCalls ?? []).map((c) => [c.id, c.name]));
    const toolMessages = results.map((r, i) => {
      const toolName = r.toolName ?? calls.get(r.toolCallId);
      if (!toolName) throw badInput(`toolResults[${i}]: no tool call ${JSON.stringify(r.toolCallId).slice(0, 80)} in this session.`, { field: `toolResults[${i}].toolCallId` });
      return { role: 'tool' as const, content: r.content, toolName, toolCallId: r.toolCallId };
    });
    history.push(...toolMessages);
    const asks = message.trim() !== '' || images.length > 0;
    if (asks) history.push({ role: 'user', content: message, ...(images.length ? { images } : {}) });

    const userMessageId = randomUUID();
    const messageId = randomUUID();
    const now = Date.now();
    return {
      kind: 'chat',
      model: session.model,
      prompt: asks ? message : (toolMessages.at(-1)?.content ?? ''),
      messages: history,
      options: { ...(session.options as GenerationOptions | null), ...stripNulls(options) },
      ...(turn.format !== undefined && turn.format !== null ? { format: turn.format } : {}),
      ...(turn.tools?.length ? { tools: turn.tools } : {}),
      sessionId: session.id,
      messageId,
      userMessageId,
      onStart: async (tx: SqlTx, generationId: string) => {
        const latest = await lastMessage(tx, session.id);
        if ((latest?.seq ?? 0) !== lastSeq || latest?.status === 'STREAMING') throw sessionBusy();
        try {
          let seq = lastSeq;
          const at = () => new Date(now + (seq - lastSeq));
          const rows: NewMessage[] = toolMessages.map((t) => ({ id: randomUUID(), sessionId: session.id, seq: ++seq, role: 'tool', content: t.content, toolName: t.toolName, toolCallId: t.toolCallId, status: 'COMPLETE', createdAt: at() }));
          if (asks) rows.push({ id: userMessageId, sessionId: session.id, seq: ++seq, role: 'user', content: message, images: images.length ? images : null, status: 'COMPLETE', createdAt: at() });
          rows.push({ id: messageId, sessionId: session.id, seq: ++seq, role: 'assistant', content: '', status: 'STREAMING', generationId, createdAt: at() });
          for (const row of rows) await insertMessage(tx, row);
        } catch (e) {
          // Another instance took the same seq first (unique (session_id, seq)).
          if (e instanceof SqlError) throw sessionBusy();
          throw e;
        }
        await touchSession(tx, session.id, new Date(now));
      },
      onFinish: async (tx: SqlTx, outcome: GenerationOutcome) => {
        const at = new Date();
        await finishMessage(tx, messageId, {
          content: outcome.text,
          thinking: outcome.thinking,
          toolCalls: outcome.toolCalls.length ? outcome.toolCalls : null,
          status: outcome.status,
          completionTokens: outcome.usage.completionTokens,
          errorCode: outcome.errorCode,
          at,
        });
        if (outcome.usage.promptTokens) await setPromptTokens(tx, userMessageId, outcome.usage.promptTokens, at);
      },
    };
  }

  /** Turns by id, in order (for the non-streaming chat result). */
  async turns(ids: string[]): Promise<ChatTurn[]> {
    const messages = await this.messageRepo();
    const { In } = await import('typeorm'); // loaded by messageRepo()
    const rows = await messages.find({ where: { id: In(ids) }, order: { seq: 'ASC' } });
    return rows.map(toTurn);
  }
}

/** What a session turn may bring besides the user's message. */
export interface TurnExtras {
  format?: OutputFormat | null;
  tools?: ToolDefinition[] | null;
  /** Answers of the tools the model called in its last turn. */
  toolResults?: ReadonlyArray<{ toolCallId: string; toolName?: string | null; content: string }> | null;
}

/** A stored message as sent back to Ollama: tool calls and tool answers included, reasoning left out (as Ollama's own chat does). */
const storedToHistory = (m: Message): GenerationMessage => ({
  role: m.role,
  content: m.content,
  ...(m.images?.length ? { images: m.images } : {}),
  ...(m.toolCalls?.length ? { toolCalls: m.toolCalls } : {}),
  ...(m.toolName ? { toolName: m.toolName } : {}),
  ...(m.toolCallId ? { toolCallId: m.toolCallId } : {}),
});

export const toTurn = (m: Message): ChatTurn => ({
  id: m.id,
  role: m.role,
  content: m.content,
  thinking: m.thinking ?? null,
  toolCalls: m.toolCalls ?? [],
  toolName: m.toolName ?? null,
  toolCallId: m.toolCallId ?? null,
  status: m.status,
  imageCount: m.images?.length ?? 0,
  promptTokens: m.promptTokens,
  completionTokens: m.completionTokens,
  errorCode: m.errorCode,
  createdAt: m.createdAt,
});

const systemTurn = (s: Session): ChatTurn => ({
  id: null,
  role: 'system',
  content: s.systemPrompt ?? '',
  thinking: null,
  toolCalls: [],
  toolName: null,
  toolCallId: null,
  status: 'COMPLETE',
  imageCount: 0,
  promptTokens: null,
  completionTokens: null,
  errorCode: null,
  createdAt: s.createdAt,
});

function stripNulls<T extends object>(o: T | null | undefined): Partial<T> | null {
  if (!o) return null;
  const kept = Object.entries(o).filter(([, v]) => v !== null && v !== undefined);
  return kept.length ? (Object.fromEntries(kept) as Partial<T>) : null;
}

const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);

function encodeCursor(s: Session): string {
  return Buffer.from(JSON.stringify([s.createdAt.toISOString(), s.id])).toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(at);
    if (typeof id !== 'string' || Number.isNaN(date.getTime())) throw new Error('bad cursor');
    return { at: date, id };
  } catch {
    throw badInput('after is not a cursor returned by sessions.', { field: 'after' });
  }
}

