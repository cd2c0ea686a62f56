import type { ModelResponse } from 'ollama';
import { modelKey } from './model-names.js';
import type { OllamaUpstream } from './upstream.js';

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

/** A recent answer of one host list (`/api/tags` or `/api/ps`), shared while in flight. */
class RecentList<T> {
  private last: { at: number; models: Map<string, T> } | undefined;
  private pending: Promise<Map<string, T> | undefined> | undefined;
  /** Names that answered a request since the last answer (they are loaded whatever the list said). */
  private readonly since = new Set<string>();

  constructor(private readonly read: (signal?: AbortSignal) => Promise<Map<string, T>>) {}

  /** A fresh answer; it becomes the recent one. */
  async fresh(signal?: AbortSignal): Promise<Map<string, T>> {
    const models = await this.read(signal);
    this.last = { at: Date.now(), models };
    this.since.clear();
    return models;
  }

  /** Whether `key` is in an answer at most `maxAgeMs` old (asked again when older); undefined when the host could not be asked. */
  async has(key: string, maxAgeMs: number, probeTimeoutMs: number): Promise<boolean | undefined> {
    if (this.since.has(key)) return true;
    if (!this.last || Date.now() - this.last.at >= maxAgeMs) {
      this.pending ??= this.fresh(AbortSignal.timeout(probeTimeoutMs))
        .catch(() => undefined)
        .finally(() => (this.pending = undefined));
      if (!(await this.pending)) return undefined;
    }
    return this.since.has(key) || this.last!.models.has(key);
  }

  add(key: string): void {
    this.since.add(key);
  }

  invalidate(): void {
    this.last = undefined;
    this.since.clear();
  }
}

/**
 * What one Ollama host has installed and loaded: the one view of it that routing (the pool asks
 * for a recent answer) and the model services (which read fresh lists, since they change under
 * us) share. `/api/show` capabilities are cached per model digest, since a digest's capabilities
 * never change.
 */
export class OllamaInventory {
  private readonly capabilityCache = new Map<string, Promise<string[] | null>>();
  private readonly installedList = new RecentList<InstalledModel>((signal) => this.readInstalled(signal));
  private readonly loadedList = new RecentList<LoadedModel>((signal) => this.readLoaded(signal));

  constructor(private readonly upstream: OllamaUpstream) {}

  /** What the host has installed now (`/api/tags`). */
  installed(signal?: AbortSignal): Promise<Map<string, InstalledModel>> {
    return this.installedList.fresh(signal);
  }

  /** What the host has loaded now (`/api/ps`). */
  loaded(signal?: AbortSignal): Promise<Map<string, LoadedModel>> {
    return this.loadedList.fresh(signal);
  }

  /** For routing: whether the model was installed in an answer at most `maxAgeMs` old; undefined when the host could not be asked. */
  isInstalled(model: string, maxAgeMs: number, probeTimeoutMs: number): Promise<boolean | undefined> {
    return this.installedList.has(modelKey(model), maxAgeMs, probeTimeoutMs);
  }

  /** For routing: whether the model was loaded in an answer at most `maxAgeMs` old, or has answered since. */
  isLoaded(model: string, maxAgeMs: number, probeTimeoutMs: number): Promise<boolean | undefined> {
    return this.loadedList.has(modelKey(model), maxAgeMs, probeTimeoutMs);
  }

  /** Records that a model just answered here, so routing counts it as loaded without asking again. */
  markLoaded(model: string): void {
    this.loadedList.add(modelKey(model));
  }

  /** Forgets the recent lists (after a load, unload, pull or delete through the gateway). */
  invalidate(): void {
    this.installedList.invalidate();
    this.loadedList.invalidate();
  }

  private async readInstalled(signal?: AbortSignal): Promise<Map<string, InstalledModel>> {
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

  private async readLoaded(signal?: AbortSignal): Promise<Map<string, LoadedModel>> {
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
