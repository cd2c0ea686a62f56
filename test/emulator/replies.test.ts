// Reply shapes real Ollama has and a naive emulator lacks: text on the done chunk, replies that run
// to the limit without num_predict, invalid names, errors before the first chunk, tool calls,
// thinking, format and embeddings.
import { Ollama } from 'ollama';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatedModel, type Emulator } from '../../src/emulator/server.js';
import { failure, post } from './helpers.js';

let emu: Emulator;
let client: Ollama;

const talker: EmulatedModel = {
  name: 'talker:latest',
  size: 1_000_000_000,
  family: 'llama',
  parameterSize: '1B',
  quantizationLevel: 'Q4_K_M',
  capabilities: ['completion'],
  contextLength: 8192,
  replyTokens: 3000,
};

beforeEach(async () => {
  emu = await startEmulator();
  client = new Ollama({ host: emu.url });
});
afterEach(() => emu.close());

describe('a parser that flushes on the final chunk (flushOnDone)', () => {
  it('generate: the done chunk carries the held-back text with the metrics; the concatenation is the whole answer', async () => {
    const opts = { model: 'gpt-oss:20b', prompt: 'Tell me about llamas', think: false } as const;
    const whole = await client.generate(opts);
    const parts = [];
    for await (const p of await client.generate({ ...opts, stream: true })) parts.push(p);
    const final = parts[parts.length - 1];
    expect(final.done).toBe(true);
    expect(final.response).not.toBe('');
    expect(final.eval_count).toBeGreaterThan(0);
    expect(final.done_reason).toBe('stop');
    expect(parts.map((p) => p.response).join('')).toBe(whole.response);
    expect((whole.response ?? '').endsWith(final.response ?? '')).toBe(true);
  });

  it('chat, with thinking on by default: thinking chunks, then content, the last of it on the done chunk', async () => {
    const req = { model: 'gpt-oss:20b', messages: [{ role: 'user', content: 'Hi there' }] };
    const whole = await client.chat(req);
    expect(whole.message.thinking).toBeTruthy();
    const parts = [];
    for await (const p of await client.chat({ ...req, stream: true })) parts.push(p);
    const final = parts[parts.length - 1];
    expect(final.done).toBe(true);
    expect(final.message.content).not.toBe('');
    expect(parts.map((p) => p.message.content).join('')).toBe(whole.message.content);
    expect(parts.map((p) => p.message.thinking ?? '').join('')).toBe(whole.message.thinking);
    expect(parts.some((p) => !p.done && p.message.thinking)).toBe(true);
  });

  it('models without a parser keep the done chunk empty', async () => {
    const parts = [];
    for await (const p of await client.generate({ model: 'llama3.2', prompt: 'x', stream: true })) parts.push(p);
    expect(parts[parts.length - 1].response).toBe('');
  });
});

describe('replies without num_predict', () => {
  it('replyTokens: talks that long and stops with "stop"; num_predict cuts with "length"', async () => {
    await emu.close();
    emu = await startEmulator({ models: [talker] });
    client = new Ollama({ host: emu.url });
    const full = await client.generate({ model: 'talker', prompt: 'go' });
    expect([full.eval_count, full.done_reason]).toEqual([3000, 'stop']);
    let streamed = 0;
    for await (const p of await client.generate({ model: 'talker', prompt: 'go', stream: true })) if (!p.done) streamed += 1;
    expect(streamed).toBe(3000);
    const cut = await client.generate({ model: 'talker', prompt: 'go', options: { num_predict: 2049 } });
    expect([cut.eval_count, cut.done_reason]).toEqual([2049, 'length']);
  });

  it('endless: runs to the open-ended bound (10 context windows) with "length", or to the window without shift', async () => {
    const base = 'llama3.2:3b-text-q4_K_M';
    const small = await client.generate({ model: base, prompt: 'once upon a time', options: { num_ctx: 256 } });
    expect([small.eval_count, small.done_reason]).toEqual([2560, 'length']);
    const noShift = await post(emu.url, '/api/generate', { model: base, prompt: 'once upon a time', stream: false, shift: false, options: { num_ctx: 256 } });
    expect(noShift.objects[0]).toMatchObject({ eval_count: 256 - 4, done_reason: 'length', prompt_eval_count: 4 });
    const capped = await client.chat({ model: base, messages: [{ role: 'user', content: 'go' }], options: { num_predict: 100 } });
    expect([capped.eval_count, capped.done_reason]).toEqual([100, 'length']);
    expect(capped.message.content.length).toBeGreaterThan(100);
  });
});

describe('model names', () => {
  it.each([
    ['generate', '/api/generate', { model: 'bad name!', prompt: 'x' }],
    ['chat', '/api/chat', { model: 'llama3.2:', messages: [] }],
    ['show', '/api/show', { model: 'a/b/c/d' }],
    ['embed', '/api/embed', { model: '-dash', input: 'x' }],
  ])('%s: 400 invalid model name', async (_kind, path, body) => {
    expect(await post(emu.url, path, body)).toMatchObject({ status: 400, objects: [{ error: 'invalid model name' }] });
  });

  it('a blank name is still "not found" for generate and "model is required" for chat', async () => {
    expect(await post(emu.url, '/api/generate', { model: '  ', prompt: 'x' })).toMatchObject({ status: 404, objects: [{ error: "model '  ' not found" }] });
    expect(await post(emu.url, '/api/chat', { model: '', messages: [] })).toMatchObject({ status: 400, objects: [{ error: 'model is required' }] });
    const err = await failure(client.generate({ model: 'bad name!', prompt: 'x' }));
    expect([err.name, err.status_code, err.message]).toEqual(['ResponseError', 400, 'invalid model name']);
  });
});

describe('errors before the first chunk', () => {
  it('a runner error before any output is a 500 with a JSON body, also for a streaming request', async () => {
    emu.addFault({ fault: { kind: 'errorAfter', tokens: 0, error: 'model runner has crashed' }, path: '/api/chat' });
    const wire = await post(emu.url, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] });
    expect(wire).toMatchObject({ status: 500, contentType: 'application/json; charset=utf-8', objects: [{ error: 'model runner has crashed' }] });
    const err = await failure(client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: true }));
    expect([err.name, err.status_code, err.message]).toEqual(['ResponseError', 500, 'model runner has crashed']);
  });
});

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city'],
    },
  },
};

describe('tool calls', () => {
  const ask = [{ role: 'user', content: 'Weather in Paris please' }];

  it('calls the first tool with arguments shaped by its schema (stream:false)', async () => {
    const r = await client.chat({ model: 'llama3.2', messages: ask, tools: [weather] });
    expect(r.done_reason).toBe('stop');
    expect(r.message.content).toBe('');
    expect(r.message.tool_calls).toEqual([
      { id: expect.stringMatching(/^call_[a-z0-9]{8}$/), function: { index: 0, name: 'get_weather', arguments: { city: 'Weather in Paris please', days: 42, unit: 'celsius' } } },
    ]);
    expect(r.eval_count).toBeGreaterThan(1);
  });

  it('streams the call on a chunk of its own for a template parser, on the done chunk for a built-in parser', async () => {
    const llama = [];
    for await (const p of await client.chat({ model: 'llama3.2', messages: ask, tools: [weather], stream: true })) llama.push(p);
    const withCalls = llama.filter((p) => p.message.tool_calls?.length);
    expect(withCalls).toHaveLength(1);
    expect(withCalls[0].done).toBe(false);
    expect(llama[llama.length - 1]).toMatchObject({ done: true, done_reason: 'stop', message: { content: '' } });

    const gpt = [];
    for await (const p of await client.chat({ model: 'gpt-oss:20b', messages: ask, tools: [weather], stream: true, think: false })) gpt.push(p);
    const final = gpt[gpt.length - 1];
    expect(final.done).toBe(true);
    expect(final.message.tool_calls?.[0].function.name).toBe('get_weather');
    expect(gpt.slice(0, -1).every((p) => !p.message.tool_calls)).toBe(true);
  });

  it('answers in text from the tool message', async () => {
    const r = await client.chat({
      model: 'llama3.2',
      tools: [weather],
      messages: [
        ...ask,
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: '18 degrees and sunny', tool_name: 'get_weather' },
      ],
    });
    expect(r.message.tool_calls).toBeUndefined();
    expect(r.message.content).toContain('18 degrees and sunny');
  });

  it('a model without the tools capability: 400 with the fully qualified name', async () => {
    const r = await post(emu.url, '/api/chat', { model: 'llava:7b', messages: ask, tools: [weather] });
    expect(r).toMatchObject({ status: 400, objects: [{ error: 'registry.ollama.ai/library/llava:7b does not support tools' }] });
  });
});

describe('thinking and format', () => {
  it('thinks when think is omitted, not with think:false, accepts levels, and 400s on a non-thinking model', async () => {
    expect((await client.generate({ model: 'qwen3:0.6b', prompt: 'x' })).thinking).toBeTruthy();
    expect((await client.generate({ model: 'qwen3:0.6b', prompt: 'x', think: false })).thinking).toBeUndefined();
    expect((await client.generate({ model: 'gpt-oss:20b', prompt: 'x', think: 'high' })).thinking).toBeTruthy();
    const bad = await post(emu.url, '/api/generate', { model: 'llama3.2', prompt: 'x', think: true });
    expect(bad).toMatchObject({ status: 400, objects: [{ error: '"llama3.2" does not support thinking' }] });
  });

  it('format: JSON text in the reply, "json" or shaped by a schema', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } } };
    const r = await client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'who' }], format: schema });
    expect(Object.keys(JSON.parse(r.message.content))).toEqual(['name', 'age']);
    const j = await client.generate({ model: 'llama3.2', prompt: 'who', format: 'json' });
    expect(JSON.parse(j.response ?? '')).toHaveProperty('answer');
  });
});

describe('/api/embed', () => {
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

  it('returns one L2-normalised vector per input, deterministic, with counts and durations', async () => {
    const r = await client.embed({ model: 'nomic-embed-text', input: ['hello world', 'bonjour le monde'] });
    expect(r.model).toBe('nomic-embed-text');
    expect(r.embeddings).toHaveLength(2);
    for (const v of r.embeddings) {
      expect(v).toHaveLength(768);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
    expect(r.embeddings[0]).not.toEqual(r.embeddings[1]);
    expect(r.prompt_eval_count).toBe(5);
    expect(r.total_duration).toBeGreaterThan(0);
    expect(r.load_duration).toBeGreaterThan(0);
    const again = await client.embed({ model: 'nomic-embed-text', input: 'hello world' });
    expect(again.embeddings[0]).toEqual(r.embeddings[0]);
  });

  it('honours dimensions (renormalised) and truncate', async () => {
    const r = await client.embed({ model: 'nomic-embed-text', input: 'hello', dimensions: 64 });
    expect(r.embeddings[0]).toHaveLength(64);
    expect(norm(r.embeddings[0])).toBeCloseTo(1, 5);
    const long = Array.from({ length: 3000 }, (_, i) => `w${i}`).join(' ');
    const cut = await client.embed({ model: 'nomic-embed-text', input: long });
    expect(cut.prompt_eval_count).toBe(2048 - 2);
    const refused = await post(emu.url, '/api/embed', { model: 'nomic-embed-text', input: long, truncate: false });
    expect(refused).toMatchObject({ status: 400, objects: [{ error: 'the input length exceeds the context length' }] });
  });

  it('empty input loads the model; errors have Ollama\'s statuses and texts', async () => {
    const empty = await post(emu.url, '/api/embed', { model: 'nomic-embed-text', input: [] });
    expect(empty.objects[0]).toEqual({ model: 'nomic-embed-text', embeddings: [] });
    expect(emu.running().map((m) => m.name)).toContain('nomic-embed-text:latest');
    expect(await post(emu.url, '/api/embed', { model: 'nomic-embed-text', input: [1, 2] })).toMatchObject({ status: 400, objects: [{ error: 'invalid input type' }] });
    expect(await post(emu.url, '/api/embed', { model: 'ghost', input: 'x' })).toMatchObject({
      status: 404,
      objects: [{ error: 'model "ghost" not found, try pulling it first' }],
    });
    expect(await post(emu.url, '/api/embed', { model: 'llama3.2', input: 'x' })).toMatchObject({
      status: 501,
      objects: [{ error: 'this model does not support embeddings' }],
    });
  });

  it('the deprecated /api/embeddings answers {embedding}', async () => {
    const r = await client.embeddings({ model: 'nomic-embed-text', prompt: 'hello world' });
    expect(r.embedding).toHaveLength(768);
    expect(norm(r.embedding)).toBeCloseTo(1, 5);
    expect((await post(emu.url, '/api/embeddings', { model: 'nomic-embed-text' })).objects[0]).toEqual({ embedding: [] });
  });
});
