// POST /api/embed and the deprecated POST /api/embeddings, after server/routes.go EmbedHandler and
// EmbeddingsHandler: same validation order and messages, scheduling like any request, then one
// deterministic L2-normalised vector per input (routes.go normalize(), again after `dimensions`).

import { createHash } from 'node:crypto';
import { decodeKeepAlive } from './duration.js';
import type { Exchange } from './exchange.js';
import { BUSY_MESSAGE } from './faults.js';
import { INVALID_MODEL_NAME, modelRefError } from './models.js';
import { EMBED_FIELDS, EMBEDDINGS_FIELDS, decodeRequest, parseOptions, type EmbedBody } from './requests.js';
import type { Lease } from './sched.js';
import { tokenize } from './script.js';
import type { Installed } from './state.js';
import { nowNs, sendError, sendJson } from './wire.js';

/** What real Ollama answers when the runner has no pooling (a completion model asked for embeddings). */
const NO_EMBEDDINGS = 'this model does not support embeddings';

/** handleScheduleError's os.ErrNotExist case. */
const notPulled = (name: string) => `model ${JSON.stringify(name)} not found, try pulling it first`;

/** Deterministic raw values in [-1, 1) from the model and the text. */
function rawVector(model: string, text: string, length: number): number[] {
  const out: number[] = [];
  for (let block = 0; out.length < length; block++) {
    const digest = createHash('sha256').update(`${model}\n${block}\n${text}`).digest();
    for (let i = 0; i + 4 <= digest.length && out.length < length; i += 4) out.push(digest.readUInt32BE(i) / 2 ** 31 - 1);
  }
  return out;
}

/** routes.go normalize: divide by the L2 norm (at least 1e-12). */
function normalize(vec: number[]): number[] {
  const norm = Math.sqrt(vec.reduce((sum, v) => sum + v * v, 0));
  const scale = 1 / Math.max(norm, 1e-12);
  return vec.map((v) => v * scale);
}

/** Schedule like any request; sends 503 or nothing (client gone) itself and returns undefined then. */
async function scheduled(ex: Exchange, inst: Installed, body: EmbedBody): Promise<Lease | undefined> {
  const opts = parseOptions(body.options);
  if ('error' in opts) {
    sendError(ex.res, 500, opts.error);
    return undefined;
  }
  const ka = decodeKeepAlive(body.keep_alive); // validated while decoding
  const lease = await ex.state.sched.schedule(inst.model, ka?.ok ? ka.ms : undefined, opts.numCtx, ex.signal);
  if (lease === 'aborted') return undefined;
  if (lease === 'busy') {
    sendError(ex.res, 503, BUSY_MESSAGE);
    return undefined;
  }
  return lease;
}

export async function embed(ex: Exchange): Promise<void> {
  const started = nowNs();
  const body = decodeRequest<EmbedBody>(ex, 'EmbedRequest', EMBED_FIELDS);
  if (!body) return;
  const modelSent = body.model ?? '';
  const refErr = modelRefError(modelSent);
  if (refErr === 'invalid') return sendError(ex.res, 400, INVALID_MODEL_NAME);
  if (refErr === 'required') return sendError(ex.res, 404, `model '${modelSent}' not found`);
  const input: string[] = [];
  if (typeof body.input === 'string') {
    if (body.input.length > 0) input.push(body.input);
  } else if (Array.isArray(body.input)) {
    if (!body.input.every((v) => typeof v === 'string')) return sendError(ex.res, 400, 'invalid input type');
    input.push(...(body.input as string[]));
  } else if (body.input !== undefined && body.input !== null) {
    return sendError(ex.res, 400, 'invalid input type');
  }
  const inst = ex.state.find(modelSent.trim());
  if (!inst) return sendError(ex.res, 404, notPulled(modelSent));

  const lease = await scheduled(ex, inst, body);
  if (!lease) return;
  const { sched } = ex.state;
  try {
    const loadedNs = nowNs();
    if (input.length === 0) return sendJson(ex.res, 200, { model: modelSent, embeddings: [] });
    if (!inst.model.capabilities.includes('embedding')) return sendError(ex.res, 501, NO_EMBEDDINGS);
    if (!(await sched.acquireSlot(lease.runner, ex.signal))) return;
    try {
      ex.scheduled();
      // inputTokensAndContext: the context window, less the BOS and EOS tokens the tokenizer adds.
      const limit = lease.runner.contextLength - 2;
      const length = inst.model.embeddingLength ?? 3072;
      let tokens = 0;
      const embeddings: number[][] = [];
      for (const text of input) {
        let toks = tokenize(text);
        if (toks.length > limit) {
          if (body.truncate === false) return sendError(ex.res, 400, 'the input length exceeds the context length');
          toks = toks.slice(0, limit);
        }
        tokens += toks.length;
        let vec = normalize(rawVector(inst.model.name, toks.join(''), length));
        const dims = body.dimensions ?? 0;
        if (dims > 0 && dims < vec.length) vec = normalize(vec.slice(0, dims));
        embeddings.push(vec);
      }
      const load = lease.cold ? Math.max(150_000_000, Math.round(inst.model.size / 8)) : Number(loadedNs - started);
      const total = Math.max(Number(nowNs() - started), load + tokens * 200_000);
      sendJson(ex.res, 200, { model: modelSent, embeddings, total_duration: total, load_duration: load, prompt_eval_count: tokens });
    } finally {
      sched.releaseSlot(lease.runner);
    }
  } finally {
    sched.release(lease.runner);
  }
}

/** The deprecated one-vector form: {model, prompt} -> {embedding}. */
export async function embeddings(ex: Exchange): Promise<void> {
  const body = decodeRequest<EmbedBody>(ex, 'EmbeddingRequest', EMBEDDINGS_FIELDS);
  if (!body) return;
  const modelSent = body.model ?? '';
  const refErr = modelRefError(modelSent);
  if (refErr) return sendError(ex.res, 400, refErr === 'invalid' ? INVALID_MODEL_NAME : 'model is required');
  const inst = ex.state.find(modelSent.trim());
  if (!inst) return sendError(ex.res, 404, notPulled(modelSent));
  const lease = await scheduled(ex, inst, body);
  if (!lease) return;
  const { sched } = ex.state;
  try {
    // "an empty request loads the model"
    if (!body.prompt) return sendJson(ex.res, 200, { embedding: [] });
    if (!inst.model.capabilities.includes('embedding')) return sendError(ex.res, 500, NO_EMBEDDINGS);
    if (!(await sched.acquireSlot(lease.runner, ex.signal))) return;
    try {
      ex.scheduled();
      const toks = tokenize(body.prompt).slice(0, lease.runner.contextLength - 2);
      sendJson(ex.res, 200, { embedding: normalize(rawVector(inst.model.name, toks.join(''), inst.model.embeddingLength ?? 3072)) });
    } finally {
      sched.releaseSlot(lease.runner);
    }
  } finally {
    sched.release(lease.runner);
  }
}
