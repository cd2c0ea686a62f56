import type { ModelView } from '../../services/models/overview.js';
import type { Services } from '../../services/container.js';
import { modelNotFound } from '../../services/models/errors.js';

export interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

const OWNER = 'llm-gateway';

const createdOf = (v: ModelView) => Math.floor((v.installed?.modifiedAt ?? v.entry?.createdAt ?? new Date(0)).getTime() / 1000);

/** A model clients can use: installed on the Ollama host and not disabled in the catalog. */
const offered = (v: ModelView) => v.installed !== null && v.entry?.enabled !== false;

/** `GET /v1/models`: every installed, enabled model by its Ollama name, plus each catalog alias. */
export async function listModels(services: Services): Promise<{ object: 'list'; data: OpenAIModel[] }> {
  const data: OpenAIModel[] = [];
  for (const v of await services.models.overview.list()) {
    if (!offered(v)) continue;
    const created = createdOf(v);
    data.push({ id: v.name, object: 'model', created, owned_by: OWNER });
    if (v.entry?.alias) data.push({ id: v.entry.alias, object: 'model', created, owned_by: OWNER });
  }
  return { object: 'list', data };
}

/** `GET /v1/models/{model}`: a name or alias; 404 unless it is installed and enabled. */
export async function retrieveModel(services: Services, requested: string): Promise<OpenAIModel> {
  const v = await services.models.overview.get(requested);
  if (!offered(v)) throw modelNotFound(requested);
  return { id: requested, object: 'model', created: createdOf(v), owned_by: OWNER };
}
