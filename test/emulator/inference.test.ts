// /api/generate and /api/chat against the contract, through the real ollama client and raw fetch.
import { Ollama } from 'ollama';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/server.js';
import { failure, post } from './helpers.js';

const METRICS = ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration'];
const RFC3339_NANO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

let emu: Emulator;
let client: Ollama;

beforeAll(async () => {
  emu = await startEmulator();
  client = new Ollama({ host: emu.url });
});
afterAll(() => emu.close());
beforeEach(() => {
  emu.clearFaults();
  emu.setTokenDelay(0);
});

describe('streaming generate on the wire', () => {
  it('sends NDJSON chunks with no metric keys and a final chunk with all of them', async () => {
    const r = await post(emu.url, '/api/generate', { model: 'llama3.2', prompt: 'Why is the sky blue?' });
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('application/x-ndjson');
    expect(r.text.endsWith('\n')).toBe(true);
    const chunks = r.objects.slice(0, -1);
    const last = r.objects[r.objects.length - 1];
    expect(chunks.length).toBeGreaterThan(10);
    for (const c of chunks) {
      expect(Object.keys(c)).toEqual(['model', 'created_at', 'response', 'done']);
      expect(c.model).toBe('llama3.2'); // echoed as sent, not normalized
      expect(c.done).toBe(false);
      expect(c.created_at).toMatch(RFC3339_NANO_UTC);
    }
    expect(chunks[0].response).toBe('Hello');
    expect(last).toMatchObject({ model: 'llama3.2', response: '', done: true, done_reason: 'stop' });
    expect(Object.keys(last)).toEqual(['model', 'created_at', 'response', 'done', 'done_reason', 'context', ...METRICS]);
    for (const k of METRICS) {
      expect(Number.isInteger(last[k]), k).toBe(true);
      expect(last[k] as number, k).toBeGreaterThan(0);
    }
    expect(last.eval_count).toBe(chunks.length);
    expect(last.prompt_eval_count).toBe(6); // "Why", " is", " the", " sky", " blue", "?"
    expect(Array.isArray(last.context)).toBe(true);
    const m = last as Record<string, number>;
    expect(m.total_duration).toBeGreaterThanOrEqual(m.load_duration + m.prompt_eval_duration + m.eval_duration);
    const rate = (m.eval_count / m.eval_duration) * 1e9;
    expect(rate).toBeGreaterThan(1);
    expect(rate).toBeLessThan(1000);
  });

  it('counts system + prompt tokens and leaves context out for raw', async () => {
    const r = await post(emu.url, '/api/generate', { model: 'llama3.2', prompt: 'a b c', system: 'be terse', stream: false });
    expect(r.objects[0].prompt_eval_count).toBe(5);
    const raw = await post(emu.url, '/api/generate', { model: 'llama3.2', prompt: 'a b c', raw: true, stream: false });
    expect(raw.objects[0]).not.toHaveProperty('context');
    const bad = await post(emu.url, '/api/generate', { model: 'llama3.2', prompt: 'x', raw: true, system: 's' });
    expect(bad).toMatchObject({ status: 400, objects: [{ error: 'raw mode does not support template, system, or context' }] });
  });
});

describe('generate and chat through the ollama client', () => {
  it('streams generate; the concatenation equals the stream:false reply (multibyte intact)', async () => {
    const parts: string[] = [];
    let final: Record<string, unknown> | undefined;
    for await (const p of await client.generate({ model: 'llama3.2', prompt: 'Tell me a story', stream: true })) {
      if (p.done) final = p as unknown as Record<string, unknown>;
      else parts.push(String(p.response));
    }
    const whole = await client.generate({ model: 'llama3.2', prompt: 'Tell me a story' });
    expect(parts.join('')).toBe(whole.response);
    expect(whole.response).toMatch(/🦙/);
    expect(whole.response).toMatch(/llama3\.2:latest/);
    expect(whole.response).toContain('"Tell me a story"');
    expect(final?.done_reason).toBe('stop');
    expect(whole.eval_count).toBe(parts.length);
    expect(whole.done).toBe(true);
    expect(whole.context.length).toBeGreaterThan(parts.length);
  });

  it('is deterministic per model and prompt', async () => {
    const a = await client.generate({ model: 'llama3.2', prompt: 'same prompt' });
    const b = await client.generate({ model: 'LLAMA3.2:latest', prompt: 'same prompt' });
    const c = await client.generate({ model: 'llama3.2', prompt: 'other prompt' });
    expect(b.response).toBe(a.response);
    expect(b.model).toBe('LLAMA3.2:latest');
    expect(c.response).not.toBe(a.response);
  });

  it('streams chat with message chunks and a final chunk without context', async () => {
    const chunks: Array<Record<string, unknown>> = [];
    const it = await client.chat({
      model: 'llama3.2',
      messages: [
        { role: 'system', content: 'You are helpful.' },
        { role: 'user', content: 'Hello there' },
      ],
      stream: true,
    });
    for await (const p of it) chunks.push(p as unknown as Record<string, unknown>);
    const last = chunks.pop()!;
    expect(chunks[0]).toEqual({
      model: 'llama3.2',
      created_at: expect.any(String),
      message: { role: 'assistant', content: 'Hello' },
      done: false,
    });
    expect(last).toMatchObject({ done: true, done_reason: 'stop', message: { role: 'assistant', content: '' } });
    expect(last).not.toHaveProperty('context');
    expect(last.prompt_eval_count).toBe(6); // "You", " are", " helpful", "." + "Hello", " there"
    const text = chunks.map((c) => (c.message as { content: string }).content).join('');
    expect(text).toContain('"Hello there"');
  });

  it('answers chat stream:false with the whole message and the metrics', async () => {
    const r = await post(emu.url, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false });
    expect(r.contentType).toBe('application/json; charset=utf-8');
    expect(r.objects).toHaveLength(1);
    expect(Object.keys(r.objects[0])).toEqual(['model', 'created_at', 'message', 'done', 'done_reason', ...METRICS]);
    expect((r.objects[0].message as { content: string }).content).toMatch(/^Hello from llama3\.2:latest! You said: "hi"\./);
  });

  it('caps tokens with num_predict (done_reason "length")', async () => {
    const r = await client.generate({ model: 'llama3.2', prompt: 'count', options: { num_predict: 3 } });
    expect(r.response).toBe('Hello from llama3');
    expect(r.eval_count).toBe(3);
    expect(r.done_reason).toBe('length');
    const parts: string[] = [];
    for await (const p of await client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], options: { num_predict: 2 }, stream: true })) {
      if (!p.done) parts.push(p.message.content);
      else expect(p.done_reason).toBe('length');
    }
    expect(parts).toEqual(['Hello', ' from']);
  });

  it('ends at a stop sequence without emitting it (done_reason "stop")', async () => {
    const r = await client.generate({ model: 'llama3.2', prompt: 'hi', options: { stop: ['You said'] } });
    expect(r.response).toBe('Hello from llama3.2:latest! ');
    expect(r.done_reason).toBe('stop');
    const streamed: string[] = [];
    for await (const p of await client.generate({ model: 'llama3.2', prompt: 'hi', options: { stop: ['!'] }, stream: true })) {
      streamed.push(String(p.response));
    }
    expect(streamed.join('')).toBe('Hello from llama3.2:latest');
  });

  it('uses a scripted reply and JSON output for format', async () => {
    const scripted = await startEmulator({
      models: [{ name: 'tiny', size: 1000, family: 'llama', parameterSize: '1M', quantizationLevel: 'Q8_0', capabilities: ['completion'], contextLength: 2048, reply: 'Exactly this, ünïcode.' }],
    });
    try {
      const c = new Ollama({ host: scripted.url });
      const r = await c.generate({ model: 'tiny', prompt: 'anything' });
      expect(r.response).toBe('Exactly this, ünïcode.');
      expect(r.eval_count).toBe(5); // "Exactly", " this", ",", " ünïcode", "."
      const j = await c.generate({ model: 'tiny', prompt: 'x', format: 'json' });
      expect(JSON.parse(String(j.response))).toEqual({ answer: 'Exactly this, ünïcode.' });
      const s = await c.generate({
        model: 'tiny',
        prompt: 'x',
        format: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } } },
      });
      expect(JSON.parse(String(s.response))).toEqual({ name: 'Exactly this, ünïcode.', age: 42, tags: ['Exactly this, ünïcode.'] });
    } finally {
      await scripted.close();
    }
  });

  it('thinks on thinking models unless think:false', async () => {
    const r = await client.chat({ model: 'qwen3:0.6b', messages: [{ role: 'user', content: 'ponder this' }] });
    expect(r.message.thinking).toBe('The user wrote "ponder this". I should answer briefly and politely.');
    expect(r.message.content).toContain('"ponder this"');
    const streamed = await post(emu.url, '/api/generate', { model: 'qwen3:0.6b', prompt: 'ponder this' });
    expect(streamed.objects[0]).toMatchObject({ response: '', thinking: 'The', done: false });
    const off = await client.chat({ model: 'qwen3:0.6b', messages: [{ role: 'user', content: 'ponder this' }], think: false });
    expect(off.message.thinking).toBeUndefined();
    expect(off.eval_count).toBeLessThan(r.eval_count);
  });

  it('accepts base64 images for a vision model', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const r = await client.generate({ model: 'llava:7b', prompt: 'what is this', images: [png] });
    expect(r.done).toBe(true);
  });
});

describe('request errors (status and body as Ollama sends them)', () => {
  const cases: Array<[string, string, unknown, number, string]> = [
    ['missing body', '/api/generate', '', 400, 'missing request body'],
    ['malformed JSON', '/api/chat', '{"model": x}', 400, "invalid character 'x' looking for beginning of value"],
    ['wrong field type', '/api/generate', { model: 'llama3.2', prompt: 1 }, 400, 'json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string'],
    ['unknown model (generate)', '/api/generate', { model: 'Nope', prompt: 'x' }, 404, "model 'Nope' not found"],
    ['unknown model (chat)', '/api/chat', { model: 'nope:1b', messages: [] }, 404, "model 'nope:1b' not found"],
    ['missing model (generate)', '/api/generate', { prompt: 'x' }, 404, "model '' not found"],
    ['missing model (chat)', '/api/chat', { messages: [] }, 400, 'model is required'],
    ['data: URL image', '/api/generate', { model: 'llava:7b', prompt: 'x', images: ['data:image/png;base64,iVBORw0KGgo='] }, 400, 'illegal base64 data at input byte 4'],
    ['non-base64 chat image', '/api/chat', { model: 'llava:7b', messages: [{ role: 'user', content: 'x', images: ['not base64!'] }] }, 400, 'illegal base64 data at input byte 3'],
    ['image for a model without vision', '/api/generate', { model: 'llama3.2', prompt: 'x', images: ['aGk='] }, 400, 'registry.ollama.ai/library/llama3.2:latest does not support vision'],
    ['tools for a model without tools', '/api/chat', { model: 'llava:7b', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }, 400, 'registry.ollama.ai/library/llava:7b does not support tools'],
    ['think on a model without thinking', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], think: true }, 400, '"llama3.2" does not support thinking'],
    ['bad think value', '/api/chat', { model: 'llama3.2', messages: [], think: 'very' }, 400, 'invalid think value: "very" (must be "high", "medium", "low", "max", true, or false)'],
    ['top_logprobs out of range', '/api/generate', { model: 'llama3.2', prompt: 'x', top_logprobs: 21 }, 400, 'top_logprobs must be between 0 and 20'],
    ['wrong option type', '/api/generate', { model: 'llama3.2', prompt: 'x', options: { temperature: 'hot' } }, 500, 'option "temperature" must be of type float32'],
    ['bare numeric keep_alive', '/api/generate', { model: 'llama3.2', keep_alive: '300' }, 400, 'time: missing unit in duration "300"'],
  ];
  it.each(cases)('%s', async (_name, path, body, status, error) => {
    const r = await post(emu.url, path, body);
    expect(r.status).toBe(status);
    expect(r.contentType).toBe('application/json; charset=utf-8');
    expect(JSON.parse(r.text)).toEqual({ error });
  });

  it('surfaces as ResponseError in the ollama client', async () => {
    const err = await failure(client.chat({ model: 'missing-model', messages: [{ role: 'user', content: 'x' }], stream: true }));
    expect(err.name).toBe('ResponseError');
    expect(err.status_code).toBe(404);
    expect(err.message).toBe("model 'missing-model' not found");
  });
});
