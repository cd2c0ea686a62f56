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
import { ApiKey } from './api-key.js';
import { WithTimestamps } from './timestamps.js';

/** A chat conversation owned by one API key; deleting the key deletes its sessions. */
@Entity({ name: 'sessions' })
@Index('IDX_sessions_api_key_id_created_at', ['apiKeyId', 'createdAt'])
export class Session extends WithTimestamps {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 36, name: 'api_key_id' })
  apiKeyId!: string;

  @ManyToOne(() => ApiKey, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'api_key_id', foreignKeyConstraintName: 'FK_sessions_api_key_id' })
  apiKey?: Relation<ApiKey>;

  @Column({ type: 'varchar', length: 200 })
  model!: string;

  /** Snapshot taken when the session was created (or explicitly changed). */
  @Column({ type: 'text', name: 'system_prompt', nullable: true })
  systemPrompt!: string | null;

  @Column({ type: 'simple-json', nullable: true })
  options!: Record<string, unknown> | null;

  @Column({ type: 'varchar', length: 200, nullable: true })
  title!: string | null;

  @BeforeInsert()
  protected assignId(): void {
    this.id ??= randomUUID();
  }
}
