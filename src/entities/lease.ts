import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A named lease held by one gateway instance until `expiresAt` (renewed while the holder lives):
 * how several instances agree on who runs a job, e.g. the idle reaper of one Ollama host.
 */
@Entity({ name: 'leases' })
export class Lease {
  @PrimaryColumn({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 64 })
  owner!: string;

  @Column({ type: Date, name: 'expires_at' })
  expiresAt!: Date;
}
