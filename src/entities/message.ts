import { randomUUID } from 'node:crypto';
import {
  BeforeInsert,
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
} from 'typeorm';
import type { Relation } from 'typeorm';
import type { ToolCall } from './generation.js';
import { Session } from './session.js';
import { WithTimestamps } from './timestamps.js';

export const MESSAGE_ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];

export const MESSAGE_STATUSES = ['STREAMING', 'COMPLETE', 'CANCELLED', 'ERROR', 'INTERRUPTED'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** One turn of a session; `seq` orders the turns and is unique within the session. */
@Entity({ name: 'messages' })
@Index('UQ_messages_session_id_seq', ['sessionId', 'seq'], { unique: true })
export class Message extends WithTimestamps {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 36, name: 'session_id' })
  sessionId!: string;

  @ManyToOne(() => Session, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'FK_messages_session_id' })
  session?: Relation<Session>;

  @Column({ type: 'integer' })
  seq!: number;

  @Column({ type: 'varchar', length: 16 })
  role!: MessageRole;

  @Column({ type: 'text', default: '' })
  content!: string;

  /** assistant: the model's reasoning (never sent back to Ollama with the history). */
  @Column({ type: 'text', nullable: true })
  thinking!: string | null;

  /** assistant: the tool calls it made. */
  @Column({ type: 'simple-json', name: 'tool_calls', nullable: true })
  toolCalls!: ToolCall[] | null;

  /** tool: the tool that answered. */
  @Column({ type: 'varchar', length: 128, name: 'tool_name', nullable: true })
  toolName!: string | null;

  /** tool: the call it answers. */
  @Column({ type: 'varchar', length: 128, name: 'tool_call_id', nullable: true })
  toolCallId!: string | null;

  /** Base64 images sent with a user turn. */
  @Column({ type: 'simple-json', nullable: true })
  images!: string[] | null;

  @Column({ type: 'integer', name: 'prompt_tokens', nullable: true })
  promptTokens!: number | null;

  @Column({ type: 'integer', name: 'completion_tokens', nullable: true })
  completionTokens!: number | null;

  @Column({ type: 'varchar', length: 16 })
  status!: MessageStatus;

  @Column({ type: 'varchar', length: 64, name: 'error_code', nullable: true })
  errorCode!: string | null;

  /** The Generation (usage log row) that produced an assistant turn; not a foreign key. */
  @Column({ type: 'varchar', length: 36, name: 'generation_id', nullable: true })
  generationId!: string | null;

  @BeforeInsert()
  protected assignId(): void {
    this.id ??= randomUUID();
  }
}
