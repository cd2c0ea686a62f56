import { randomUUID } from 'node:crypto';
import { BeforeInsert, Column, Entity, Index, PrimaryColumn } from 'typeorm';
import type { ApiKeyRole } from './api-key-role.js';
import { WithCreatedAt } from './timestamps.js';

export { API_KEY_ROLES, type ApiKeyRole } from './api-key-role.js';

@Entity({ name: 'api_keys' })
@Index('UQ_api_keys_secret_hash', ['secretHash'], { unique: true })
export class ApiKey extends WithCreatedAt {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  /** Display-only start of the secret, so people can tell keys apart. */
  @Column({ type: 'varchar', length: 32 })
  prefix!: string;

  /** sha256 hex of the full secret; the secret itself is never stored. */
  @Column({ type: 'varchar', length: 64, name: 'secret_hash' })
  secretHash!: string;

  @Column({ type: 'varchar', length: 16 })
  role!: ApiKeyRole;

  /** Change only through conditional atomic updates (`credits >= :n`), never read-then-write. */
  @Column({ type: 'integer', default: 0 })
  credits!: number;

  @Column({ type: 'integer', name: 'requests_per_minute', nullable: true })
  requestsPerMinute!: number | null;

  @Column({ type: 'integer', name: 'tokens_per_minute', nullable: true })
  tokensPerMinute!: number | null;

  @Column({ type: 'integer', name: 'max_concurrent_streams', nullable: true })
  maxConcurrentStreams!: number | null;

  @Column({ type: Date, name: 'last_used_at', nullable: true })
  lastUsedAt!: Date | null;

  @Column({ type: Date, name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;

  @BeforeInsert()
  protected assignId(): void {
    this.id ??= randomUUID();
  }
}
