import { badInput } from '../platform/errors.js';
import type { ModelDirectory, ResolvedModel } from '../generation/hooks.js';
import type { SettingsService } from '../platform/settings.js';
import type { ModelCatalog } from './catalog.js';
import { modelNotFound } from './errors.js';
import type { ModelFleet } from './fleet.js';
import { canonicalModelName } from '../ollama/model-names.js';

/**
 * The catalogue as generation sees it: an alias becomes its Ollama name; prices come from the
 * entry; keep_alive is the inactivity threshold (the model's own, else the global one); a
 * disabled entry is refused with MODEL_NOT_FOUND (the model is not offered, for any key, so
 * FORBIDDEN would wrongly suggest another key could use it). Names not in the catalogue pass
 * through unchanged, and Ollama decides whether they exist.
 */
export class CatalogModelDirectory implements ModelDirectory {
  constructor(
    private readonly deps: { catalog: ModelCatalog; settings: SettingsService; fleet: ModelFleet },
  ) {}

  async resolve(requested: string): Promise<ResolvedModel> {
    const match = await this.deps.catalog.find(requested);
    if (!match && !canonicalModelName(requested)) {
      throw badInput(`"${requested.slice(0, 100)}" is not a valid model name or alias.`, { field: 'model' });
    }
    if (match && !match.entry.enabled) {
      throw modelNotFound(requested, `Model "${requested.slice(0, 200)}" is disabled in the catalog.`, { disabled: true });
    }
    const entry = match?.entry;
    // An alias becomes the Ollama name; a name goes upstream as the client wrote it (Ollama normalizes it).
    const name = match?.via === 'alias' ? match.entry.name : requested.trim();
    const threshold = entry?.inactivityThresholdSeconds ?? (await this.deps.settings.getInactivityThresholdSeconds());
    const capabilities = await this.deps.fleet.cachedCapabilities(name);
    return {
      name,
      pricing: { promptPricePer1k: entry?.promptPricePer1k ?? null, completionPricePer1k: entry?.completionPricePer1k ?? null },
      ...(threshold !== null ? { keepAlive: threshold } : {}),
      ...(capabilities !== undefined ? { capabilities } : {}),
      ...(entry?.systemPrompt ? { systemPrompt: entry.systemPrompt } : {}),
    };
  }

  markBusy(model: string, host: string): () => void {
    return this.deps.fleet.one(host).reaper.markBusy(model);
  }
}
