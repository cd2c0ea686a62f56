import type { ModelResponse } from 'ollama';
import type { OllamaUpstream } from '../ollama/upstream.js';
import { modelKey } from '../ollama/model-names.js';

/** A model installed on the Ollama host (`/api/tags`). */
export interface InstalledModel {
  /** Canonical name (lower case, `name:tag`): the key everything is matched on. */
  key: string;
  /** The name as Ollama lists it. */
  name: string;
  sizeBytes: number;
  digest: string | null;
  family: string | null;
  parameterSize: string | null;
  quantizationLevel: string | null;
  modifiedAt: Date | null;
}

/** A model loaded in memory (`/api/ps`). */
export interface LoadedModel {
  key: string;
  name: string;
  sizeBytes: number;
  vramBytes: number;
  expiresAt: Date | null;
  contextLength: number | null;
}

/** Where a loaded model runs: all on the GPU, split between GPU and CPU (partly offloaded), or on the CPU alone. */
export type Offload = 'GPU' | 'PARTIAL' | 'CPU';

/** From /api/ps: `size_vram` equals `size` when fully on the GPU, is less when partly offloaded, and 0 on the CPU. */
export function offloadOf(m: Pick<LoadedModel, 'sizeBytes' | 'vramBytes'>): Offload {
  if (m.vramBytes <= 0) return 'CPU';
  return m.vramBytes < m.sizeBytes ? 'PARTIAL' : 'GPU';
}

const date = (v: unknown): Date | null => {
  if (v === undefined || v === null || v === '') return null;
  const d = new Date(v as string);
  return Number.isNaN(d.getTime()) ? null : d;
};
const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/**
 * What the Ollama host has installed and loaded. Installed and loaded lists are read fresh each
 * time (they change under us); `/api/show` capabilities are cached per model digest, since a
 * digest's capabilities never change.
 */
export class OllamaInventory {
  private readonly capabilityCache = new Map<string, Promise<string[] | null>>();

  constructor(private readonly upstream: OllamaUpstream) {}

  async installed(signal?: AbortSignal): Promise<Map<string, InstalledModel>> {
    const { models } = await this.upstream.list(signal);
    return new Map(
      models.map((m: ModelResponse) => {
        const key = modelKey(m.name);
        return [
          key,
          {
            key,
            name: m.name,
            sizeBytes: m.size ?? 0,
            digest: text(m.digest),
            family: text(m.details?.family),
            parameterSize: text(m.details?.parameter_size),
            quantizationLevel: text(m.details?.quantization_level),
            modifiedAt: date(m.modified_at),
          },
        ];
      }),
    );
  }

  async loaded(signal?: AbortSignal): Promise<Map<string, LoadedModel>> {
    const { models } = await this.upstream.ps(signal);
    return new Map(
      models.map((m: ModelResponse) => {
        const key = modelKey(m.name);
        const contextLength = (m as unknown as { context_length?: unknown }).context_length;
        return [
          key,
          {
            key,
            name: m.name,
            sizeBytes: m.size ?? 0,
            vramBytes: m.size_vram ?? 0,
            expiresAt: date(m.expires_at),
            contextLength: typeof contextLength === 'number' ? contextLength : null,
          },
        ];
      }),
    );
  }

  /** Sum of `size_vram` over loaded models. */
  async vramInUse(): Promise<number> {
    let total = 0;
    for (const m of (await this.loaded()).values()) total += m.vramBytes;
    return total;
  }

  /**
   * Capabilities from `/api/show` (e.g. "completion", "vision"), cached by digest; null when Ollama
   * does not report them. A failed lookup is not cached.
   */
  capabilities(name: string, digest: string | null): Promise<string[] | null> {
    const cacheKey = `${modelKey(name)}@${digest ?? ''}`;
    let cached = this.capabilityCache.get(cacheKey);
    if (!cached) {
      cached = this.upstream.show(name).then(
        (r) => (Array.isArray(r.capabilities) ? r.capabilities : null),
        (e: unknown) => {
          this.capabilityCache.delete(cacheKey);
          throw e;
        },
      );
      this.capabilityCache.set(cacheKey, cached);
    }
    return cached;
  }

  /** Capabilities already fetched for a model, whatever its digest; undefined when none are cached. */
  async cachedCapabilities(name: string): Promise<string[] | null | undefined> {
    const prefix = `${modelKey(name)}@`;
    for (const [k, v] of this.capabilityCache) if (k.startsWith(prefix)) return v.catch(() => undefined);
    return undefined;
  }

  /** Forgets cached show results of a model (after a pull or delete). */
  forget(name: string): void {
    const prefix = `${modelKey(name)}@`;
    for (const k of [...this.capabilityCache.keys()]) if (k.startsWith(prefix)) this.capabilityCache.delete(k);
  }
}
