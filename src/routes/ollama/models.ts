import type { Services } from '../../services/container.js';
import { ErrorCode, GatewayError } from '../../services/platform/errors.js';
import { modelNotFound } from '../../services/models/errors.js';
import type { ModelView } from '../../services/models/overview.js';

/** A model clients can use: installed on an Ollama host and not disabled in the catalog (as /v1/models). */
const offered = (v: ModelView) => v.installed !== null && v.entry?.enabled !== false;

/** `details` as Ollama lists them, from what the inventory knows (unknown fields left out). */
function details(v: ModelView): Record<string, unknown> {
  const i = v.installed;
  const out: Record<string, unknown> = { parent_model: '' };
  if (i?.family) Object.assign(out, { family: i.family, families: [i.family] });
  if (i?.parameterSize) out.parameter_size = i.parameterSize;
  if (i?.quantizationLevel) out.quantization_level = i.quantizationLevel;
  return out;
}

/** `GET /api/tags`: installed, enabled models by their Ollama name, plus each catalog alias under its own name. */
export async function listTags(services: Services) {
  const models: Record<string, unknown>[] = [];
  for (const v of await services.models.overview.list()) {
    if (!offered(v)) continue;
    const i = v.installed!;
    const row = { modified_at: (i.modifiedAt ?? new Date(0)).toISOString(), size: i.sizeBytes, digest: i.digest ?? '', details: details(v) };
    models.push({ name: v.name, model: v.name, ...row });
    if (v.entry?.alias) models.push({ name: v.entry.alias, model: v.entry.alias, ...row });
  }
  return { models };
}

/** `GET /api/ps`: models loaded on any host, the longest time left first (as Ollama sorts them). */
export async function listRunning(services: Services) {
  const running = (await services.models.overview.running()).filter((v) => v.loaded);
  const rows = running.map((v) => {
    const l = v.loaded!;
    return {
      name: l.name,
      model: l.name,
      size: l.sizeBytes,
      digest: v.installed?.digest ?? '',
      details: details(v),
      expires_at: (l.expiresAt ?? new Date(0)).toISOString(),
      size_vram: l.vramBytes,
      ...(l.contextLength ? { context_length: l.contextLength } : {}),
    };
  });
  return { models: rows.sort((a, b) => b.expires_at.localeCompare(a.expires_at)) };
}

/** The model a body names (`model`, or the legacy `name` that older clients send). */
export function modelIn(body: unknown): string {
  const b = (body ?? {}) as { model?: unknown; name?: unknown };
  const m = typeof b.model === 'string' && b.model ? b.model : b.name;
  if (typeof m !== 'string' || !m) throw new GatewayError(ErrorCode.BAD_USER_INPUT, 'model is required');
  return m;
}

/**
 * `POST /api/show`: Ollama's own answer from a host that has the model (an alias is resolved),
 * with the catalog's system prompt as `system` when the model has one (it replaces the
 * Modelfile's, as the gateway sends it when a request brings none).
 */
export async function showModel(services: Services, body: unknown) {
  const requested = modelIn(body);
  const v = await services.models.overview.get(requested);
  if (!offered(v) || !v.installedOn) throw modelNotFound(requested, `model '${requested.slice(0, 200)}' not found`);
  const shown = (await services.models.fleet.one(v.installedOn).host.upstream.show(v.name)) as unknown as Record<string, unknown>;
  return v.entry?.systemPrompt ? { ...shown, system: v.entry.systemPrompt } : shown;
}

/** `GET /api/version`: the version of the first Ollama host that answers (the gateway speaks its API). */
export async function version(services: Services, signal: AbortSignal) {
  let failure: unknown;
  for (const h of services.pool.hosts) {
    try {
      return { version: await h.upstream.version(signal) };
    } catch (e) {
      failure ??= e;
    }
  }
  throw failure ?? new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'No Ollama host answered.');
}
