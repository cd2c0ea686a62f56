import type { GpuProbe } from './gpu.js';
import type { Logger } from '../platform/logger.js';
import type { OllamaHost, OllamaPool } from '../ollama/pool.js';
import type { ModelCatalog } from './catalog.js';
import type { PullProgress } from './events.js';
import type { IdleReaper } from './idle-reaper.js';
import type { InstalledModel, LoadedModel, OllamaInventory } from '../ollama/inventory.js';
import type { ChangeResult, LoadResult, ModelLifecycle } from './lifecycle.js';
import { requireModelName } from '../ollama/model-names.js';
import type { PullManager } from './pull-manager.js';

/** The model services of one Ollama host. */
export interface HostModels {
  host: OllamaHost;
  inventory: OllamaInventory;
  gpu: GpuProbe;
  reaper: IdleReaper;
  lifecycle: ModelLifecycle;
  pulls: PullManager;
}

/** What one host has of a model. */
export interface Placement {
  host: string;
  installed: InstalledModel | null;
  loaded: LoadedModel | null;
}

/** What one host has installed and loaded; a host that did not answer is left out. */
export interface HostSnapshot {
  models: HostModels;
  installed: Map<string, InstalledModel>;
  loaded: Map<string, LoadedModel>;
}

export interface FleetUnloadResult {
  model: string;
  /** True when the model was in memory on at least one host (and was unloaded there). */
  wasLoaded: boolean;
  /** Hosts the model was unloaded (or deleted) on. */
  hosts: string[];
}

export interface FleetPullStart {
  model: string;
  joined: boolean;
  progress: PullProgress | null;
  /** Hosts pulling the model. */
  hosts: string[];
}

/**
 * The model services of every Ollama host, and the operations that span hosts: without a host,
 * a load goes where the model already is (loaded, else installed, on a healthy host), an unload
 * or delete applies on every host that has the model, and a pull runs on every healthy host.
 */
export class ModelFleet {
  constructor(
    readonly hosts: readonly HostModels[],
    private readonly pool: OllamaPool,
    private readonly catalog: ModelCatalog,
    private readonly log: Logger,
  ) {}

  /** The services of a host by URL (BAD_USER_INPUT for an unknown one). */
  one(url: string): HostModels {
    const host = this.pool.host(url);
    return this.hosts.find((h) => h.host === host)!;
  }

  /** The given host, or all hosts. */
  of(url: string | null | undefined): HostModels[] {
    return url ? [this.one(url)] : [...this.hosts];
  }

  /**
   * Installed and loaded models of each host that answers. When none answers, the first
   * host's error is thrown (as with a single host that is down).
   */
  async snapshot(hosts: readonly HostModels[] = this.hosts, signal?: AbortSignal): Promise<HostSnapshot[]> {
    const settled = await Promise.allSettled(
      hosts.map(async (models) => {
        const [installed, loaded] = await Promise.all([models.inventory.installed(signal), models.inventory.loaded(signal)]);
        return { models, installed, loaded };
      }),
    );
    const answered = settled.filter((s): s is PromiseFulfilledResult<HostSnapshot> => s.status === 'fulfilled').map((s) => s.value);
    if (answered.length === 0 && settled.length > 0) throw (settled[0] as PromiseRejectedResult).reason;
    return answered;
  }

  /** Loaded models of every host that answers, keyed by `host model`; throws when none answers. */
  async loaded(signal?: AbortSignal): Promise<Map<string, LoadedModel & { host: string }>> {
    const snapshot = await this.snapshot(this.hosts, signal);
    return new Map(snapshot.flatMap((s) => [...s.loaded].map(([k, m]) => [`${s.models.host.url} ${k}`, { ...m, host: s.models.host.url }] as const)));
  }

  /** Where a model is: one entry per answering host that has it installed or loaded. */
  static placements(key: string, snapshot: readonly HostSnapshot[]): Placement[] {
    return snapshot
      .map((s) => ({ host: s.models.host.url, installed: s.installed.get(key) ?? null, loaded: s.loaded.get(key) ?? null }))
      .filter((p) => p.installed || p.loaded);
  }

  /**
   * Capabilities from the first host that can tell (its `/api/show`, cached in its inventory): the
   * one capability cache of the gateway, which `cachedCapabilities` and the catalogue read too.
   */
  async capabilitiesOf(name: string): Promise<string[] | null> {
    let failure: unknown;
    for (const h of this.hosts) {
      try {
        return await h.inventory.capabilities(name, null);
      } catch (e) {
        failure ??= e;
      }
    }
    throw failure;
  }

  /** Capabilities already fetched on any host; undefined when none are cached. */
  async cachedCapabilities(name: string): Promise<string[] | null | undefined> {
    for (const h of this.hosts) {
      const known = await h.inventory.cachedCapabilities(name);
      if (known !== undefined) return known;
    }
    return undefined;
  }

  /** Loads a model on the given host, or where it fits best (see class doc). */
  async load(requested: string, opts: { host?: string | null; numCtx?: number | null; force?: boolean | null }): Promise<LoadResult> {
    const target = opts.host ? this.one(opts.host) : await this.placeFor(requested);
    return changing(target, () => target.lifecycle.load(requested, opts));
  }

  /** Makes a model the default, loading it on the given host or where it fits best. */
  async change(to: string, opts: { host?: string | null; numCtx?: number | null; force?: boolean | null }): Promise<ChangeResult> {
    const target = opts.host ? this.one(opts.host) : await this.placeFor(to);
    return changing(target, () => target.lifecycle.change(to, opts));
  }

  /** Unloads a model on the given host, or on every host that has it loaded. */
  async unload(requested: string, opts: { host?: string | null } = {}): Promise<FleetUnloadResult> {
    const key = await this.keyOf(requested);
    const targets = opts.host ? [this.one(opts.host)] : await this.holders(key, 'loaded');
    const hosts: string[] = [];
    let model = key;
    for (const t of targets) {
      const r = await changing(t, () => t.lifecycle.unload(requested));
      model = r.model;
      if (r.wasLoaded) hosts.push(t.host.url);
    }
    return { model, wasLoaded: hosts.length > 0, hosts };
  }

  /**
   * Deletes a model from the given host, or from every host that has it. Without force, nothing
   * is deleted anywhere while any of those hosts has it loaded or busy.
   */
  async delete(requested: string, opts: { host?: string | null; force?: boolean | null } = {}): Promise<FleetUnloadResult> {
    const key = await this.keyOf(requested);
    const targets = opts.host ? [this.one(opts.host)] : await this.holders(key, 'installed');
    if (!opts.force && targets.length > 1) {
      // Checked on every host first, so a refusal leaves the model everywhere.
      for (const t of targets) await t.lifecycle.assertDeletable(requested);
    }
    const hosts: string[] = [];
    let wasLoaded = false;
    let model = key;
    for (const t of targets) {
      const r = await changing(t, () => t.lifecycle.delete(requested, opts));
      model = r.model;
      wasLoaded ||= r.wasLoaded;
      hosts.push(t.host.url);
    }
    return { model, wasLoaded, hosts };
  }

  /**
   * Starts (or joins) the pull of a model on the given host, or on every healthy host, and waits
   * until each has found the manifest (MODEL_NOT_FOUND otherwise).
   */
  async beginPull(requested: string, host?: string | null): Promise<FleetPullStart> {
    const targets = this.pullTargets(host);
    const started = await Promise.all(targets.map((t) => changing(t, () => t.pulls.begin(requested))));
    return {
      model: started[0].model,
      joined: started.every((s) => s.joined),
      progress: started[0].progress,
      hosts: targets.map((t) => t.host.url),
    };
  }

  /** Progress of a pull on the given host, or on every healthy host (messages interleaved, each naming its host), until all are done. */
  followPull(requested: string, host?: string | null): AsyncGenerator<PullProgress> {
    const targets = this.pullTargets(host);
    if (targets.length === 1) return targets[0].pulls.follow(requested);
    return merge(targets.map((t) => t.pulls.follow(requested)));
  }

  private pullTargets(host: string | null | undefined): HostModels[] {
    if (host) return [this.one(host)];
    const healthy = this.hosts.filter((h) => h.host.isHealthy);
    return healthy.length ? healthy : [...this.hosts];
  }

  /** Canonical name of a name or alias. */
  private async keyOf(requested: string): Promise<string> {
    const match = await this.catalog.find(requested);
    return match ? match.entry.name : requireModelName(requested);
  }

  /**
   * Hosts that have the model loaded (or installed); when none has, the first host that has it
   * installed, else the first host (whose lifecycle then answers MODEL_NOT_FOUND as before).
   */
  private async holders(key: string, what: 'loaded' | 'installed'): Promise<HostModels[]> {
    if (this.hosts.length === 1) return [...this.hosts];
    const snapshot = await this.snapshot();
    const having = snapshot.filter((s) => s[what].has(key)).map((s) => s.models);
    if (having.length) return having;
    const installed = snapshot.find((s) => s.installed.has(key));
    return [installed?.models ?? snapshot[0]?.models ?? this.hosts[0]];
  }

  /** Where to load a model when no host is named: the pool's routing order, among hosts that have it installed. */
  private async placeFor(requested: string): Promise<HostModels> {
    if (this.hosts.length === 1) return this.hosts[0];
    const key = await this.keyOf(requested);
    const snapshot = await this.snapshot();
    for (const host of await this.pool.candidates(key)) {
      const s = snapshot.find((x) => x.models.host === host);
      if (s && (s.loaded.has(key) || s.installed.has(key))) return s.models;
    }
    this.log.debug({ model: key }, 'no host has the model installed');
    return snapshot[0]?.models ?? this.hosts[0];
  }
}

/** Runs a change on a host, then forgets what the routing knew of its loaded and installed models. */
async function changing<T>(target: HostModels, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    target.host.invalidate();
  }
}

/** Interleaves several async generators; ends when all have ended, or with the first error (closing the others). */
async function* merge<T>(sources: AsyncGenerator<T>[]): AsyncGenerator<T> {
  type Step = { i: number; r: IteratorResult<T>; error?: undefined } | { i: number; error: unknown };
  const pending = new Map<number, Promise<Step>>();
  const pull = (i: number) =>
    pending.set(
      i,
      sources[i].next().then(
        (r): Step => ({ i, r }),
        (error: unknown): Step => ({ i, error: error ?? new Error('pull failed') }),
      ),
    );
  sources.forEach((_, i) => pull(i));
  try {
    while (pending.size) {
      const step = await Promise.race(pending.values());
      if (step.error !== undefined) throw step.error;
      const { i, r } = step as { i: number; r: IteratorResult<T> };
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      yield r.value;
    }
  } finally {
    await Promise.all(sources.map((s) => s.return(undefined).catch(() => undefined)));
  }
}
