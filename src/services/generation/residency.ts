import { canonicalModelName } from '../models/names.js';
import type { OllamaUpstream } from '../ollama/upstream.js';

const canonical = (name: string) => canonicalModelName(name) ?? name.toLowerCase();

/**
 * Whether a model is loaded on the GPU, from Ollama's `/api/ps`, cached briefly so a burst of
 * requests costs one round trip. Used to tell clients that a request is waiting on a model load.
 */
export class ResidencyProbe {
  private snapshot: { at: number; names: Set<string> } | undefined;
  private pending: Promise<Set<string> | undefined> | undefined;

  constructor(
    private readonly upstream: OllamaUpstream,
    private readonly ttlMs = 1000,
  ) {}

  /** true/false, or undefined when Ollama could not be asked. */
  async isResident(model: string): Promise<boolean | undefined> {
    const names = await this.loaded();
    return names?.has(canonical(model));
  }

  /** Records that a model just answered, so it counts as loaded without asking again. */
  markResident(model: string): void {
    this.snapshot?.names.add(canonical(model));
  }

  /** Forgets the cache (after load/unload through the gateway). */
  invalidate(): void {
    this.snapshot = undefined;
  }

  private async loaded(): Promise<Set<string> | undefined> {
    if (this.snapshot && Date.now() - this.snapshot.at < this.ttlMs) return this.snapshot.names;
    this.pending ??= this.upstream
      .ps(AbortSignal.timeout(2000))
      .then((r) => {
        const names = new Set(r.models.map((m) => canonical(m.name)));
        this.snapshot = { at: Date.now(), names };
        return names;
      })
      .catch(() => undefined)
      .finally(() => (this.pending = undefined));
    return this.pending;
  }
}
