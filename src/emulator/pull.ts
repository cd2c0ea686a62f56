// POST /api/pull: the progress sequence of server/images.go PullModel + download.go, with real
// delays between steps; the model is installed only when the whole sequence ran.

import { applySingleReplyFault, NdjsonStream, type Exchange } from './exchange.js';
import { isValidName, layersOf, nameKey, parseModelName } from './models.js';
import { PULL_FIELDS, decodeRequest, type NamedBody } from './requests.js';
import type { EmulatedModel } from './types.js';
import { sendError, sendJson, sleep } from './wire.js';

const MANIFEST_ERROR = 'pull model manifest: file does not exist';
/** download.go verifies each blob's digest here; the stream is silent meanwhile. */
const VERIFYING = 'verifying sha256 digest';
/** Progress messages per large layer (completed goes 1/4, 2/4, ... of total). */
const STEPS_PER_LAYER = 4;

type Progress = { status: string; digest?: string; total?: number; completed?: number };

/** The messages after "pulling manifest"; a blob already on disk gives one message with completed == total. */
function progressFor(model: EmulatedModel, cached: boolean): Progress[] {
  const out: Progress[] = [];
  for (const layer of layersOf(model)) {
    const base = { status: `pulling ${layer.digest.slice(0, 12)}`, digest: `sha256:${layer.digest}`, total: layer.size };
    if (cached) {
      out.push({ ...base, completed: layer.size });
      continue;
    }
    out.push(base); // completed is omitempty: absent while 0
    const steps = layer.size > 1_000_000 ? STEPS_PER_LAYER : 1;
    for (let s = 1; s <= steps; s++) out.push({ ...base, completed: Math.round((layer.size * s) / steps) });
  }
  out.push({ status: VERIFYING }, { status: 'writing manifest' });
  return out;
}

export async function pull(ex: Exchange): Promise<void> {
  const body = decodeRequest<NamedBody>(ex, 'PullRequest', PULL_FIELDS);
  if (!body) return;
  const { res, state, signal } = ex;
  const requested = body.model || body.name || '';
  if (!isValidName(parseModelName(requested))) return sendError(res, 400, 'invalid model name');
  const installed = state.find(requested);
  const source = installed?.model ?? state.registry.get(nameKey(requested));
  const steps = source ? progressFor(source, installed !== undefined) : [];
  const delay = (after?: Progress) => sleep(after?.status === VERIFYING ? state.pullVerifyMs : state.pullStepDelayMs, signal);
  const install = () => {
    if (source && !installed) state.install(source);
  };

  if (body.stream === false) {
    if (await applySingleReplyFault(ex, state.pullStepDelayMs)) return;
    for (let i = 0; i <= steps.length; i++) if (!(await delay(steps[i]))) return;
    if (!source) return sendError(res, 500, MANIFEST_ERROR);
    install();
    return sendJson(res, 200, { status: 'success' });
  }

  const stream = new NdjsonStream(ex);
  if (!(await stream.unit({ status: 'pulling manifest' }))) return;
  if (!(await delay())) return;
  if (!source) return stream.fail(500, MANIFEST_ERROR); // already streaming: 200 + {"error"} line
  for (const step of steps) {
    if (!(await stream.unit(step))) return;
    if (!(await delay(step))) return;
  }
  install();
  await stream.finish({ status: 'success' });
}
