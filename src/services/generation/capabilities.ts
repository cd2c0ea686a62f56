import { ErrorCode, GatewayError } from '../errors.js';
import type { OllamaPool } from '../ollama/pool.js';

/** Capabilities a request may need (Ollama's /api/show `capabilities`, types/model/capability.go). */
export type Capability = 'vision' | 'thinking' | 'tools' | 'embedding';

const WHAT: Record<Capability, string> = {
  vision: 'cannot read images (it has no vision capability)',
  thinking: 'cannot reason apart from its answer (it has no thinking capability); leave think unset or false',
  tools: 'cannot call tools (it has no tools capability)',
  embedding: 'cannot embed text (it has no embedding capability)',
};

const TTL_MS = 60_000;

/**
 * Refuses a request whose model lacks a capability it needs, before it reaches the model. The
 * capabilities come from the catalogue's cache when the directory knows them; otherwise from
 * `/api/show` of the first host that has the model, kept for a minute (a model may be re-pulled).
 */
export class CapabilityCheck {
  private readonly cache = new Map<string, { at: number; capabilities: Promise<string[] | null> }>();

  constructor(private readonly pool: OllamaPool) {}

  async require(name: string, known: string[] | null | undefined, needed: readonly Capability[]): Promise<void> {
    const capabilities = known === undefined ? await this.lookup(name) : known;
    // Unknown capabilities (an old Ollama without them): let Ollama decide.
    if (!capabilities) return;
    const missing = needed.find((c) => !capabilities.includes(c));
    if (missing) throw new GatewayError(ErrorCode.CAPABILITY_MISSING, `Model "${name}" ${WHAT[missing]}.`, { model: name, capability: missing });
  }

  private lookup(name: string): Promise<string[] | null> {
    let cached = this.cache.get(name);
    if (!cached || Date.now() - cached.at > TTL_MS) {
      const entry = {
        at: Date.now(),
        capabilities: this.showAnywhere(name).then(
          (r) => r.capabilities ?? null,
          (e: unknown) => {
            this.cache.delete(name);
            throw e;
          },
        ),
      };
      this.cache.set(name, entry);
      cached = entry;
    }
    return cached.capabilities;
  }

  /** `/api/show` from the first host that has the model (they all report the same capabilities). */
  private async showAnywhere(name: string) {
    let failure: unknown;
    for (const h of await this.pool.candidates(name)) {
      try {
        return await h.upstream.show(name);
      } catch (e) {
        failure ??= e;
      }
    }
    throw failure;
  }
}
