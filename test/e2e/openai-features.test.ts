// Tool calls, structured output and reasoning on /v1, driven by the official `openai` client
// against the gateway and the emulator; the expected answers come from asking the emulator directly.
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Generation } from '../../src/entities/generation.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let openai: OpenAI;
let ollama: Ollama;

beforeAll(async () => {
  gw = await startGateway();
  openai = new OpenAI({ apiKey: gw.userSecret, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 10_000 });
  ollama = new Ollama({ host: gw.emulator.url });
});
afterAll(async () => {
  await gw?.stop();
});

type Chunk = OpenAI.Chat.Completions.ChatCompletionChunk;
type UpstreamChat = { messages: Array<Record<string, unknown>>; tools?: unknown; format?: unknown; think?: unknown };

const rows = () => gw.orm.getRepository(Generation);
const chatRequests = () => gw.emulator.requests.filter((r) => r.path === '/api/chat');
const lastChatBody = () => chatRequests().at(-1)!.body as UpstreamChat;

const weather: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city.',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
};
const ollamaWeather = { type: 'function', function: { name: 'get_weather', description: 'The current weather in a city.', parameters: weather.function.parameters } };

async function collect(stream: AsyncIterable<Chunk>): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}
const deltas = (chunks: Chunk[]) => chunks.flatMap((c) => c.choices.map((ch) => ch.delta as Chunk['choices'][0]['delta'] & { reasoning_content?: string }));

describe('tools on /v1/chat/completions', () => {
  it('runs a tool-calling loop: the call carries string arguments, the tool answer reaches Ollama by name, then text', async () => {
    const question = { role: 'user' as const, content: 'What is the weather in Lyon?' };
    const first = await openai.chat.completions.create({ model: 'llama3.2', messages: [question], tools: [weather] });
    expect(lastChatBody().tools).toEqual([ollamaWeather]);
    const expected = await ollama.chat({ model: 'llama3.2', messages: [question], tools: [ollamaWeather] as never, stream: false });
    const expectedCall = expected.message.tool_calls![0] as { id?: string; function: { name: string; arguments: Record<string, unknown> } };

    const choice = first.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(call).toMatchObject({ id: expectedCall.id, type: 'function', function: { name: 'get_weather' } });
    expect(typeof call.function.arguments).toBe('string');
    expect(JSON.parse(call.function.arguments)).toEqual(expectedCall.function.arguments);

    // The client runs the tool and sends the whole exchange back.
    const answer = await openai.chat.completions.create({
      model: 'llama3.2',
      tools: [weather],
      messages: [question, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' }],
    });
    const upstream = lastChatBody().messages;
    expect(upstream.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect((upstream[1].tool_calls as Array<{ function: unknown }>)[0].function).toMatchObject({ name: 'get_weather', arguments: expectedCall.function.arguments });
    expect(upstream[2]).toMatchObject({ role: 'tool', content: '{"temperature": 21}', tool_name: 'get_weather' });
    expect(answer.choices[0].finish_reason).toBe('stop');
    expect(answer.choices[0].message.tool_calls).toBeUndefined();
    expect(answer.choices[0].message.content).toBe('The tool get_weather says: {"temperature": 21}. That is my answer — merci 🦙.');
    const row = await rows().findOneByOrFail({ id: first.id.replace(/^chatcmpl-/, '') });
    expect(row.toolCalls).toEqual([{ id: call.id, name: 'get_weather', arguments: expectedCall.function.arguments }]);
  });

  it('streams tool calls as indexed delta.tool_calls the SDK assembles (runTools loop, and gpt-oss calling on its final chunk)', async () => {
    const seen: unknown[] = [];
    const runner = openai.chat.completions.runTools({
      model: 'llama3.2',
      stream: true,
      messages: [{ role: 'user', content: 'Weather in Oslo, please.' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The current weather in a city.',
            parameters: weather.function.parameters!,
            parse: JSON.parse,
            function: (args: unknown) => {
              seen.push(args);
              return { temperature: -3 };
            },
          },
        },
      ],
    });
    const final = await runner.finalContent();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ city: expect.any(String), days: 42 });
    expect(final).toBe('The tool get_weather says: {"temperature":-3}. That is my answer — merci 🦙.');

    // gpt-oss thinks first and its parser flushes the call with the done chunk.
    const messages = [{ role: 'user' as const, content: 'Weather in Rome?' }];
    const chunks = await collect(await openai.chat.completions.create({ model: 'gpt-oss:20b', messages, tools: [weather], stream: true }));
    const expected = await ollama.chat({ model: 'gpt-oss:20b', messages, tools: [ollamaWeather] as never, stream: false });
    const calls = deltas(chunks).flatMap((d) => d.tool_calls ?? []);
    expect(calls).toEqual([
      { index: 0, id: (expected.message.tool_calls![0] as { id?: string }).id, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(expected.message.tool_calls![0].function.arguments) } },
    ]);
    const reasoning = deltas(chunks).map((d) => d.reasoning_content ?? '').join('');
    expect(reasoning).toBe(expected.message.thinking);
    const firstCall = deltas(chunks).findIndex((d) => d.tool_calls);
    expect(deltas(chunks).findLastIndex((d) => d.reasoning_content)).toBeLessThan(firstCall);
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean)).toEqual(['tool_calls']);
  });

  it("tool_choice 'none' sends no tools; 'required' and a named function are refused with 400 before Ollama", async () => {
    const messages = [{ role: 'user' as const, content: 'Weather in Lyon?' }];
    const none = await openai.chat.completions.create({ model: 'llama3.2', messages, tools: [weather], tool_choice: 'none' });
    expect(lastChatBody().tools).toBeUndefined();
    expect(none.choices[0].finish_reason).toBe('stop');
    expect(none.choices[0].message.content).toBe((await ollama.chat({ model: 'llama3.2', messages, stream: false })).message.content);

    const before = gw.emulator.requests.length;
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }] as const) {
      const e = await openai.chat.completions.create({ model: 'llama3.2', messages, tools: [weather], tool_choice }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      const err = e as InstanceType<typeof OpenAI.BadRequestError>;
      expect(err.status).toBe(400);
      expect(err.type).toBe('invalid_request_error');
      expect(err.param).toBe('tool_choice');
    }
    expect(gw.emulator.requests.length).toBe(before);
  });

  it('refuses history it cannot map: arguments that are not JSON, a tool answer to no call', async () => {
    const user = { role: 'user' as const, content: 'Weather?' };
    const call = (args: string) => ({ role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: args } }] });
    const cases: Array<[OpenAI.Chat.Completions.ChatCompletionMessageParam[], string]> = [
      [[user, call('{city: Lyon'), { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }], 'messages[1].tool_calls[0].function.arguments'],
      [[user, call('[1]'), { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }], 'messages[1].tool_calls[0].function.arguments'],
      [[user, call('{"city":"Lyon"}'), { role: 'tool', tool_call_id: 'call_2', content: 'sunny' }], 'messages[2].tool_call_id'],
    ];
    const before = gw.emulator.requests.length;
    for (const [messages, param] of cases) {
      const e = await openai.chat.completions.create({ model: 'llama3.2', messages, tools: [weather] }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      expect((e as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
    }
    expect(gw.emulator.requests.length).toBe(before);
  });
});

describe('capabilities and schemas checked before Ollama', () => {
  it('tools or reasoning on a model without the capability, and a response or tool schema that is not JSON Schema, are 400s', async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const chatsBefore = chatRequests().length;
    const noTools = await openai.chat.completions.create({ model: 'llava:7b', messages, tools: [weather] }).catch((e: unknown) => e);
    expect(noTools).toBeInstanceOf(OpenAI.BadRequestError);
    expect((noTools as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('capability_missing');
    const noThinking = await openai.chat.completions.create({ model: 'llama3.2', messages, reasoning_effort: 'high' }).catch((e: unknown) => e);
    expect(noThinking).toBeInstanceOf(OpenAI.BadRequestError);
    expect((noThinking as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('capability_missing');
    const badSchema = await openai.chat.completions
      .create({ model: 'llama3.2', messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'objekt' } } } })
      .catch((e: unknown) => e);
    expect(badSchema).toBeInstanceOf(OpenAI.BadRequestError);
    expect((badSchema as InstanceType<typeof OpenAI.BadRequestError>).type).toBe('invalid_request_error');
    expect((badSchema as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('response_format');
    const badTool = await openai.chat.completions
      .create({ model: 'llama3.2', messages, tools: [weather, { type: 'function', function: { name: 'broken', parameters: { type: 'objekt' } } }] })
      .catch((e: unknown) => e);
    expect(badTool).toBeInstanceOf(OpenAI.BadRequestError);
    expect((badTool as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('tools[1].function.parameters');
    const badName = await openai.chat.completions
      .create({ model: 'llama3.2', messages, tools: [{ type: 'function', function: { name: 'get weather', parameters: {} } }] })
      .catch((e: unknown) => e);
    expect(badName).toBeInstanceOf(OpenAI.BadRequestError);
    expect((badName as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('tools[0].function.name');
    expect(chatRequests().length).toBe(chatsBefore);
  });
});

describe('response_format', () => {
  it('json_object sends format "json" and the answer parses as JSON', async () => {
    const r = await openai.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'Describe Lyon in JSON.' }], response_format: { type: 'json_object' } });
    expect(lastChatBody().format).toBe('json');
    const parsed = JSON.parse(r.choices[0].message.content!) as unknown;
    expect(parsed).toBeTypeOf('object');
    expect(parsed).not.toBeNull();
  });

  it('json_schema sends the schema as format and the answer parses into it (SDK .parse with a zod schema)', async () => {
    const City = z.object({ name: z.string(), population: z.number().int(), rivers: z.array(z.string()) });
    const format = zodResponseFormat(City, 'city');
    const r = await openai.chat.completions.parse({ model: 'llama3.2', messages: [{ role: 'user', content: 'Tell me about Lyon.' }], response_format: format });
    expect(lastChatBody().format).toEqual(format.json_schema.schema);
    const city = r.choices[0].message.parsed!;
    expect(City.parse(city)).toEqual(city);
    expect(city.population).toBe(42);

    const text = await openai.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'text' } });
    expect(lastChatBody().format).toBeUndefined();
    expect(text.choices[0].message.content).toMatch(/^Hello from llama3\.2(:latest)?! You said: "hi"/);
  });
});

describe('reasoning_effort and reasoning_content', () => {
  it('a level reaches Ollama as think; the reasoning is in message.reasoning_content, apart from the answer', async () => {
    const messages = [{ role: 'user' as const, content: 'Why is the sky blue?' }];
    const r = await openai.chat.completions.create({ model: 'qwen3:0.6b', messages, reasoning_effort: 'low' });
    expect(lastChatBody().think).toBe('low');
    const expected = await ollama.chat({ model: 'qwen3:0.6b', messages, think: 'low', stream: false });
    const message = r.choices[0].message as typeof r.choices[0]['message'] & { reasoning_content?: string };
    expect(expected.message.thinking).toBeTruthy();
    expect(message.reasoning_content).toBe(expected.message.thinking);
    expect(message.content).toBe(expected.message.content);
  });

  it('streams delta.reasoning_content before the answer (gpt-oss, high)', async () => {
    const messages = [{ role: 'user' as const, content: 'Explain tides.' }];
    const chunks = await collect(await openai.chat.completions.create({ model: 'gpt-oss:20b', messages, reasoning_effort: 'high', stream: true }));
    expect(lastChatBody().think).toBe('high');
    const expected = await ollama.chat({ model: 'gpt-oss:20b', messages, think: 'high', stream: false });
    const ds = deltas(chunks);
    expect(ds.map((d) => d.reasoning_content ?? '').join('')).toBe(expected.message.thinking);
    expect(ds.map((d) => d.content ?? '').join('')).toBe(expected.message.content);
    expect(ds.findLastIndex((d) => d.reasoning_content)).toBeLessThan(ds.findIndex((d) => d.content));
    expect(ds.some((d) => d.reasoning_content && d.content)).toBe(false);
  });

  it("'none' (and 'minimal') turn thinking off: think false upstream, no reasoning_content", async () => {
    for (const reasoning_effort of ['none', 'minimal'] as const) {
      const messages = [{ role: 'user' as const, content: 'Quick answer: 2 + 2?' }];
      const r = await openai.chat.completions.create({ model: 'qwen3:0.6b', messages, reasoning_effort });
      expect(lastChatBody().think).toBe(false);
      expect(r.choices[0].message).not.toHaveProperty('reasoning_content');
      expect(r.choices[0].message.content).toBe((await ollama.chat({ model: 'qwen3:0.6b', messages, think: false, stream: false })).message.content);

      const chunks = await collect(await openai.chat.completions.create({ model: 'qwen3:0.6b', messages, reasoning_effort, stream: true }));
      expect(deltas(chunks).some((d) => 'reasoning_content' in d)).toBe(false);
    }
  });

  it('an unknown effort is a 400 naming reasoning_effort', async () => {
    const e = await openai.chat.completions
      .create({ model: 'qwen3:0.6b', messages: [{ role: 'user', content: 'hi' }], reasoning_effort: 'xhigh' })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect((e as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('reasoning_effort');
  });
});
