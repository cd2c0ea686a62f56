import type { ModelEntry } from '../../entities/model-entry.js';
import type { SettingsService } from '../settings.js';
import type { ModelCatalog } from './catalog.js';
import { modelNotFound } from './errors.js';
import type { IdleReaper } from './idle-reaper.js';
import type { InstalledModel, LoadedModel, OllamaInventory } from './inventory.js';
import { requireModelName } from './names.js';

/** One model as operators see it: catalogue entry, installed copy and loaded state merged. */
export interface ModelView {
  /** Canonical name. */
  key: string;
  /** The name as Ollama lists it, else the catalogue's. */
  name: string;
  entry: ModelEntry | null;
  installed: InstalledModel | null;
  loaded: LoadedModel | null;
  busy: boolean;
  lastActiveAt: Date | null;
  /** Threshold that applies: the model's own, else the global one; null = none. */
  effectiveThresholdSeconds: number | null;
}

/** Read side of the model catalogue merged with `/api/tags` and `/api/ps`. */
export class ModelOverview {
  constructor(
    private readonly deps: { catalog: ModelCatalog; inventory: OllamaInventory; settings: SettingsService; reaper: IdleReaper },
  ) {}

  /** Every catalogued or installed model, by name. */
  async list(): Promise<ModelView[]> {
    const [entries, installed, loaded, global] = await this.snapshot();
    const keys = new Set([...entries.map((e) => e.name), ...installed.keys()]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    return [...keys].sort().map((k) => this.view(k, byName.get(k) ?? null, installed.get(k) ?? null, loaded.get(k) ?? null, global));
  }

  /** Loaded models, longest time left first (as Ollama lists them). */
  async running(): Promise<ModelView[]> {
    const [entries, installed, loaded, global] = await this.snapshot();
    const byName = new Map(entries.map((e) => [e.name, e]));
    return [...loaded.values()].map((l) => this.view(l.key, byName.get(l.key) ?? null, installed.get(l.key) ?? null, l, global));
  }

  /** A model by alias or name; MODEL_NOT_FOUND when it is neither catalogued nor installed. */
  async get(requested: string): Promise<ModelView> {
    const match = await this.deps.catalog.find(requested);
    const key = match ? match.entry.name : requireModelName(requested);
    const [installed, loaded, global] = await Promise.all([
      this.deps.inventory.installed(),
      this.deps.inventory.loaded(),
      this.deps.settings.getInactivityThresholdSeconds(),
    ]);
    if (!match && !installed.has(key)) throw modelNotFound(requested, `Model "${requested.slice(0, 200)}" is neither in the catalog nor installed.`);
    return this.view(key, match?.entry ?? null, installed.get(key) ?? null, loaded.get(key) ?? null, global);
  }

  private snapshot() {
    return Promise.all([
      this.deps.catalog.list(),
      this.deps.inventory.installed(),
      this.deps.inventory.loaded(),
      this.deps.settings.getInactivityThresholdSeconds(),
    ] as const);
  }

  private view(key: string, entry: ModelEntry | null, installed: InstalledModel | null, loaded: LoadedModel | null, global: number | null): ModelView {
    return {
      key,
      name: installed?.name ?? loaded?.name ?? key,
      entry,
      installed,
      loaded,
      busy: this.deps.reaper.isBusy(key),
      lastActiveAt: this.deps.reaper.lastActiveAt(key),
      effectiveThresholdSeconds: entry?.inactivityThresholdSeconds ?? global,
    };
  }
}
