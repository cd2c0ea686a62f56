// POST /api/generate and POST /api/chat: validation in the same order as Ollama's handlers
// (server/routes.go GenerateHandler / ChatHandler), load / unload replies, scheduling (sched.ts: no
// headers until the request has its runner and slot), then a deterministic token stream (or one
// JSON object for stream:false) whose final chunk carries done_reason, the metrics and whatever
// text the model's parser held back.

import { decodeKeepAlive } from './duration.js';
import { applySingleReplyFault, NdjsonStream, type Exchange } from './exchange.js';
import { BUSY_MESSAGE } from './faults.js';
import { INVALID_MODEL_NAME, modelRefError, parseModelName, qualifiedName } from './models.js';
import {
  CHAT_FIELDS,
  GENERATE_FIELDS,
  decodeRequest,
  parseOptions,
  type ChatBody,
  type ChatMessage,
  type GenerateBody,
  type ModelOptions,
} from './requests.js';
import type { Lease } from './sched.js';
import { defaultReply, defaultThinking, fillerTokens, jsonReply, planOutput, tokenIds, tokenize, type Plan } from './script.js';
import type { Installed } from './state.js';
import { toolAnswer, toolCallFor, type ToolCall } from './tools.js';
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
  /** `shift: false`: the runner stops at the context window instead of shifting it. */
  noShift: boolean;
  tools?: unknown[] | null;
  messages?: ChatMessage[];
}

/** llm/llama_server.go openEndedGenerationContextMultiplier: num_predict -1 is bounded to 10 context windows. */
const OPEN_ENDED_CONTEXTS = 10;

const truthyThink = (t: boolean | string | null | undefined) => t !== undefined && t !== null && t !== false;

/** parseAndValidateModelRef + writeModelRefParseError; true when an error was sent. */
function badModelRef(ex: Exchange, modelSent: string, kind: Kind): boolean {
  const err = modelRefError(modelSent);
  if (!err) return false;
  if (err === 'invalid') sendError(ex.res, 400, INVALID_MODEL_NAME);
  else if (kind === 'generate') sendError(ex.res, 404, `model '${modelSent}' not found`);
  else sendError(ex.res, 400, 'model is required');
  return true;
}

export async function generate(ex: Exchange): Promise<void> {
  const body = decodeRequest<GenerateBody>(ex, 'GenerateRequest', GENERATE_FIELDS);
  if (!body) return;
  const { res, state } = ex;
  if (!topLogprobsOk(ex, body.top_logprobs)) return;
  const modelSent = body.model ?? '';
  if (badModelRef(ex, modelSent, 'generate')) return;
  const installed = state.find(modelSent.trim());
  if (!installed) return sendError(res, 404, `model '${modelSent}' not found`);
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
    noShift: body.shift === false,
  };
  return serve(job, prompt === '');
}

export async function chat(ex: Exchange): Promise<void> {
  const body = decodeRequest<ChatBody>(ex, 'ChatRequest', CHAT_FIELDS);
  if (!body) return;
  const { res, state } = ex;
  if (!topLogprobsOk(ex, body.top_logprobs)) return;
  const modelSent = body.model ?? '';
  if (badModelRef(ex, modelSent, 'chat')) return;
  const installed = state.find(modelSent.trim());
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
    noShift: body.shift === false,
    tools: body.tools,
    messages,
  };
  return serve(job, messages.length === 0);
}

function topLogprobsOk(ex: Exchange, top: number | undefined): boolean {
  if (top === undefined || top === null || (top >= 0 && top <= 20)) return true;
  sendError(ex.res, 400, 'top_logprobs must be between 0 and 20');
  return false;
}

/** keep_alive was validated while decoding; undefined = not given (the loaded model's value stays). */
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
  ex.state.sched.unload(inst.model.name);
  sendJson(ex.res, 200, { model: modelSent, created_at: rfc3339Nano(), ...emptyMessage(kind), done: true, done_reason: 'unload' });
}

/**
 * scheduleRunner, then either the load reply or a completion. A full pending queue is 503; a client
 * that leaves while queued is dropped with nothing written.
 */
async function serve(job: Job, loadOnly: boolean): Promise<void> {
  const { ex } = job;
  const { sched } = ex.state;
  const lease = await sched.schedule(job.installed.model, job.keepAliveMs, job.opts.numCtx, ex.signal);
  if (lease === 'aborted') return;
  if (lease === 'busy') return sendError(ex.res, 503, BUSY_MESSAGE);
  try {
    if (loadOnly) return await loadReply(job);
    // The runner's NUM_PARALLEL semaphore (llm/llama_server.go Completion: s.sem.Acquire).
    if (!(await sched.acquireSlot(lease.runner, ex.signal))) return;
    try {
      ex.scheduled();
      await run(job, lease);
    } finally {
      sched.releaseSlot(lease.runner);
    }
  } finally {
    sched.release(lease.runner);
  }
}

/** Empty prompt / no messages: one plain JSON object, even when streaming. */
async function loadReply(job: Job): Promise<void> {
  const { ex } = job;
  ex.scheduled();
  if (await applySingleReplyFault(ex, ex.state.tokenDelayMs)) return;
  sendJson(ex.res, 200, { model: job.modelSent, created_at: rfc3339Nano(), ...emptyMessage(job.kind), done: true, done_reason: 'load' });
}

interface Reply extends Plan {
  toolCall?: ToolCall;
}

function planFor(job: Job, contextLength: number): Reply {
  const model = job.installed.model;
  const thinking = job.think ? tokenize(defaultThinking(job.promptText)) : [];
  // boundedNumPredict; without context shift the window itself is the end.
  const window = job.noShift ? Math.max(1, contextLength - job.promptTokens.length) : OPEN_ENDED_CONTEXTS * contextLength;
  const numPredict = job.opts.numPredict;
  const limit = numPredict !== undefined && numPredict > 0 ? Math.min(numPredict, window) : window;
  const toolCall = job.kind === 'chat' ? toolCallFor(job.tools, job.messages ?? [], job.promptText) : undefined;
  if (toolCall) {
    // The call's JSON is generated (and counted) but the tool parser turns it into tool_calls.
    const text = JSON.stringify({ name: toolCall.function.name, arguments: toolCall.function.arguments });
    return { ...planOutput(thinking, tokenize(text), limit, []), toolCall };
  }
  let content: string[];
  const afterTool = job.kind === 'chat' ? toolAnswer(job.messages ?? []) : undefined;
  if (model.reply !== undefined || afterTool !== undefined) content = tokenize(afterTool ?? model.reply ?? '');
  else if (model.endless) content = fillerTokens(limit + 1 - thinking.length);
  else if (model.replyTokens !== undefined) content = fillerTokens(model.replyTokens);
  else content = tokenize(defaultReply(model.name, job.promptText));
  if (job.format !== undefined && job.format !== null && job.format !== '') content = tokenize(jsonReply(job.format, content.join('')));
  return planOutput(thinking, content, limit, job.opts.stop);
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

async function run(job: Job, lease: Lease): Promise<void> {
  const { ex } = job;
  const plan = planFor(job, lease.runner.contextLength);
  const genStart = nowNs();
  const content = plan.pieces.filter((p) => p.kind === 'content').map((p) => p.text);
  const thinking = plan.pieces.filter((p) => p.kind === 'thinking').map((p) => p.text);
  const calls = plan.toolCall ? { tool_calls: [plan.toolCall] } : {};
  const spoken = plan.toolCall ? [] : content;
  const context = job.kind === 'generate' && !job.raw ? { context: tokenIds([...job.promptTokens, ...spoken]) } : {};
  const head = () => ({ model: job.modelSent, created_at: rfc3339Nano() });
  const chunk = (text: string, extra: Record<string, unknown>, done: boolean) =>
    job.kind === 'generate'
      ? { ...head(), response: text, ...extra, done }
      : { ...head(), message: { role: 'assistant', content: text, ...extra }, done };

  if (!job.stream) {
    if (await applySingleReplyFault(ex, ex.state.tokenDelayMs)) return;
    // The whole reply still takes the tokens' worth of time, so timeouts are testable without streaming.
    if (!(await sleep(ex.state.tokenDelayMs * plan.pieces.length, ex.signal))) return;
    const thought = thinking.length > 0 ? { thinking: thinking.join('') } : {};
    const final = chunk(spoken.join(''), { ...thought, ...calls }, true);
    sendJson(ex.res, 200, { ...final, done_reason: plan.doneReason, ...context, ...metrics(job, plan, lease.cold, genStart) });
    return;
  }

  // A built-in parser holds the last `flushOnDone` content tokens back and flushes them with done.
  const parser = job.installed.model.flushOnDone ?? 0;
  const heldFrom = spoken.length - Math.min(Math.max(0, parser), spoken.length);
  let held = '';
  let said = 0;
  const stream = new NdjsonStream(ex);
  for (const piece of plan.pieces) {
    if (!(await sleep(ex.state.tokenDelayMs, ex.signal))) return;
    if (piece.kind === 'thinking') {
      if (!(await stream.unit(chunk('', { thinking: piece.text }, false)))) return;
      continue;
    }
    if (plan.toolCall) continue; // the tool parser buffers the call's text
    if (said++ >= heldFrom) held += piece.text;
    else if (!(await stream.unit(chunk(piece.text, {}, false)))) return;
  }
  // A template tool parser sends the call on a chunk of its own; a built-in parser on the final chunk.
  if (plan.toolCall && parser === 0 && !(await stream.unit(chunk('', calls, false)))) return;
  const finalExtra = plan.toolCall && parser > 0 ? calls : {};
  await stream.finish({ ...chunk(held, finalExtra, true), done_reason: plan.doneReason, ...context, ...metrics(job, plan, lease.cold, genStart) });
}
