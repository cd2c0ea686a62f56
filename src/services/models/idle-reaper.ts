import { isGatewayError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { SettingsService } from '../platform/settings.js';
import type { ModelCatalog } from './catalog.js';
import type { ModelEvent } from './events.js';
import type { OllamaInventory } from '../ollama/inventory.js';
import { modelKey } from '../ollama/model-names.js';

/** Setting row holding `{ [model]: ISO time of last activity }`, so idle clocks survive restarts. */
export const LAST_ACTIVITY_SETTING = 'idle_reaper_last_activity';
/** Activity is written at most this often (and on stop). */
const FLUSH_DELAY_MS = 1000;
/** A model that vanished from /api/ps this close to its threshold is counted as an idle unload by Ollama. */
const EXPIRY_SLACK_MS = 1000;

/** Requests on a host as every gateway instance recorded them (the usage log). */
export interface SharedActivity {
  /** Canonical names of models with a request streaming now. */
  busy: Set<string>;
  /** Latest start or end of a request per model (epoch ms). */
  lastActive: Map<string, number>;
}

export interface IdleReaperDeps {
  /** URL of the Ollama host this reaper watches. */
  host: string;
  /** Setting row for this host's activity times. */
  settingKey?: string;
  /**
   * Takes or renews this host's reaper lease; false while another gateway instance holds it (then
   * this one skips the check). Absent: this instance is the only one.
   */
  lease?: () => Promise<boolean>;
  /** Gives the lease up at stop. */
  releaseLease?: () => Promise<void>;
  /** Activity of every instance on this host since a time (so the lease holder sees requests served elsewhere). */
  sharedActivity?: (since: Date) => Promise<SharedActivity>;
  settings: SettingsService;
  catalog: ModelCatalog;
  inventory: OllamaInventory;
  /** Unloads a model found idle (re-checking that it is still idle); true when it was unloaded. */
  unloadIdle(name: string, key: string): Promise<boolean>;
  publish(event: ModelEvent): void;
  log: Logger;
  intervalMs: number;
}


/**
 * Enforces inactivity thresholds: every `intervalMs` it lists the loaded models (`/api/ps`) and
 * unloads those idle for longer than their threshold (the model's own, else the global one).
 * A model with a request in flight (`markBusy`) is never unloaded. Last-activity times are kept
 * in a Setting row, and the first check runs at start, so a model left loaded past its threshold
 * while the gateway was down is unloaded right after a restart. Nothing is polled while no
 * threshold is configured at all.
 */
export class IdleReaper {
  private readonly busy = new Map<string, number>();
  private readonly lastActive = new Map<string, number>();
  /** Models loaded at the previous check, to notice ones Ollama's own keep_alive unloaded. */
  private seenLoaded = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private dirty = false;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Whether this instance held the lease at its last check (only the holder stores activity). */
  private leader = true;
  /** Start of the previous check, to read shared activity since then. */
  private lastCheckAt = 0;

  constructor(private readonly deps: IdleReaperDeps) {}

  async start(): Promise<void> {
    const { value } = await this.deps.settings.read(this.settingKey);
    if (value && typeof value === 'object') {
      for (const [key, iso] of Object.entries(value as Record<string, unknown>)) {
        const at = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
        if (!Number.isNaN(at) && !this.lastActive.has(key)) this.lastActive.set(key, at);
      }
    }
    this.timer = setInterval(() => void this.check(), this.deps.intervalMs);
    this.timer.unref();
    void this.check();
  }

  /** Stops checking, waits for a check in progress and writes the activity times. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    if (this.leader) await this.flush();
    await this.deps.releaseLease?.().catch((err: unknown) => this.deps.log.warn({ err, host: this.deps.host }, 'could not release the reaper lease'));
  }

  private get settingKey(): string {
    return this.deps.settingKey ?? LAST_ACTIVITY_SETTING;
  }

  /** Marks a model busy until the returned function is called; both ends count as activity. */
  markBusy(name: string): () => void {
    const key = modelKey(name);
    this.busy.set(key, (this.busy.get(key) ?? 0) + 1);
    this.touch(key);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.busy.get(key) ?? 1) - 1;
      if (left > 0) this.busy.set(key, left);
      else this.busy.delete(key);
      this.touch(key);
    };
  }

  isBusy(name: string): boolean {
    return this.busy.has(modelKey(name));
  }

  /** Records activity on a model now (a load, a request). */
  touch(name: string): void {
    this.lastActive.set(modelKey(name), Date.now());
    this.scheduleFlush();
  }

  lastActiveAt(name: string): Date | null {
    const at = this.lastActive.get(modelKey(name));
    return at === undefined ? null : new Date(at);
  }

  /** Forgets a model's activity (it was unloaded or deleted). */
  forget(name: string): void {
    const key = modelKey(name);
    this.seenLoaded.delete(key);
    if (this.lastActive.delete(key)) this.scheduleFlush();
  }

  /** One check now (also run on a timer); concurrent calls share the check in progress. */
  check(): Promise<void> {
    this.running ??= this.reap()
      // Ollama being down is expected now and then: no warning every few seconds for that.
      .catch((err: unknown) => (isUpstreamError(err) ? this.deps.log.debug({ err }, 'idle check skipped') : this.deps.log.warn({ err }, 'idle check failed')))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async reap(): Promise<void> {
    if (this.stopped) return;
    const [globalSeconds, entries] = await Promise.all([this.deps.settings.getInactivityThresholdSeconds(), this.deps.catalog.list()]);
    const own = new Map(entries.filter((e) => e.inactivityThresholdSeconds !== null).map((e) => [e.name, e.inactivityThresholdSeconds as number]));
    if (globalSeconds === null && own.size === 0) {
      this.seenLoaded.clear();
      return;
    }
    const thresholdMs = (key: string) => {
      const seconds = own.get(key) ?? globalSeconds;
      return seconds === null ? null : seconds * 1000;
    };

    // With several gateway instances, one of them reaps this host at a time.
    this.leader = this.deps.lease ? await this.deps.lease() : true;
    if (!this.leader) {
      this.seenLoaded.clear();
      return;
    }
    const startedAt = Date.now();
    // Requests other instances served on this host count as activity here too.
    const since = new Date((this.lastCheckAt || startedAt) - 2 * this.deps.intervalMs - 60_000);
    const shared = await this.deps.sharedActivity?.(since);
    this.lastCheckAt = startedAt;
    const busyElsewhere = shared?.busy ?? new Set<string>();
    for (const [key, at] of shared?.lastActive ?? []) {
      if (at > (this.lastActive.get(key) ?? 0)) this.lastActive.set(key, Math.min(at, startedAt));
    }
    for (const key of busyElsewhere) this.lastActive.set(key, startedAt);
    const loaded = await this.deps.inventory.loaded(AbortSignal.timeout(5000));
    const unloaded = new Set<string>();
    for (const model of loaded.values()) {
      const limit = thresholdMs(model.key);
      if (limit === null || this.busy.has(model.key) || busyElsewhere.has(model.key)) continue;
      const last = this.lastActive.get(model.key);
      if (last === undefined) {
        // Loaded by someone else (or before activity was recorded): its idle clock starts now.
        this.lastActive.set(model.key, startedAt);
        this.scheduleFlush();
        continue;
      }
      if (Date.now() - last < limit || this.stopped) continue;
      if (await this.deps.unloadIdle(model.name, model.key)) unloaded.add(model.key);
    }

    const now = Date.now();
    for (const key of this.seenLoaded) {
      if (loaded.has(key) || this.busy.has(key)) continue;
      const limit = thresholdMs(key);
      const last = this.lastActive.get(key);
      // Ollama's keep_alive (set to the same threshold) got there first: still an idle unload.
      if (limit !== null && last !== undefined && now - last >= limit - EXPIRY_SLACK_MS) {
        this.deps.publish({ type: 'UNLOADED', reason: 'IDLE', model: key, at: new Date(now).toISOString(), sizeBytes: null, host: this.deps.host });
      }
    }
    let forgotten = false;
    for (const [key, last] of this.lastActive) {
      if (!loaded.has(key) && !this.busy.has(key) && last < startedAt) forgotten = this.lastActive.delete(key);
    }
    this.seenLoaded = new Set([...loaded.keys()].filter((k) => !unloaded.has(k)));
    if (forgotten) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    this.dirty = true;
    if (this.flushTimer || this.stopped || !this.leader) return;
    this.flushTimer = setTimeout(() => void this.flush(), FLUSH_DELAY_MS);
    this.flushTimer.unref();
  }

  private async flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.dirty) return;
    this.dirty = false;
    const snapshot = Object.fromEntries([...this.lastActive].map(([k, at]) => [k, new Date(at).toISOString()]));
    try {
      await this.deps.settings.write(this.settingKey, snapshot);
    } catch (err) {
      this.dirty = true;
      this.deps.log.warn({ err }, 'could not store model activity');
    }
  }
}

const isUpstreamError = (e: unknown) => isGatewayError(e) && e.code.startsWith('UPSTREAM_');
