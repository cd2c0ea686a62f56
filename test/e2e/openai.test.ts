// The OpenAI-compatible endpoints driven by the official `openai` client, against the gateway and
// the emulator: what the client receives must match what Ollama produced and the usage log holds.
import { spawn } from 'node:child_process';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';
import { pacedLikeAModel } from '../helpers/paced.js';
import { waitFor } from '../helpers/models.js';

let gw: TestGateway;
let openai: OpenAI;

beforeAll(async () => {
  // An Ollama with OLLAMA_NUM_PARALLEL=4, and the gateway told so: a key's two streams run at once.
  gw = await startGateway({ env: { MAX_CONCURRENT_STREAMS_PER_KEY: '2', OLLAMA_NUM_PARALLEL: '4' }, emulator: { numParallel: 4 } });
  openai = new OpenAI({ apiKey: gw.userSecret, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 10_000 });
});
afterAll(async () => {
  await gw?.stop();
});

const rows = () => gw.orm.getRepository(Generation);
const credits = async (secretOwner: string) => (await gw.orm.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(secretOwner) })).credits;

/** What the emulator answers to the same chat, asked directly with the ollama client. */
async function direct(messages: Array<{ role: string; content: string }>, options: Record<string, unknown> = {}) {
  const ollama = new Ollama({ host: gw.emulator.url });
  const r = await ollama.chat({ model: 'llama3.2', messages, options, stream: false });
  return { content: r.message.content, promptTokens: r.prompt_eval_count, completionTokens: r.eval_count, doneReason: r.done_reason };
}

/** The last /api/chat request the emulator received. */
const lastChatRequest = () => [...gw.emulator.requests].reverse().find((r) => r.path === '/api/chat')!;

describe('POST /v1/chat/completions', () => {
  it('answers a whole chat.completion with usage, mapped options and one usage-log row', async () => {
    const messages = [
      { role: 'developer' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Why is the sea salty?' },
    ];
    const before = await credits(gw.userSecret);
    const completion = await openai.chat.completions.create({ model: 'llama3.2', messages, temperature: 0.2, top_p: 0.9, seed: 7, max_tokens: 5, stop: ['\n\n'] });
    const upstream = lastChatRequest().body as { messages: Array<{ role: string }>; options: Record<string, unknown> };

    const expected = await direct([{ role: 'system', content: 'You are terse.' }, messages[1]], { num_predict: 5 });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('llama3.2');
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0].message).toMatchObject({ role: 'assistant', content: expected.content });
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.usage).toEqual({ prompt_tokens: expected.promptTokens, completion_tokens: 5, total_tokens: expected.promptTokens + 5 });

    expect(upstream.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(upstream.options).toMatchObject({ temperature: 0.2, top_p: 0.9, seed: 7, num_predict: 5, stop: ['\n\n'] });

    const row = await rows().findOneByOrFail({ id: completion.id.replace(/^chatcmpl-/, '') });
    expect(row).toMatchObject({ kind: 'chat', streamed: false, status: 'COMPLETE', model: 'llama3.2', response: expected.content, completionTokens: 5, doneReason: 'length' });
    expect(row.creditsCharged).toBeGreaterThan(0);
    expect(await credits(gw.userSecret)).toBe(before - row.creditsCharged);
  });

  it('streams chat.completion.chunk events whose deltas are what the emulator produced, then usage and [DONE]', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story about a lighthouse.' }];
    const expected = await direct(messages);
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    await pacedLikeAModel(gw, async () => {
      const stream = await openai.chat.completions.create({ model: 'llama3.2', messages, stream: true, stream_options: { include_usage: true } });
      for await (const chunk of stream) chunks.push(chunk);
    });

    expect(chunks.length).toBeGreaterThan(4);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
    expect(content).toBe(expected.content);
    const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean);
    expect(finishes).toEqual(['stop']);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: expected.promptTokens, completion_tokens: expected.completionTokens, total_tokens: expected.promptTokens! + expected.completionTokens! });

    const row = await rows().findOneByOrFail({ id: last.id.replace(/^chatcmpl-/, '') });
    expect(row).toMatchObject({ kind: 'chat', streamed: true, status: 'COMPLETE', response: content, completionTokens: expected.completionTokens });
  });

  it('takes image parts: a data URL reaches a vision model as base64; http URLs go through the SSRF guard', async () => {
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(24, 1)]);
    const dataUrl = `data:image/png;base64,${png.toString('base64')}`;
    const withImage = (url: string) => [
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'What is in this picture?' }, { type: 'image_url' as const, image_url: { url } }] },
    ];
    const completion = await openai.chat.completions.create({ model: 'llava:7b', messages: withImage(dataUrl) });
    expect(completion.choices[0].message.content).toBeTruthy();
    const upstream = lastChatRequest().body as { model: string; messages: Array<{ content: string; images?: string[] }> };
    expect(upstream.model).toBe('llava:7b');
    expect(upstream.messages[0]).toMatchObject({ content: 'What is in this picture?', images: [png.toString('base64')] });

    const blind = await openai.chat.completions.create({ model: 'llama3.2', messages: withImage(dataUrl) }).catch((e: unknown) => e);
    expect(blind).toBeInstanceOf(OpenAI.BadRequestError);
    expect((blind as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('capability_missing');

    const requestsBefore = gw.emulator.requests.length;
    const ssrf = await openai.chat.completions.create({ model: 'llava:7b', messages: withImage(`${gw.emulator.url}/api/tags`) }).catch((e: unknown) => e);
    expect(ssrf).toBeInstanceOf(OpenAI.BadRequestError);
    expect((ssrf as Error).message).toMatch(/not allowed/);
    expect((ssrf as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages[0].content[1].image_url');
    expect(gw.emulator.requests.length).toBe(requestsBefore); // nothing reached the loopback address
  });

  it('aborting mid-stream closes the request to Ollama and stores the partial answer as CANCELLED', async () => {
    // Three tokens, then Ollama goes silent: the stream lasts until the client leaves.
    gw.emulator.addFault({ fault: { kind: 'stall', afterTokens: 3 }, path: '/api/chat', times: 1 });
    {
      const controller = new AbortController();
      const stream = await openai.chat.completions.create(
        { model: 'llama3.2', messages: [{ role: 'user', content: 'A very long answer, please.' }], stream: true },
        { signal: controller.signal },
      );
      let id = '';
      let received = '';
      const upstream = lastChatRequest();
      expect(upstream.outcome).toBe('open');
      // The SDK ends the iteration quietly when its signal aborts (after chunks it already parsed).
      for await (const chunk of stream) {
        id = chunk.id;
        received += chunk.choices[0]?.delta.content ?? '';
        if (chunk.choices[0]?.delta.content) controller.abort();
      }
      const abortedAt = Date.now();
      expect(controller.signal.aborted).toBe(true);
      expect(received.length).toBeGreaterThan(0);
      const closed = await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
      expect(closed.endedAt! - abortedAt).toBeLessThan(1000);
      const row = await waitFor(async () => {
        const r = await rows().findOneBy({ id: id.replace(/^chatcmpl-/, '') });
        return r && r.status !== 'STREAMING' ? r : undefined;
      });
      expect(row.status).toBe('CANCELLED');
      expect(row.response.startsWith(received)).toBe(true);
    }
  });
});

describe('errors in OpenAI shape, raised as the SDK classes', () => {
  it('a bad key is an AuthenticationError (401 invalid_api_key), before anything reaches the model', async () => {
    const requestsBefore = gw.emulator.requests.length;
    const bad = new OpenAI({ apiKey: 'llmgw_not-a-real-key', baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const e = await bad.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((e as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    expect((e as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
    expect(await bad.models.list().catch((err: unknown) => err)).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(gw.emulator.requests.length).toBe(requestsBefore);
  });

  it('an unknown model is a NotFoundError, streamed or not, and is logged as an error', async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const whole = await openai.chat.completions.create({ model: 'no-such-model', messages }).catch((e: unknown) => e);
    expect(whole).toBeInstanceOf(OpenAI.NotFoundError);
    expect((whole as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const streamed = await openai.chat.completions.create({ model: 'no-such-model', messages, stream: true }).catch((e: unknown) => e);
    expect(streamed).toBeInstanceOf(OpenAI.NotFoundError);
    const logged = await rows().find({ where: { model: 'no-such-model' } });
    expect(logged.map((r) => [r.status, r.errorCode])).toEqual([
      ['ERROR', 'MODEL_NOT_FOUND'],
      ['ERROR', 'MODEL_NOT_FOUND'],
    ]);
    expect(await openai.models.retrieve('no-such-model').catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
    // Counted in /metrics under the OpenAI API, by code.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^llm_gateway_errors_total\{code="MODEL_NOT_FOUND",api="openai"\} 3$/m);
  });

  it('bad input is a BadRequestError naming the parameter; unsupported features are refused', async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const hot = await openai.chat.completions.create({ model: 'llama3.2', messages, temperature: 5 }).catch((e: unknown) => e);
    expect(hot).toBeInstanceOf(OpenAI.BadRequestError);
    expect((hot as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    // The deprecated `functions` form is refused (tools are supported, see openai-features.test.ts).
    const functions = await openai.chat.completions
      .create({ model: 'llama3.2', messages, functions: [{ name: 'f', parameters: {} }] })
      .catch((e: unknown) => e);
    expect(functions).toBeInstanceOf(OpenAI.BadRequestError);
    expect((functions as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('functions');
    const empty = await openai.chat.completions.create({ model: 'llama3.2', messages: [] }).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(OpenAI.BadRequestError);

    const raw = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${gw.userSecret}` }, body: '{not json' });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({ error: { message: 'The request body is not valid JSON.', type: 'invalid_request_error', code: 'invalid_request', param: null } });
  });

  it('no credits is 402 insufficient_quota; over the concurrency limit is a RateLimitError with retry-after', async () => {
    const { secret } = await gw.app.services.keys.create({ name: 'broke', role: 'USER', credits: 0 });
    const broke = new OpenAI({ apiKey: secret, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const poor = await broke.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(poor).toBeInstanceOf(OpenAI.APIError);
    expect((poor as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    expect((poor as InstanceType<typeof OpenAI.APIError>).code).toBe('insufficient_quota');

    // MAX_CONCURRENT_STREAMS_PER_KEY=2: a third concurrent stream is refused (the two stall after a token).
    gw.emulator.addFault({ fault: { kind: 'stall', afterTokens: 1 }, path: '/api/chat', times: 2 });
    const controller = new AbortController();
    try {
      const running = await Promise.all(
        [1, 2].map(() => openai.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'Slow.' }], stream: true }, { signal: controller.signal })),
      );
      const third = await openai.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'Third.' }] }).catch((e: unknown) => e);
      expect(third).toBeInstanceOf(OpenAI.RateLimitError);
      expect((third as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('rate_limit_exceeded');
      expect(Number((third as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after'))).toBeGreaterThan(0);
      expect(running).toHaveLength(2);
    } finally {
      controller.abort();
    }
  });
});

describe('GET /v1/models', () => {
  it('lists installed models and catalog aliases, and retrieves one by alias', async () => {
    await gw.app.services.models.importCsv('llama3.2,fast,Small and quick\n');
    const ids: string[] = [];
    for await (const m of openai.models.list()) {
      expect(m.object).toBe('model');
      expect(m.created).toBeGreaterThan(0);
      ids.push(m.id);
    }
    const installed = (await new Ollama({ host: gw.emulator.url }).list()).models.map((m) => m.name);
    expect(ids.sort()).toEqual([...installed, 'fast'].sort());
    expect(await openai.models.retrieve('fast')).toMatchObject({ id: 'fast', object: 'model' });

    // An alias works as a model name for chat too.
    const completion = await openai.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 3 });
    expect(completion.usage?.completion_tokens).toBe(3);
    expect(lastChatRequest().body).toMatchObject({ model: 'llama3.2:latest' });
  });
});

describe('examples/openai.ts', () => {
  it('runs against the gateway as the README says and prints what the gateway stored', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/openai.ts'], {
      env: { ...process.env, GATEWAY_URL: `${gw.url}/graphql`, GATEWAY_KEY: gw.userSecret },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(timer);
    expect(code, stderr).toBe(0);
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '))!;
    const result = JSON.parse(line.slice('RESULT '.length)) as { models: string[]; streamed: string; streamUsage: { completion_tokens: number }; text: string };
    expect(result.models).toContain('llama3.2:latest');
    const [streamedRow] = await rows().find({ where: { prompt: 'Why is the sky blue?', streamed: true }, order: { createdAt: 'DESC' }, take: 1 });
    expect(streamedRow.response).toBe(result.streamed);
    expect(result.streamUsage.completion_tokens).toBe(streamedRow.completionTokens);
    const [wholeRow] = await rows().find({ where: { prompt: 'And at sunset?' }, order: { createdAt: 'DESC' }, take: 1 });
    expect(wholeRow.response).toBe(result.text);
  }, 60_000);
});
