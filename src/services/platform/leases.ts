import type { GatewayDatabase } from '../db/database.js';

/**
 * Named leases in the gateway's own database, so several instances sharing it agree on who runs
 * a job (one idle reaper per Ollama host) and which instances are alive (crash recovery). A lease
 * is a row with an owner and an expiry: taking or renewing it is one conditional UPDATE (or an
 * INSERT when the row does not exist yet), atomic on PostgreSQL and SQLite alike. Expiry times
 * come from the instances' clocks, which are assumed to agree within a fraction of the TTL (NTP).
 * Plain SQL on the SqlClient: the heartbeat and the idle reaper renew leases while the gateway
 * idles, which must not load TypeORM.
 */
export class LeaseStore {
  constructor(private readonly db: GatewayDatabase) {}

  /** Takes the lease, or renews it when `owner` holds it; false while another owner's lease runs. */
  acquire(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = new Date();
    const expiresAt = new Date(now.getTime() + ttlMs);
    return this.db.sqlClient.transaction(async (tx) => {
      const renewed = await tx.run('UPDATE leases SET owner = ?, expires_at = ? WHERE name = ? AND (owner = ? OR expires_at < ?)', [owner, expiresAt, name, owner, now]);
      if (renewed) return true;
      await tx.run('INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING', [name, owner, expiresAt]);
      const row = await tx.get<{ owner: string }>('SELECT owner FROM leases WHERE name = ?', [name]);
      return row?.owner === owner;
    });
  }

  /** Gives the lease up (when `owner` holds it), so another instance can take it at once. */
  async release(name: string, owner: string): Promise<void> {
    await this.db.sqlClient.transaction((tx) => tx.run('DELETE FROM leases WHERE name = ? AND owner = ?', [name, owner]));
  }

  /** Owners of the unexpired leases whose names start with `prefix`. */
  async liveOwners(prefix: string): Promise<Map<string, string>> {
    const rows = await this.db.sqlClient.all<{ name: string; owner: string }>('SELECT name, owner FROM leases WHERE name LIKE ? AND expires_at >= ?', [
      `${prefix.replace(/[%_]/g, '')}%`,
      new Date(),
    ]);
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
