import { ErrorCode, GatewayError } from '../platform/errors.js';
import type { OllamaPool } from '../ollama/pool.js';

/** Capabilities a request may need (Ollama's /api/show `capabilities`, types/model/capability.go). */
export type Capability = 'vision' | 'thinking' | 'tools' | 'embedding';

/** A model's capabilities (null when Ollama does not report them); the gateway's one cache is behind it. */
export type CapabilityLookup = (name: string) => Promise<string[] | null>;

const WHAT: Record<Capability, string> = {
  vision: 'cannot read images (it has no vision capability)',
  thinking: 'cannot reason apart from its answer (it has no thinking capability); leave think unset or false',
  tools: 'cannot call tools (it has no tools capability)',
  embedding: 'cannot embed text (it has no embedding capability)',
};

/**
 * Refuses a request whose model lacks a capability it needs, before it reaches the model. The
 * capabilities come from the catalogue's view when the directory knows them, else from `lookup`
 * (the model fleet's cached `/api/show`).
 */
export class CapabilityCheck {
  constructor(private readonly lookup: CapabilityLookup) {}

  async require(name: string, known: string[] | null | undefined, needed: readonly Capability[]): Promise<void> {
    const capabilities = known === undefined ? await this.lookup(name) : known;
    // Unknown capabilities (an old Ollama without them): let Ollama decide.
    if (!capabilities) return;
    const missing = needed.find((c) => !capabilities.includes(c));
    if (missing) throw new GatewayError(ErrorCode.CAPABILITY_MISSING, `Model "${name}" ${WHAT[missing]}.`, { model: name, capability: missing });
  }
}

/** Without a model fleet (tests of the generation path alone): `/api/show` of the first host that has the model, uncached. */
export function showOnPool(pool: OllamaPool): CapabilityLookup {
  return async (name) => {
    let failure: unknown;
    for (const h of await pool.candidates(name)) {
      try {
        const r = await h.upstream.show(name);
        return Array.isArray(r.capabilities) ? r.capabilities : null;
      } catch (e) {
        failure ??= e;
      }
    }
    throw failure;
  };
}
