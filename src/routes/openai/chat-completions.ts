import type { ServerResponse } from 'node:http';
import type { Services } from '../../services/container.js';
import type { DoneEvent, GenerationEvent, GenerationResult } from '../../services/generation/types.js';
import type { Principal } from '../../services/access/keys.js';
import { parseChatCompletionRequest } from './chat-request.js';
import { openAIToolCall } from './tool-calls.js';
import { type RouteContext, writeWithBackpressure as write } from '../api-request.js';

/** One authenticated `/v1` request (the shared REST request scope). */
export type OpenAIRequestContext = RouteContext;

const finishReason = (doneReason: string, toolCalls: boolean) => (toolCalls ? 'tool_calls' : doneReason === 'length' ? 'length' : 'stop');

const usageOf = (done: DoneEvent) => ({
  prompt_tokens: done.usage.promptTokens,
  completion_tokens: done.usage.completionTokens,
  total_tokens: done.usage.totalTokens,
});

/** `POST /v1/chat/completions`, streamed (SSE chunks, then `data: [DONE]`) or whole. */
export async function chatCompletions(ctx: OpenAIRequestContext, body: unknown): Promise<void> {
  const { services, principal, requestId, signal, res, clientIp } = ctx;
  const { config } = services;
  const req = parseChatCompletionRequest(body, {
    maxImages: config.maxImagesPerMessage,
    maxImagesPerRequest: config.limits.maxImagesPerRequest,
    maxBytes: config.maxImageBytes,
    timeoutMs: config.imageFetchTimeoutMs,
    allowPrivate: config.imageUrlAllowPrivate,
  });
  ctx.facts.model = req.model;
  ctx.facts.stream = req.stream;
  if (req.imageCount) {
    // Limits and credits before any image is decoded or downloaded.
    const lastUser = [...(req.input.messages ?? [])].reverse().find((m) => m.role === 'user');
    await services.generation.precheck(principal, { kind: 'chat', model: req.model, prompt: lastUser?.content ?? '' }, { requestId, signal, clientIp, streamed: req.stream });
    await req.loadImages();
  }
  const created = Math.floor(Date.now() / 1000);

  if (!req.stream) {
    const result = await services.chat.complete(principal, req.input, { requestId, signal, clientIp });
    ctx.facts.generationId = result.generationId;
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-generation-id': result.generationId });
    res.end(
      JSON.stringify({
        id: `chatcmpl-${result.generationId}`,
        object: 'chat.completion',
        created,
        model: req.model,
        system_fingerprint: null,
        choices: [{ index: 0, message: answerMessage(result), logprobs: null, finish_reason: finishReason(result.doneReason, result.toolCalls.length > 0) }],
        usage: usageOf(result),
      }),
    );
    return;
  }

  const events = services.chat.stream(principal, req.input, { requestId, signal, clientIp, streamed: true });
  try {
    // Hold the response until the first token (or the end): errors before it, such as an unknown
    // model, credits or rate limits, still get their HTTP status instead of a 200 stream.
    let first: GenerationEvent | undefined;
    for (;;) {
      const r = await events.next();
      if (r.done) return; // the client left before the first token
      if (r.value.type !== 'PHASE') {
        first = r.value;
        break;
      }
    }
    const id = `chatcmpl-${first.generationId}`;
    ctx.facts.generationId = first.generationId;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: req.model, system_fingerprint: null, choices, ...extra })}\n\n`;
    const delta = (d: Record<string, unknown>, finish: string | null = null) => chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-generation-id': first.generationId,
    });
    res.flushHeaders();
    const slowMs = config.limits.slowClientTimeoutMs;
    const send = (text: string) => write(res, text, slowMs);
    await send(delta({ role: 'assistant', content: '' }));
    let event: GenerationEvent | undefined = first;
    let calls = 0;
    try {
      while (event) {
        if (event.type === 'TOKEN') {
          // Reasoning streams first, in the field DeepSeek, vLLM and LiteLLM use for it.
          if (event.thinking) await send(delta({ reasoning_content: event.thinking }));
          if (event.delta) await send(delta({ content: event.delta }));
          if (event.toolCalls?.length) await send(delta({ tool_calls: event.toolCalls.map((c) => openAIToolCall(c, calls++)) }));
        } else if (event.type === 'DONE') {
          await send(delta({}, finishReason(event.doneReason, calls > 0)));
          if (req.includeUsage) await send(chunk([], { usage: usageOf(event) }));
          await send('data: [DONE]\n\n');
          ctx.facts.outcome = 'ok';
          break;
        }
        const r = await events.next();
        event = r.done ? undefined : r.value;
      }
    } catch (e) {
      // Headers are out: report the error the way OpenAI does mid-stream, then end.
      ctx.fail(e);
    }
    res.end();
  } finally {
    await events.return?.();
  }
}

/** The answer as OpenAI's `message`: reasoning apart, tool calls with string arguments, no content beside calls. */
function answerMessage(result: GenerationResult) {
  const toolCalls = result.toolCalls.map((c) => openAIToolCall(c));
  return {
    role: 'assistant',
    content: toolCalls.length && !result.text ? null : result.text,
    refusal: null,
    ...(result.thinking ? { reasoning_content: result.thinking } : {}),
    ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
  };
}

