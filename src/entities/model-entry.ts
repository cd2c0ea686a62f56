import { randomUUID } from 'node:crypto';
import { BeforeInsert, Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { WithTimestamps } from './timestamps.js';

/** Catalog entry for one Ollama model. */
@Entity({ name: 'model_entries' })
@Index('UQ_model_entries_name', ['name'], { unique: true })
@Index('UQ_model_entries_alias', ['alias'], { unique: true })
export class ModelEntry extends WithTimestamps {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** Normalized Ollama name, always `name:tag`. */
  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 200, nullable: true })
  alias!: string | null;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  /** System prompt for requests and sessions that bring none (before the gateway's default). */
  @Column({ type: 'text', name: 'system_prompt', nullable: true })
  systemPrompt!: string | null;

  @Column({ type: 'boolean', default: true })
  enabled!: boolean;

  @Column({ type: 'boolean', name: 'is_default', default: false })
  isDefault!: boolean;

  @Column({ type: 'double precision', name: 'prompt_price_per_1k', nullable: true })
  promptPricePer1k!: number | null;

  @Column({ type: 'double precision', name: 'completion_price_per_1k', nullable: true })
  completionPricePer1k!: number | null;

  @Column({ type: 'integer', name: 'inactivity_threshold_seconds', nullable: true })
  inactivityThresholdSeconds!: number | null;

  @BeforeInsert()
  protected assignId(): void {
    this.id ??= randomUUID();
  }
}
