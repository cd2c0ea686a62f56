import type { GatewayDataSource } from '../db/data-source.js';
import { Lease } from '../../entities/lease.js';
import { inTransaction } from '../db/transactions.js';

/**
 * Named leases in the gateway's own database, so several instances sharing it agree on who runs
 * a job (one idle reaper per Ollama host) and which instances are alive (crash recovery). A lease
 * is a row with an owner and an expiry: taking or renewing it is one conditional UPDATE (or an
 * INSERT when the row does not exist yet), atomic on PostgreSQL and SQLite alike. Expiry times
 * come from the instances' clocks, which are assumed to agree within a fraction of the TTL (NTP).
 */
export class LeaseStore {
  constructor(private readonly db: GatewayDataSource) {}

  /** Takes the lease, or renews it when `owner` holds it; false while another owner's lease runs. */
  acquire(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = new Date();
    const expiresAt = new Date(now.getTime() + ttlMs);
    return inTransaction(this.db, async (tx) => {
      const renewed = await tx
        .createQueryBuilder()
        .update(Lease)
        .set({ owner, expiresAt })
        .where('name = :name AND (owner = :owner OR expires_at < :now)', { name, owner, now })
        .execute();
      if (renewed.affected) return true;
      await tx.createQueryBuilder().insert().into(Lease).values({ name, owner, expiresAt }).orIgnore().execute();
      const row = await tx.findOneBy(Lease, { name });
      return row?.owner === owner;
    });
  }

  /** Gives the lease up (when `owner` holds it), so another instance can take it at once. */
  async release(name: string, owner: string): Promise<void> {
    await inTransaction(this.db, (tx) => tx.delete(Lease, { name, owner }));
  }

  /** Owners of the unexpired leases whose names start with `prefix`. */
  async liveOwners(prefix: string): Promise<Map<string, string>> {
    const rows = await this.db
      .getRepository(Lease)
      .createQueryBuilder('l')
      .where('l.name LIKE :prefix AND l.expires_at >= :now', { prefix: `${prefix.replace(/[%_]/g, '')}%`, now: new Date() })
      .getMany();
    return new Map(rows.map((r) => [r.name, r.owner]));
  }
}

/** Lease name prefix of the instance heartbeats. */
const INSTANCE_PREFIX = 'instance:';

/**
 * This gateway process among others: it holds the lease `instance:<id>` while it runs (renewed
 * every third of the TTL), so other instances know its STREAMING rows are not orphans.
 */
export class InstanceHeartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    private readonly leases: LeaseStore,
    private readonly ttlMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(this.onError), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.leases.release(INSTANCE_PREFIX + this.id, this.id).catch(this.onError);
  }

  /** Ids of the instances whose heartbeat has not expired (this one included). */
  async liveInstances(): Promise<Set<string>> {
    return new Set((await this.leases.liveOwners(INSTANCE_PREFIX)).values());
  }

  private async beat(): Promise<void> {
    await this.leases.acquire(INSTANCE_PREFIX + this.id, this.id, this.ttlMs);
  }
}
