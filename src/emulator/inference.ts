// POST /api/generate and POST /api/chat: validation in the same order as Ollama's handlers, load /
// unload replies, then a deterministic token stream (or one JSON object for stream:false) whose
// final chunk carries done_reason and the six metrics.

import { decodeKeepAlive } from './duration.js';
import { applySingleReplyFault, NdjsonStream, type Exchange } from './exchange.js';
import { isValidName, parseModelName, qualifiedName } from './models.js';
import {
  CHAT_FIELDS,
  GENERATE_FIELDS,
  decodeRequest,
  parseOptions,
  type ChatBody,
  type GenerateBody,
  type ModelOptions,
} from './requests.js';
import { defaultReply, defaultThinking, jsonReply, planOutput, tokenIds, tokenize, type Plan } from './script.js';
import type { Installed } from './state.js';
import { nowNs, rfc3339Nano, sendError, sendJson, sleep } from './wire.js';

type Kind = 'generate' | 'chat';

interface Job {
  kind: Kind;
  ex: Exchange;
  modelSent: string;
  installed: Installed;
  stream: boolean;
  keepAliveMs?: number;
  opts: ModelOptions;
  /** Prompt tokens: generate's system + prompt, or every chat message. */
  promptTokens: string[];
  /** Text the reply is derived from: the prompt, or the last user message. */
  promptText: string;
  think: boolean;
  format: unknown;
  raw: boolean;
}

const truthyThink = (t: boolean | string | null | undefined) => t !== undefined && t !== null && t !== false;

export async function generate(ex: Exchange): Promise<void> {
  const body = decodeRequest<GenerateBody>(ex, 'GenerateRequest', GENERATE_FIELDS);
  if (!body) return;
  const { res, state } = ex;
  if (!topLogprobsOk(ex, body.top_logprobs)) return;
  const modelSent = body.model ?? '';
  const notFound = `model '${modelSent}' not found`;
  if (!isValidName(parseModelName(modelSent))) return sendError(res, 404, notFound);
  const installed = state.find(modelSent);
  if (!installed) return sendError(res, 404, notFound);
  const keepAliveMs = keepAliveOf(body.keep_alive);
  const prompt = body.prompt ?? '';

  if (prompt === '' && keepAliveMs === 0) return unloadReply(ex, 'generate', modelSent, installed);
  if (body.raw && (body.template || body.system || (body.context && body.context.length > 0))) {
    return sendError(res, 400, 'raw mode does not support template, system, or context');
  }
  const wanted = ['completion'];
  if (body.suffix) wanted.push('insert');
  if ((body.images?.length ?? 0) > 0) wanted.push('vision');
  const think = thinkingFor(ex, installed, modelSent, body.think);
  if (think === undefined) return;
  if (!capabilitiesOk(ex, installed, modelSent, wanted, 'generate')) return;
  const opts = parseOptions(body.options);
  if ('error' in opts) return sendError(res, 500, opts.error);

  const job: Job = {
    kind: 'generate', ex, modelSent, installed, keepAliveMs, opts, think,
    stream: body.stream !== false,
    promptTokens: [...tokenize(body.system ?? ''), ...tokenize(prompt)],
    promptText: prompt,
    format: body.format,
    raw: body.raw === true,
  };
  if (prompt === '') return loadReply(job);
  return run(job);
}

export async function chat(ex: Exchange): Promise<void> {
  const body = decodeRequest<ChatBody>(ex, 'ChatRequest', CHAT_FIELDS);
  if (!body) return;
  const { res, state } = ex;
  if (!topLogprobsOk(ex, body.top_logprobs)) return;
  const modelSent = body.model ?? '';
  if (!isValidName(parseModelName(modelSent))) return sendError(res, 400, 'model is required');
  const installed = state.find(modelSent);
  if (!installed) return sendError(res, 404, `model '${modelSent}' not found`);
  const keepAliveMs = keepAliveOf(body.keep_alive);
  const messages = body.messages ?? [];

  if (messages.length === 0 && keepAliveMs === 0) return unloadReply(ex, 'chat', modelSent, installed);
  const wanted = ['completion'];
  if ((body.tools?.length ?? 0) > 0) wanted.push('tools');
  if (messages.some((m) => (m?.images?.length ?? 0) > 0)) wanted.push('vision');
  const think = thinkingFor(ex, installed, modelSent, body.think);
  if (think === undefined) return;
  if (!capabilitiesOk(ex, installed, modelSent, wanted, 'chat')) return;
  const opts = parseOptions(body.options);
  if ('error' in opts) return sendError(res, 500, opts.error);

  const lastUser = [...messages].reverse().find((m) => m?.role?.toLowerCase() === 'user') ?? messages[messages.length - 1];
  const job: Job = {
    kind: 'chat', ex, modelSent, installed, keepAliveMs, opts, think,
    stream: body.stream !== false,
    promptTokens: messages.flatMap((m) => tokenize(m?.content ?? '')),
    promptText: lastUser?.content ?? '',
    format: body.format,
    raw: false,
  };
  if (messages.length === 0) return loadReply(job);
  return run(job);
}

function topLogprobsOk(ex: Exchange, top: number | undefined): boolean {
  if (top === undefined || top === null || (top >= 0 && top <= 20)) return true;
  sendError(ex.res, 400, 'top_logprobs must be between 0 and 20');
  return false;
}

/** keep_alive was validated while decoding; undefined = not given (server default applies). */
function keepAliveOf(v: unknown): number | undefined {
  const ka = decodeKeepAlive(v);
  return ka?.ok ? ka.ms : undefined;
}

/** Thinking models think unless told not to (v0.12.6+); asking a non-thinking model to think is a 400. */
function thinkingFor(ex: Exchange, inst: Installed, modelSent: string, think: GenerateBody['think']): boolean | undefined {
  if (inst.model.capabilities.includes('thinking')) return think === undefined || think === null || truthyThink(think);
  if (truthyThink(think)) {
    sendError(ex.res, 400, `${JSON.stringify(modelSent)} does not support thinking`);
    return undefined;
  }
  return false;
}

/** Model.CheckCapabilities as reported by scheduleRunner / the handlers. */
function capabilitiesOk(ex: Exchange, inst: Installed, modelSent: string, wanted: string[], kind: Kind): boolean {
  const missing = wanted.filter((c) => !inst.model.capabilities.includes(c));
  if (missing.length === 0) return true;
  if (missing.includes('completion')) {
    sendError(ex.res, 400, `${JSON.stringify(modelSent)} does not support ${kind}`);
  } else {
    // Go: fmt.Errorf("%s %w", model.Name, fmt.Errorf("%w %w", errCapabilities, errors.Join(...)))
    const fq = qualifiedName(parseModelName(inst.model.name));
    sendError(ex.res, 400, `${fq} does not support ${missing.join('\n')}`);
  }
  return false;
}

function emptyMessage(kind: Kind): Record<string, unknown> {
  return kind === 'generate' ? { response: '' } : { message: { role: 'assistant', content: '' } };
}

/** Empty prompt + keep_alive 0: answered before scheduling, so 200 even when the model was not loaded. */
function unloadReply(ex: Exchange, kind: Kind, modelSent: string, inst: Installed): void {
  ex.state.runtime.unload(inst.model.name);
  sendJson(ex.res, 200, { model: modelSent, created_at: rfc3339Nano(), ...emptyMessage(kind), done: true, done_reason: 'unload' });
}

/** Empty prompt / no messages: load the model and answer one plain JSON object, even when streaming. */
async function loadReply(job: Job): Promise<void> {
  const { ex } = job;
  const { runtime } = ex.state;
  runtime.acquire(job.installed.model, job.keepAliveMs, job.opts.numCtx);
  try {
    if (await applySingleReplyFault(ex, ex.state.tokenDelayMs)) return;
    sendJson(ex.res, 200, { model: job.modelSent, created_at: rfc3339Nano(), ...emptyMessage(job.kind), done: true, done_reason: 'load' });
  } finally {
    runtime.release(job.installed.model);
  }
}

function planFor(job: Job): Plan {
  const model = job.installed.model;
  let reply = model.reply ?? defaultReply(model.name, job.promptText);
  if (job.format !== undefined && job.format !== null && job.format !== '') reply = jsonReply(job.format, reply);
  const thinking = job.think ? tokenize(defaultThinking(job.promptText)) : [];
  return planOutput(thinking, tokenize(reply), job.opts.numPredict, job.opts.stop);
}

/** Plausible, internally consistent durations (ns): total >= load + prompt eval + eval >= wall time. */
function metrics(job: Job, plan: Plan, cold: boolean, genStartNs: bigint): Record<string, number> {
  const started = BigInt(job.ex.record.receivedAt) * 1_000_000n;
  const now = nowNs();
  // A cold load scales with model size (~8 GB/s); a warm one only costs scheduling.
  const load = cold ? Math.max(150_000_000, Math.round(job.installed.model.size / 8)) : 18_000_000;
  const promptCount = Math.max(1, job.promptTokens.length);
  const promptEval = promptCount * 450_000; // ~2200 tokens/s
  const evalDuration = Math.max(Number(now - genStartNs), plan.evalCount * 12_500_000); // <= 80 tokens/s
  const total = Math.max(Number(now - started), load + promptEval + evalDuration + 1_000_000);
  return {
    total_duration: total,
    load_duration: load,
    prompt_eval_count: promptCount,
    prompt_eval_duration: promptEval,
    eval_count: Math.max(1, plan.evalCount),
    eval_duration: evalDuration,
  };
}

async function run(job: Job): Promise<void> {
  const { ex } = job;
  const { runtime } = ex.state;
  const model = job.installed.model;
  const { cold } = runtime.acquire(model, job.keepAliveMs, job.opts.numCtx);
  try {
    const plan = planFor(job);
    const genStart = nowNs();
    const content = plan.pieces.filter((p) => p.kind === 'content').map((p) => p.text);
    const thinking = plan.pieces.filter((p) => p.kind === 'thinking').map((p) => p.text);
    const context = job.kind === 'generate' && !job.raw ? { context: tokenIds([...job.promptTokens, ...content]) } : {};
    const head = () => ({ model: job.modelSent, created_at: rfc3339Nano() });

    if (!job.stream) {
      if (await applySingleReplyFault(ex, ex.state.tokenDelayMs)) return;
      // The whole reply still takes the tokens' worth of time, so timeouts are testable without streaming.
      if (!(await sleep(ex.state.tokenDelayMs * plan.pieces.length, ex.signal))) return;
      const text = content.join('');
      const thought = thinking.length > 0 ? { thinking: thinking.join('') } : {};
      const reply =
        job.kind === 'generate'
          ? { ...head(), response: text, ...thought, done: true, done_reason: plan.doneReason, ...context }
          : { ...head(), message: { role: 'assistant', content: text, ...thought }, done: true, done_reason: plan.doneReason };
      sendJson(ex.res, 200, { ...reply, ...metrics(job, plan, cold, genStart) });
      return;
    }

    const stream = new NdjsonStream(ex);
    for (const piece of plan.pieces) {
      if (!(await sleep(ex.state.tokenDelayMs, ex.signal))) return;
      const text = piece.kind === 'content' ? piece.text : '';
      const thought = piece.kind === 'thinking' ? { thinking: piece.text } : {};
      const chunk =
        job.kind === 'generate'
          ? { ...head(), response: text, ...thought, done: false }
          : { ...head(), message: { role: 'assistant', content: text, ...thought }, done: false };
      if (!(await stream.unit(chunk))) return;
    }
    const final =
      job.kind === 'generate'
        ? { ...head(), response: '', done: true, done_reason: plan.doneReason, ...context }
        : { ...head(), message: { role: 'assistant', content: '' }, done: true, done_reason: plan.doneReason };
    await stream.finish({ ...final, ...metrics(job, plan, cold, genStart) });
  } finally {
    runtime.release(model);
  }
}
