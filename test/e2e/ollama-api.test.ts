// Ollama's own API on the gateway's port, driven by the `ollama` npm client as existing Ollama
// applications use it: what the client receives must match what Ollama (the emulator) produced,
// and the gateway's keys, credits, limits and usage log apply.
import { type ChatResponse, Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';
import { pacedLikeAModel } from '../helpers/paced.js';
import { until as waitFor } from '../helpers/wait.js';

let gw: TestGateway;
let user: Ollama;
/** The emulator asked directly: what Ollama itself answers. */
let direct: Ollama;

beforeAll(async () => {
  // An Ollama with OLLAMA_NUM_PARALLEL=4, and the gateway told so: a key's two streams run at once.
  gw = await startGateway({ env: { MAX_CONCURRENT_STREAMS_PER_KEY: '2', OLLAMA_NUM_PARALLEL: '4' }, emulator: { numParallel: 4 } });
  user = new Ollama({ host: gw.url, headers: { Authorization: `Bearer ${gw.userSecret}` } });
  direct = new Ollama({ host: gw.emulator.url });
});
afterAll(async () => {
  await gw?.stop();
});

const rows = () => gw.orm.getRepository(Generation);
const credits = async (secret: string) => (await gw.orm.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(secret) })).credits;
const lastRequest = (path: string) => [...gw.emulator.requests].reverse().find((r) => r.path === path)!;
const METRICS = ['total_duration', 'prompt_eval_count', 'eval_count', 'eval_duration'] as const;

/** What the client threw: ollama-js's ResponseError is not exported, so it is told apart by name and status_code. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status_code?: number; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as { name: string; status_code?: number; message: string },
  );
  if (!e) throw new Error('expected the call to fail');
  return e;
}

describe('POST /api/chat', () => {
  it('answers a whole chat (stream: false) as Ollama does, with mapped options, one usage row and the credits charged', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Why is the sea salty?' },
    ];
    const before = await credits(gw.userSecret);
    const r = await user.chat({ model: 'llama3.2', messages, options: { temperature: 0.2, top_p: 0.9, top_k: 20, seed: 7, num_predict: 5, repeat_penalty: 1.1, stop: ['\n\n'] }, keep_alive: '1h' });
    const upstream = lastRequest('/api/chat').body as { messages: Array<{ role: string }>; options: Record<string, unknown>; keep_alive: unknown };
    const expected = await direct.chat({ model: 'llama3.2', messages, options: { num_predict: 5 } });

    expect(r.model).toBe('llama3.2');
    expect(typeof r.created_at).toBe('string');
    expect(Number.isNaN(new Date(r.created_at).getTime())).toBe(false);
    expect(r.message).toEqual({ role: 'assistant', content: expected.message.content });
    expect(r.done).toBe(true);
    expect(r.done_reason).toBe('length');
    expect(r.eval_count).toBe(5);
    expect(r.prompt_eval_count).toBe(expected.prompt_eval_count);
    for (const m of METRICS) expect(Number.isInteger(r[m]) && r[m] > 0, m).toBe(true);

    expect(upstream.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(upstream.options).toMatchObject({ temperature: 0.2, top_p: 0.9, top_k: 20, seed: 7, num_predict: 5, repeat_penalty: 1.1, stop: ['\n\n'] });
    // The gateway owns keep_alive: the client's "1h" is not what Ollama got.
    expect(upstream.keep_alive).not.toBe('1h');

    const row = await rows().findOneByOrFail({ id: (await lastRowId()) });
    expect(row).toMatchObject({ kind: 'chat', streamed: false, status: 'COMPLETE', model: 'llama3.2', response: expected.message.content, completionTokens: 5, doneReason: 'length' });
    expect(row.creditsCharged).toBeGreaterThan(0);
    expect(await credits(gw.userSecret)).toBe(before - row.creditsCharged);
  });

  it('streams NDJSON chunks whose text is what Ollama produced, metrics only on the final done:true chunk', async () => {
    const messages = [{ role: 'user', content: 'Tell me a story about a lighthouse.' }];
    const expected = await direct.chat({ model: 'llama3.2', messages });
    const before = await credits(gw.userSecret);
    const parts: ChatResponse[] = [];
    await pacedLikeAModel(gw, async () => {
      for await (const part of await user.chat({ model: 'llama3.2', messages, stream: true })) parts.push(part);
    });

    expect(parts.length).toBeGreaterThan(2);
    const last = parts.at(-1)!;
    expect(parts.slice(0, -1).every((p) => p.done === false && p.model === 'llama3.2' && p.message.role === 'assistant')).toBe(true);
    for (const p of parts.slice(0, -1)) for (const m of [...METRICS, 'done_reason']) expect(p).not.toHaveProperty(m);
    expect(parts.map((p) => p.message.content).join('')).toBe(expected.message.content);
    expect(last).toMatchObject({ model: 'llama3.2', done: true, done_reason: 'stop', message: { role: 'assistant', content: '' } });
    expect(last.eval_count).toBe(expected.eval_count);
    expect(last.prompt_eval_count).toBe(expected.prompt_eval_count);
    for (const m of METRICS) expect(Number.isInteger(last[m]) && last[m] > 0, m).toBe(true);

    const row = await rows().findOneByOrFail({ id: await lastRowId() });
    expect(row).toMatchObject({ kind: 'chat', streamed: true, status: 'COMPLETE', response: expected.message.content });
    expect(await credits(gw.userSecret)).toBe(before - row.creditsCharged);
  });

  it('streams by default (no stream field), as application/x-ndjson, one JSON object per line', async () => {
    const res = await fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.userSecret}` },
      body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 4 } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const text = await res.text();
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { done: boolean; done_reason?: string; eval_count?: number });
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.at(-1)).toMatchObject({ done: true, done_reason: 'length', eval_count: 4 });
  });

  it("num_predict -1 (Ollama's no limit) leaves the gateway's DEFAULT_MAX_TOKENS; unknown option keys are ignored", async () => {
    await user.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: -1, mirostat: 2 } as never });
    const sent = (lastRequest('/api/chat').body as { options: Record<string, unknown> }).options;
    expect(sent.num_predict).toBe(gw.app.services.config.defaultMaxTokens);
    expect(sent).not.toHaveProperty('mirostat');
  });

  it('images (base64) reach a vision model with the last user message; a model without vision is 400', async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const r = await user.chat({ model: 'llava:7b', messages: [{ role: 'user', content: 'What is in this picture?', images: [png] }], options: { num_predict: 3 } });
    expect(r.done).toBe(true);
    expect((lastRequest('/api/chat').body as { messages: Array<{ images?: string[] }> }).messages[0].images).toEqual([png]);
    const described = await user.generate({ model: 'llava:7b', prompt: 'Describe it.', images: [png], options: { num_predict: 3 } });
    expect(described.done).toBe(true);
    expect((lastRequest('/api/generate').body as { images?: string[] }).images).toEqual([png]);
    const requestsBefore = gw.emulator.requests.length;
    const blind = await failure(user.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'See?', images: [png] }] }));
    expect(blind.status_code).toBe(400);
    expect(blind.message).toMatch(/vision/);
    const many = Array.from({ length: gw.app.services.config.maxImagesPerMessage + 1 }, () => png);
    const tooMany = await failure(user.chat({ model: 'llava:7b', messages: [{ role: 'user', content: 'See?', images: many }] }));
    expect(tooMany.status_code).toBe(400);
    expect(tooMany.message).toMatch(/At most/);
    const broken = await failure(user.chat({ model: 'llava:7b', messages: [{ role: 'user', content: 'See?', images: ['not base64!'] }] }));
    expect(broken.status_code).toBe(400);
    expect(gw.emulator.requests.slice(requestsBefore).filter((q) => q.path === '/api/chat')).toEqual([]);
  });

  it('a client that aborts (it.abort()) aborts the request to Ollama; the partial answer is stored as CANCELLED', async () => {
    // Two tokens, then Ollama goes silent: the stream lasts until the client leaves.
    gw.emulator.addFault({ fault: { kind: 'stall', afterTokens: 2 }, path: '/api/chat', times: 1 });
    const it = await user.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'A very long answer, please.' }], stream: true });
    const upstream = lastRequest('/api/chat');
    expect(upstream.outcome).toBe('open');
    let received = '';
    const reading = (async () => {
      for await (const part of it) {
        received += part.message.content;
        if (received) it.abort();
      }
    })();
    const error = await reading.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('AbortError');
    const abortedAt = Date.now();
    const closed = await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 5000);
    expect(closed.endedAt! - abortedAt).toBeLessThan(3000);
    const row = await waitFor(async () => {
      const r = await rows().findOneBy({ id: await lastRowId() });
      return r && r.status !== 'STREAMING' ? r : undefined;
    });
    expect(row.status).toBe('CANCELLED');
    expect(row.response.startsWith(received)).toBe(true);
  });
});

describe('POST /api/generate', () => {
  it('answers whole and streamed with the system prompt sent to Ollama', async () => {
    const req = { model: 'llama3.2', prompt: 'Why is the sky blue?', system: 'Answer like a pirate.', options: { num_predict: 6 } };
    const expected = await direct.generate(req);
    const whole = await user.generate(req);
    expect(lastRequest('/api/generate').body).toMatchObject({ model: 'llama3.2', prompt: req.prompt, system: req.system, options: { num_predict: 6 } });
    expect(whole).toMatchObject({ model: 'llama3.2', response: expected.response, done: true, done_reason: 'length', eval_count: 6, prompt_eval_count: expected.prompt_eval_count });
    expect(whole).not.toHaveProperty('context');

    const parts = [];
    for await (const p of await user.generate({ ...req, stream: true })) parts.push(p);
    expect(parts.map((p) => p.response).join('')).toBe(expected.response);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: 'length', response: '', eval_count: 6 });
    expect(parts.slice(0, -1).every((p) => p.done === false && !('eval_count' in p))).toBe(true);
    const row = await rows().findOneByOrFail({ id: await lastRowId() });
    expect(row).toMatchObject({ kind: 'generate', streamed: true, status: 'COMPLETE', response: expected.response, prompt: req.prompt });
  });

  it("Ollama's load request (no prompt) is acknowledged without reaching Ollama or costing credits", async () => {
    const before = { credits: await credits(gw.userSecret), requests: gw.emulator.requests.length };
    const r = await user.generate({ model: 'llama3.2', prompt: '' });
    expect(r).toMatchObject({ model: 'llama3.2', response: '', done: true, done_reason: 'load' });
    expect(gw.emulator.requests.slice(before.requests).filter((q) => q.path === '/api/generate')).toEqual([]);
    expect(await credits(gw.userSecret)).toBe(before.credits);
    expect((await failure(user.chat({ model: 'no-such-model', messages: [] }))).status_code).toBe(404);
  });
});

describe('thinking, tool calls and format pass through in Ollama\'s shape', () => {
  it('a thinking model streams message.thinking before the answer; whole replies carry it; think:false turns it off', async () => {
    const messages = [{ role: 'user', content: 'How many r are in strawberry?' }];
    const expected = await direct.chat({ model: 'qwen3:0.6b', messages });
    expect(expected.message.thinking).toBeTruthy();
    const parts: ChatResponse[] = [];
    await pacedLikeAModel(gw, async () => {
      for await (const p of await user.chat({ model: 'qwen3:0.6b', messages, stream: true })) parts.push(p);
    });
    const thinking = parts.map((p) => p.message.thinking ?? '').join('');
    expect(thinking).toBe(expected.message.thinking);
    expect(parts.map((p) => p.message.content).join('')).toBe(expected.message.content);
    // Reasoning first: nothing thinks after the answer began (coalescing may put the turn in one chunk, as Ollama's parser can).
    const firstAnswer = parts.findIndex((p) => p.message.content);
    expect(parts.findIndex((p) => p.message.thinking)).toBe(0);
    expect(firstAnswer).toBeGreaterThan(0);
    expect(parts.slice(firstAnswer + 1).filter((p) => p.message.thinking)).toEqual([]);

    const whole = await user.chat({ model: 'qwen3:0.6b', messages });
    expect(whole.message).toMatchObject({ role: 'assistant', content: expected.message.content, thinking: expected.message.thinking });
    const gen = await user.generate({ model: 'qwen3:0.6b', prompt: 'How many r are in strawberry?' });
    expect(gen.thinking).toBeTruthy();

    const plain = await user.chat({ model: 'qwen3:0.6b', messages, think: false });
    expect(lastRequest('/api/chat').body).toMatchObject({ think: false });
    expect(plain.message.thinking).toBeUndefined();
    expect(plain.message.content).toBe((await direct.chat({ model: 'qwen3:0.6b', messages, think: false })).message.content);
  });

  it('tool calls come back as message.tool_calls with object arguments, and a tool loop gets the final answer', async () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    ];
    const messages: Array<Record<string, unknown>> = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const expected = await direct.chat({ model: 'llama3.2', messages: messages as never, tools });
    const r = await user.chat({ model: 'llama3.2', messages: messages as never, tools });
    expect(lastRequest('/api/chat').body).toMatchObject({ tools: [{ type: 'function', function: { name: 'get_weather' } }] });
    expect(r.message.tool_calls).toHaveLength(1);
    const call = r.message.tool_calls![0];
    expect(call.function.name).toBe('get_weather');
    expect((call as { id?: string }).id).toBe((expected.message.tool_calls![0] as { id?: string }).id);
    expect(call.function.arguments).toEqual(expected.message.tool_calls![0].function.arguments);
    expect(typeof call.function.arguments).toBe('object');

    const streamedCalls = [];
    for await (const p of await user.chat({ model: 'llama3.2', messages: messages as never, tools, stream: true })) streamedCalls.push(...(p.message.tool_calls ?? []));
    expect(streamedCalls.map((c) => c.function.name)).toEqual(['get_weather']);

    const loop = [...messages, r.message, { role: 'tool', content: '18 degrees and sunny', tool_name: 'get_weather' }];
    const answer = await user.chat({ model: 'llama3.2', messages: loop as never, tools });
    const directAnswer = await direct.chat({ model: 'llama3.2', messages: loop as never, tools });
    expect(answer.message.content).toBe(directAnswer.message.content);
    expect(answer.message.content).toContain('18 degrees and sunny');
    const sent = lastRequest('/api/chat').body as { messages: Array<Record<string, unknown>> };
    expect(sent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(sent.messages[2]).toMatchObject({ tool_name: 'get_weather', content: '18 degrees and sunny' });
  });

  it('format "json" and a JSON Schema reach Ollama; an invalid schema is 400 before anything is sent', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    const r = await user.generate({ model: 'llama3.2', prompt: 'Answer in JSON.', format: schema });
    expect(lastRequest('/api/generate').body).toMatchObject({ format: schema });
    expect(JSON.parse(String(r.response))).toEqual(expect.objectContaining({ answer: expect.any(String) }));
    const j = await user.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'JSON please' }], format: 'json' });
    expect(lastRequest('/api/chat').body).toMatchObject({ format: 'json' });
    expect(() => JSON.parse(j.message.content)).not.toThrow();
    const requestsBefore = gw.emulator.requests.length;
    const bad = await failure(user.generate({ model: 'llama3.2', prompt: 'x', format: { type: 'no-such-type' } }));
    expect(bad.status_code).toBe(400);
    expect(gw.emulator.requests.slice(requestsBefore).filter((q) => q.path === '/api/generate')).toEqual([]);
  });
});

describe("errors in Ollama's shape", () => {
  it('no key and a wrong key are 401 ResponseErrors, before anything reaches Ollama', async () => {
    const requestsBefore = gw.emulator.requests.length;
    for (const client of [new Ollama({ host: gw.url }), new Ollama({ host: gw.url, headers: { Authorization: 'Bearer llmgw_not-a-real-key' } })]) {
      const e = await failure(client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }));
      expect(e).toMatchObject({ name: 'ResponseError', status_code: 401 });
      expect((await failure(client.list())).status_code).toBe(401);
      expect((await failure(client.generate({ model: 'llama3.2', prompt: 'hi', stream: true }))).status_code).toBe(401);
    }
    // x-api-key works as well as Authorization: Bearer.
    const viaHeader = new Ollama({ host: gw.url, headers: { 'x-api-key': gw.userSecret } });
    expect((await viaHeader.list()).models.length).toBeGreaterThan(0);
    expect(gw.emulator.requests.slice(requestsBefore).filter((r) => r.path === '/api/chat' || r.path === '/api/generate')).toEqual([]);
    const raw = await fetch(`${gw.url}/api/tags`);
    expect(raw.status).toBe(401);
    expect(raw.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(await raw.json())).toEqual(['error']);
  });

  it('an unknown model is 404, streamed or not; bad input is 400; both logged and counted under api="ollama"', async () => {
    const messages = [{ role: 'user', content: 'hi' }];
    expect(await failure(user.chat({ model: 'no-such-model', messages }))).toMatchObject({ name: 'ResponseError', status_code: 404 });
    expect((await failure(user.chat({ model: 'no-such-model', messages, stream: true }))).status_code).toBe(404);
    const hot = await failure(user.chat({ model: 'llama3.2', messages, options: { temperature: 5 } }));
    expect(hot.status_code).toBe(400);
    expect(hot.message).toMatch(/temperature/);
    const think = await failure(user.chat({ model: 'llama3.2', messages, think: 'max' as never }));
    expect(think.status_code).toBe(400);
    // Capabilities the model lacks: 400, as Ollama answers "does not support thinking / tools".
    expect((await failure(user.chat({ model: 'llama3.2', messages, think: true }))).status_code).toBe(400);
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
    expect((await failure(user.chat({ model: 'llava:7b', messages, tools }))).status_code).toBe(400);
    const raw = await fetch(`${gw.url}/api/generate`, { method: 'POST', headers: { authorization: `Bearer ${gw.userSecret}` }, body: '{not json' });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({ error: 'the request body is not valid JSON' });
    const empty = await fetch(`${gw.url}/api/generate`, { method: 'POST', headers: { authorization: `Bearer ${gw.userSecret}` } });
    expect(await empty.json()).toEqual({ error: 'missing request body' });
    const logged = await rows().find({ where: { model: 'no-such-model' } });
    expect(logged.map((r) => r.errorCode)).toEqual(['MODEL_NOT_FOUND', 'MODEL_NOT_FOUND']);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^llm_gateway_errors_total\{code="MODEL_NOT_FOUND",api="ollama"\} [3-9]$/m);
  });

  it('an error after the first streamed line is one more {"error"} line (ollama-js throws it mid-iteration)', async () => {
    gw.emulator.addFault({ fault: { kind: 'errorAfter', tokens: 2, error: 'model runner has unexpectedly stopped' }, path: '/api/chat', times: 1 });
    const res = await fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.userSecret}` },
      body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    const lines = (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(0, -1).every((l) => l.done === false)).toBe(true);
    expect(Object.keys(lines.at(-1)!)).toEqual(['error']);

    gw.emulator.addFault({ fault: { kind: 'errorAfter', tokens: 2 }, path: '/api/chat', times: 1 });
    const received: string[] = [];
    const e = await failure(
      (async () => {
        for await (const p of await user.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })) received.push(p.message.content);
      })(),
    );
    expect(e.status_code).toBeUndefined(); // a plain Error, as for Ollama's own mid-stream errors
    expect(received.join('').length).toBeGreaterThan(0);
  });

  it('revoking the key ends its open stream with an {"error"} line, and the key is refused afterwards', async () => {
    const { key: apiKey, secret } = await gw.app.services.keys.create({ name: 'soon revoked', role: 'USER' });
    const client = new Ollama({ host: gw.url, headers: { Authorization: `Bearer ${secret}` } });
    gw.emulator.addFault({ fault: { kind: 'stall', afterTokens: 1 }, path: '/api/chat', times: 1 });
    const it = await client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'Keep going.' }], stream: true });
    const upstream = lastRequest('/api/chat');
    const reading = (async () => {
      for await (const p of it) if (p.message.content) await gw.app.services.keys.revoke(apiKey.id);
    })();
    const e = await failure(reading);
    expect(e.message).toMatch(/revoked/);
    await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 5000);
    expect((await failure(client.list())).status_code).toBe(401);
  });

  it('no credits is 402; over the concurrency limit is 429 with Retry-After', async () => {
    const { secret } = await gw.app.services.keys.create({ name: 'broke', role: 'USER', credits: 0 });
    const broke = new Ollama({ host: gw.url, headers: { Authorization: `Bearer ${secret}` } });
    expect(await failure(broke.generate({ model: 'llama3.2', prompt: 'hi' }))).toMatchObject({ name: 'ResponseError', status_code: 402 });

    // MAX_CONCURRENT_STREAMS_PER_KEY=2: a third concurrent generation is refused (the two stall after a token).
    gw.emulator.addFault({ fault: { kind: 'stall', afterTokens: 1 }, path: '/api/chat', times: 2 });
    const running = await Promise.all([1, 2].map(() => user.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'Slow.' }], stream: true })));
    try {
      const third = await fetch(`${gw.url}/api/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw.userSecret}` },
        body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'Third.' }], stream: false }),
      });
      expect(third.status).toBe(429);
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Object.keys(await third.json())).toEqual(['error']);
    } finally {
      for (const it of running) it.abort();
    }
  });
});

/** Id of the newest usage-log row. */
async function lastRowId(): Promise<string> {
  const [row] = await rows().find({ order: { createdAt: 'DESC' }, take: 1 });
  return row.id;
}
