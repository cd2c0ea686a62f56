import { randomUUID } from 'node:crypto';
import { BeforeInsert, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import type { Relation } from 'typeorm';
import { ApiKey } from './api-key.js';
import type { MessageRole } from './message.js';
import { Session } from './session.js';
import { WithCreatedAt } from './timestamps.js';

export const GENERATION_KINDS = ['generate', 'chat', 'embed'] as const;
export type GenerationKind = (typeof GENERATION_KINDS)[number];

export const GENERATION_STATUSES = ['STREAMING', 'COMPLETE', 'CANCELLED', 'ERROR', 'INTERRUPTED'] as const;
export type GenerationStatus = (typeof GENERATION_STATUSES)[number];

/** A tool call a model made: Ollama's `tool_calls[].function`, with the call's id. */
export interface ToolCall {
  /** Ollama's id for the call, or one the gateway gave it (tool answers refer to it). */
  id: string;
  name: string;
  /** The arguments, a JSON object (Ollama sends an object, not a string). */
  arguments: Record<string, unknown>;
}

/** One message of the conversation sent upstream, as logged. */
export interface GenerationMessage {
  role: MessageRole;
  content: string;
  images?: string[];
  /** assistant: the tool calls it made. */
  toolCalls?: ToolCall[];
  /** tool: which tool answered, and to which call. */
  toolName?: string;
  toolCallId?: string;
}

/**
 * Usage log: one row per call to a model. Rows outlive their session (SET NULL) and block the
 * deletion of their API key (NO ACTION: same effect as RESTRICT here, but SQLite then reports
 * SQLITE_CONSTRAINT_FOREIGNKEY rather than SQLITE_CONSTRAINT_TRIGGER), so usage is never lost.
 */
@Entity({ name: 'generations' })
@Index('IDX_generations_api_key_id_created_at', ['apiKeyId', 'createdAt'])
@Index('IDX_generations_created_at', ['createdAt'])
@Index('IDX_generations_status', ['status'])
@Index('IDX_generations_session_id', ['sessionId'])
@Index('IDX_generations_status_host', ['status', 'host'])
export class Generation extends WithCreatedAt {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 36, name: 'api_key_id' })
  apiKeyId!: string;

  @ManyToOne(() => ApiKey, { nullable: false, onDelete: 'NO ACTION' })
  @JoinColumn({ name: 'api_key_id', foreignKeyConstraintName: 'FK_generations_api_key_id' })
  apiKey?: Relation<ApiKey>;

  @Column({ type: 'varchar', length: 36, name: 'session_id', nullable: true })
  sessionId!: string | null;

  @ManyToOne(() => Session, { nullable: true, onDelete: 'SET NULL' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'FK_generations_session_id' })
  session?: Relation<Session> | null;

  @Column({ type: 'varchar', length: 200 })
  model!: string;

  @Column({ type: 'varchar', length: 16 })
  kind!: GenerationKind;

  @Column({ type: 'boolean' })
  streamed!: boolean;

  @Column({ type: 'text' })
  prompt!: string;

  /** The full conversation sent upstream (chat only). */
  @Column({ type: 'simple-json', nullable: true })
  messages!: GenerationMessage[] | null;

  @Column({ type: 'text', default: '' })
  response!: string;

  /** The model's reasoning (thinking models), apart from the answer. */
  @Column({ type: 'text', nullable: true })
  thinking!: string | null;

  /** Tool calls the model made. */
  @Column({ type: 'simple-json', name: 'tool_calls', nullable: true })
  toolCalls!: ToolCall[] | null;

  @Column({ type: 'integer', name: 'prompt_tokens', default: 0 })
  promptTokens!: number;

  @Column({ type: 'integer', name: 'completion_tokens', default: 0 })
  completionTokens!: number;

  @Column({ type: 'integer', name: 'credits_reserved', default: 0 })
  creditsReserved!: number;

  @Column({ type: 'integer', name: 'credits_charged', default: 0 })
  creditsCharged!: number;

  @Column({ type: 'varchar', length: 16 })
  status!: GenerationStatus;

  @Column({ type: 'varchar', length: 64, name: 'error_code', nullable: true })
  errorCode!: string | null;

  @Column({ type: 'varchar', length: 32, name: 'done_reason', nullable: true })
  doneReason!: string | null;

  @Column({ type: 'varchar', length: 64, name: 'request_id', nullable: true })
  requestId!: string | null;

  @Column({ type: 'integer', name: 'first_token_ms', nullable: true })
  firstTokenMs!: number | null;

  @Column({ type: 'integer', name: 'total_duration_ms', nullable: true })
  totalDurationMs!: number | null;

  /** URL of the Ollama host that answered (or was about to). */
  @Column({ type: 'varchar', length: 300, nullable: true })
  host!: string | null;

  /** Gateway process that ran it: while STREAMING, only that instance (or a sweep after it died) may settle it. */
  @Column({ type: 'varchar', length: 64, name: 'instance_id', nullable: true })
  instanceId!: string | null;

  @Column({ type: Date, name: 'finished_at', nullable: true })
  finishedAt!: Date | null;

  @BeforeInsert()
  protected assignId(): void {
    this.id ??= randomUUID();
  }
}
