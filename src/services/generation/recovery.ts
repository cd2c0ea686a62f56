import type { GatewayDatabase } from '../db/database.js';
import type { CreditLedger } from '../access/credits.js';
import { interruptUsageRow, streamingUsageRows } from '../db/generations.js';
import { interruptMessages } from '../db/messages.js';

export interface RecoveryReport {
  generations: number;
  messages: number;
  creditsRefunded: number;
}

/** Which STREAMING rows are orphans: their instance is gone. */
export interface OrphanFilter {
  /** This instance: its own rows are orphans only at start-up (left by its previous life). */
  instanceId: string;
  /** Instances alive now (their heartbeat lease runs); their rows are left alone. */
  liveInstances: Set<string>;
  /** At start-up, this instance's own rows (same INSTANCE_ID before a crash) count as orphans too. */
  includeOwn: boolean;
}

/**
 * Generations and messages left STREAMING by a gateway that died become INTERRUPTED with the
 * partial text last saved, and each credit reservation is settled to what the saved tokens cost
 * (the rest refunded), so balances are exact after `kill -9`. Only rows whose instance is gone
 * are touched (rows of other live instances on the same database go on streaming); without a
 * filter every STREAMING row counts (one gateway per database). Each row is settled by one
 * conditional UPDATE, so two instances sweeping at once never refund twice.
 */
export async function recoverInterrupted(db: GatewayDatabase, credits: CreditLedger, filter?: OrphanFilter): Promise<RecoveryReport> {
  return db.sqlClient.transaction(async (tx) => {
    const streaming = await streamingUsageRows(tx);
    const orphaned = filter
      ? streaming.filter((g) => g.instanceId === null || (g.instanceId === filter.instanceId ? filter.includeOwn : !filter.liveInstances.has(g.instanceId)))
      : streaming;
    let creditsRefunded = 0;
    let generations = 0;
    const now = new Date();
    for (const g of orphaned) {
      const charged = Math.min(g.creditsReserved, g.creditsCharged);
      if (!(await interruptUsageRow(tx, g.id, charged, now))) continue; // settled meanwhile by its own instance or another sweep
      generations++;
      await credits.refund(tx, g.apiKeyId, g.creditsReserved - charged);
      creditsRefunded += g.creditsReserved - charged;
    }
    // A streaming message is written with its generation row (same transaction) and shares its fate.
    const ids = orphaned.map((g) => g.id);
    const messages = filter ? (ids.length ? await interruptMessages(tx, now, ids) : 0) : await interruptMessages(tx, now);
    return { generations, messages, creditsRefunded };
  });
}

/**
 * Settles what other instances left STREAMING when they died: every `intervalMs`, rows whose
 * instance's heartbeat has expired are recovered as at start-up. Every instance sweeps; the
 * conditional UPDATE makes each row settle once.
 */
export class OrphanSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly deps: {
      db: GatewayDatabase;
      credits: CreditLedger;
      instanceId: string;
      liveInstances: () => Promise<Set<string>>;
      intervalMs: number;
      onRecovered: (report: RecoveryReport) => void;
      onError: (err: unknown) => void;
    },
  ) {}

  /** Recovers this instance's own rows from a previous life and those of dead instances; then sweeps periodically. */
  async start(): Promise<RecoveryReport> {
    const report = await this.sweep(true);
    this.timer = setInterval(() => {
      this.running ??= this.sweep(false)
        .then((r) => r.generations && this.deps.onRecovered(r), this.deps.onError)
        .finally(() => (this.running = undefined));
    }, this.deps.intervalMs);
    this.timer.unref();
    return report;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private async sweep(includeOwn: boolean): Promise<RecoveryReport> {
    const { db, credits, instanceId } = this.deps;
    return recoverInterrupted(db, credits, { instanceId, includeOwn, liveInstances: await this.deps.liveInstances() });
  }
}
