import type { ModelEntry } from '../../entities/model-entry.js';
import type { SettingsService } from '../platform/settings.js';
import type { ModelCatalog } from './catalog.js';
import { modelNotFound } from './errors.js';
import { type HostSnapshot, ModelFleet, type Placement } from './fleet.js';
import type { InstalledModel, LoadedModel } from '../ollama/inventory.js';
import { requireModelName } from '../ollama/model-names.js';

/** One model as operators see it: catalogue entry, installed copy and loaded state merged. */
export interface ModelView {
  /** Canonical name. */
  key: string;
  /** The name as Ollama lists it, else the catalogue's. */
  name: string;
  entry: ModelEntry | null;
  /** The installed copy on the first host that has one. */
  installed: InstalledModel | null;
  /** URL of the host `installed` comes from. */
  installedOn: string | null;
  /** The loaded copy on the first host that has it loaded. */
  loaded: LoadedModel | null;
  /** Every host that has the model installed or loaded. */
  placements: Placement[];
  busy: boolean;
  lastActiveAt: Date | null;
  /** Threshold that applies: the model's own, else the global one; null = none. */
  effectiveThresholdSeconds: number | null;
}

/** Read side of the model catalogue merged with `/api/tags` and `/api/ps` of every Ollama host. */
export class ModelOverview {
  constructor(private readonly deps: { catalog: ModelCatalog; fleet: ModelFleet; settings: SettingsService }) {}

  /** Every catalogued or installed model, by name. */
  async list(): Promise<ModelView[]> {
    const [entries, snapshot, global] = await this.snapshot();
    const keys = new Set([...entries.map((e) => e.name), ...snapshot.flatMap((s) => [...s.installed.keys()])]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    return [...keys].sort().map((k) => this.view(k, byName.get(k) ?? null, snapshot, global));
  }

  /** Loaded models (on one host, or on any), in the order Ollama lists them (host by host). */
  async running(host?: string | null): Promise<ModelView[]> {
    const [entries, snapshot, global] = await this.snapshot(host);
    const byName = new Map(entries.map((e) => [e.name, e]));
    const keys = [...new Set(snapshot.flatMap((s) => [...s.loaded.keys()]))];
    return keys.map((k) => this.view(k, byName.get(k) ?? null, snapshot, global));
  }

  /** A model by alias or name; MODEL_NOT_FOUND when it is neither catalogued nor installed. */
  async get(requested: string): Promise<ModelView> {
    const match = await this.deps.catalog.find(requested);
    const key = match ? match.entry.name : requireModelName(requested);
    const [snapshot, global] = await Promise.all([this.deps.fleet.snapshot(), this.deps.settings.getInactivityThresholdSeconds()]);
    if (!match && !snapshot.some((s) => s.installed.has(key)))
      throw modelNotFound(requested, `Model "${requested.slice(0, 200)}" is neither in the catalog nor installed.`);
    return this.view(key, match?.entry ?? null, snapshot, global);
  }

  private snapshot(host?: string | null) {
    return Promise.all([this.deps.catalog.list(), this.deps.fleet.snapshot(this.deps.fleet.of(host)), this.deps.settings.getInactivityThresholdSeconds()] as const);
  }

  private view(key: string, entry: ModelEntry | null, snapshot: readonly HostSnapshot[], global: number | null): ModelView {
    const placements = ModelFleet.placements(key, snapshot);
    const installedAt = placements.find((p) => p.installed);
    const loaded = placements.find((p) => p.loaded)?.loaded ?? null;
    const reapers = this.deps.fleet.hosts.map((h) => h.reaper);
    const lastActive = reapers.map((r) => r.lastActiveAt(key)).filter((d): d is Date => d !== null);
    return {
      key,
      name: installedAt?.installed?.name ?? loaded?.name ?? key,
      entry,
      installed: installedAt?.installed ?? null,
      installedOn: installedAt?.host ?? null,
      loaded,
      placements,
      busy: reapers.some((r) => r.isBusy(key)),
      lastActiveAt: lastActive.length ? new Date(Math.max(...lastActive.map((d) => d.getTime()))) : null,
      effectiveThresholdSeconds: entry?.inactivityThresholdSeconds ?? global,
    };
  }
}
