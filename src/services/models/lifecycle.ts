import type { ModelEntry } from '../../entities/model-entry.js';
import { ErrorCode, GatewayError, badInput } from '../platform/errors.js';
import type { GpuProbe, VramReport } from './gpu.js';
import type { Logger } from '../platform/logger.js';
import type { OllamaUpstream } from '../ollama/upstream.js';
import type { SettingsService } from '../platform/settings.js';
import type { ModelCatalog } from './catalog.js';
import { modelNotFound } from './errors.js';
import type { ModelEvent, ModelEventReason, ModelEventType } from './events.js';
import type { IdleReaper } from './idle-reaper.js';
import type { InstalledModel, LoadedModel, OllamaInventory } from '../ollama/inventory.js';
import { checkNumCtx } from './limits.js';
import { requireModelName } from '../ollama/model-names.js';

export interface LifecycleDeps {
  /** URL of the Ollama host this lifecycle manages. */
  host: string;
  upstream: OllamaUpstream;
  inventory: OllamaInventory;
  catalog: ModelCatalog;
  settings: SettingsService;
  gpu: GpuProbe;
  reaper: IdleReaper;
  publish(event: ModelEvent): void;
  log: Logger;
  /** keep_alive sent when no inactivity threshold applies (OLLAMA_KEEP_ALIVE). */
  defaultKeepAlive: number | string;
}

export interface LoadResult {
  /** Canonical name of the loaded model. */
  model: string;
  /** URL of the Ollama host it was loaded on. */
  host: string;
  sizeBytes: number;
  /** VRAM the load was checked against (the model's size). */
  neededBytes: number;
  /** Free VRAM counted for the load (including what the model itself or a replaced model held); null = unknown. */
  freeBytes: number | null;
  vram: VramReport;
  /** keep_alive sent as the inactivity threshold, or null when none applies (OLLAMA_KEEP_ALIVE was sent). */
  keepAliveSeconds: number | null;
  warnings: string[];
}

export interface UnloadResult {
  model: string;
  /** False when the model was not loaded (nothing happened). */
  wasLoaded: boolean;
}

export interface ChangeResult extends LoadResult {
  /** The default model before the change (canonical name), if any. */
  previous: string | null;
  /** Whether the previous default was loaded and got unloaded. */
  previousUnloaded: boolean;
}

interface Target {
  installed: InstalledModel;
  entry: ModelEntry | null;
}

const GB = 1e9;
export const toGb = (bytes: number): number => Math.round((bytes / GB) * 100) / 100;

/**
 * Loading, unloading, deleting and swapping models on the Ollama host. One operation runs at a
 * time, so two loads cannot both pass the VRAM check against the same free memory.
 */
export class ModelLifecycle {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: LifecycleDeps) {}

  /** Loads a model after checking free VRAM against its size (skipped with `force`, warned when unknown). */
  async load(requested: string, opts: { numCtx?: number | null; force?: boolean | null } = {}): Promise<LoadResult> {
    const numCtx = checkNumCtx(opts.numCtx);
    return this.exclusive(async () => {
      const target = await this.target(requested);
      const loaded = await this.deps.inventory.loaded();
      const check = await this.checkVram(target, loaded, 0, Boolean(opts.force));
      return this.doLoad(target, numCtx, check, 'REQUEST');
    });
  }

  /** Unloads a model now (keep_alive 0). Requests already running on it finish first (Ollama waits for them). */
  unload(requested: string): Promise<UnloadResult> {
    return this.exclusive(async () => {
      const { installed } = await this.target(requested);
      const wasLoaded = (await this.deps.inventory.loaded()).has(installed.key);
      await this.deps.upstream.setResidency(installed.name, 0);
      this.deps.reaper.forget(installed.key);
      if (wasLoaded) this.emit('UNLOADED', 'REQUEST', installed);
      return { model: installed.key, wasLoaded };
    });
  }

  /** The idle reaper's unload: skipped when the model became busy meanwhile. */
  unloadIdle(name: string, key: string): Promise<boolean> {
    return this.exclusive(async () => {
      if (this.deps.reaper.isBusy(key)) return false;
      await this.deps.upstream.setResidency(name, 0);
      this.deps.reaper.forget(key);
      this.deps.log.info({ model: key, host: this.deps.host }, 'unloaded idle model');
      this.deps.publish({ type: 'UNLOADED', reason: 'IDLE', model: key, at: new Date().toISOString(), sizeBytes: null, host: this.deps.host });
      return true;
    });
  }

  /**
   * Deletes a model from the Ollama host. A loaded (or busy) model is refused unless `force`,
   * which unloads it first. Its catalogue entry, if any, stays.
   */
  delete(requested: string, opts: { force?: boolean | null } = {}): Promise<UnloadResult> {
    return this.exclusive(async () => {
      const { installed } = await this.target(requested);
      const loaded = (await this.deps.inventory.loaded()).get(installed.key);
      if (!opts.force) this.refuseIfInUse(installed.key, Boolean(loaded));
      if (loaded) {
        await this.deps.upstream.setResidency(installed.name, 0);
        this.emit('UNLOADED', 'REQUEST', installed);
      }
      await this.deps.upstream.delete(installed.name);
      this.deps.reaper.forget(installed.key);
      this.deps.inventory.forget(installed.key);
      this.emit('DELETED', 'REQUEST', installed);
      return { model: installed.key, wasLoaded: Boolean(loaded) };
    });
  }

  /** BAD_USER_INPUT (reason MODEL_LOADED) when deleting the model without force would be refused. */
  async assertDeletable(requested: string): Promise<void> {
    const { installed } = await this.target(requested);
    this.refuseIfInUse(installed.key, (await this.deps.inventory.loaded()).has(installed.key));
  }

  private refuseIfInUse(key: string, loaded: boolean): void {
    const busy = this.deps.reaper.isBusy(key);
    if (loaded || busy) {
      throw badInput(
        `Model "${key}" is ${busy ? 'answering requests' : 'loaded in memory'} on ${this.deps.host}; unload it first or pass force: true to unload and delete it.`,
        { field: 'name', reason: 'MODEL_LOADED', model: key, host: this.deps.host },
      );
    }
  }

  /**
   * Makes another model the default: checks VRAM (counting what the current default frees),
   * unloads the current default, loads the new one and records it as the default.
   */
  async change(to: string, opts: { numCtx?: number | null; force?: boolean | null } = {}): Promise<ChangeResult> {
    const numCtx = checkNumCtx(opts.numCtx);
    return this.exclusive(async () => {
      const target = await this.target(to);
      const previous = (await this.deps.catalog.defaultEntry())?.name ?? null;
      const loaded = await this.deps.inventory.loaded();
      const outgoing = previous && previous !== target.installed.key ? loaded.get(previous) : undefined;
      const check = await this.checkVram(target, loaded, outgoing?.vramBytes ?? 0, Boolean(opts.force));
      if (outgoing) {
        await this.deps.upstream.setResidency(outgoing.name, 0);
        this.deps.reaper.forget(outgoing.key);
        this.emit('UNLOADED', 'CHANGED', { key: outgoing.key, sizeBytes: outgoing.sizeBytes });
      }
      const result = await this.doLoad(target, numCtx, check, 'CHANGED');
      await this.deps.catalog.setDefault(target.installed.key);
      return { ...result, previous, previousUnloaded: Boolean(outgoing) };
    });
  }

  /** A name or alias resolved to a model installed on the host; MODEL_NOT_FOUND otherwise. */
  private async target(requested: string): Promise<Target> {
    const match = await this.deps.catalog.find(requested);
    const key = match ? match.entry.name : requireModelName(requested);
    const installed = (await this.deps.inventory.installed()).get(key);
    if (!installed) throw modelNotFound(requested, `Model "${requested.slice(0, 200)}" is not installed on the Ollama host ${this.deps.host}; pull it first.`, { host: this.deps.host });
    return { installed, entry: match?.entry ?? null };
  }

  private async checkVram(target: Target, loaded: Map<string, LoadedModel>, freedByOthers: number, force: boolean) {
    const vram = await this.deps.gpu.probe();
    const needed = target.installed.sizeBytes;
    const warnings: string[] = [];
    // Reloading a model replaces its own copy; a swapped-out default frees its memory too.
    const free = vram.freeBytes === null ? null : vram.freeBytes + (loaded.get(target.installed.key)?.vramBytes ?? 0) + freedByOthers;
    if (free === null) {
      warnings.push(`Free VRAM is unknown (${vram.warning ?? 'no probe'}); loaded without a VRAM check.`);
    } else if (needed > free) {
      if (!force) {
        throw new GatewayError(
          ErrorCode.INSUFFICIENT_VRAM,
          `Model "${target.installed.key}" needs about ${toGb(needed)} GB of VRAM but only ${toGb(free)} GB is free; unload a model or pass force: true.`,
          { model: target.installed.key, neededBytes: needed, freeBytes: free },
        );
      }
      warnings.push(`Forced: the model needs ${toGb(needed)} GB but only ${toGb(free)} GB of VRAM is free; Ollama may offload part of it to the CPU.`);
    }
    return { vram, needed, free, warnings };
  }

  private async doLoad(target: Target, numCtx: number | undefined, check: Awaited<ReturnType<ModelLifecycle['checkVram']>>, reason: ModelEventReason): Promise<LoadResult> {
    const { installed, entry } = target;
    const keepAliveSeconds = entry?.inactivityThresholdSeconds ?? (await this.deps.settings.getInactivityThresholdSeconds());
    // Always explicit: Ollama keeps a loaded model's previous keep_alive when a request has none.
    await this.deps.upstream.load(installed.name, { keepAlive: keepAliveSeconds ?? this.deps.defaultKeepAlive, numCtx });
    this.deps.reaper.touch(installed.key);
    this.emit('LOADED', reason, installed);
    return {
      model: installed.key,
      host: this.deps.host,
      sizeBytes: installed.sizeBytes,
      neededBytes: check.needed,
      freeBytes: check.free,
      vram: check.vram,
      keepAliveSeconds,
      warnings: check.warnings,
    };
  }

  private emit(type: ModelEventType, reason: ModelEventReason, model: { key: string; sizeBytes: number }): void {
    this.deps.log.info({ model: model.key, host: this.deps.host, event: type, reason }, 'model lifecycle');
    this.deps.publish({ type, reason, model: model.key, at: new Date().toISOString(), sizeBytes: model.sizeBytes, host: this.deps.host });
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
