// What today's models do, through the GraphQL API: reasoning, tool calls, structured output,
// images on generate and a model's own system prompt, against the emulator's real Ollama shapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { pacedLikeAModel } from '../helpers/paced.js';
import { type GraphQLResponse, type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { resultOf, runExample } from '../helpers/examples.js';
import { gql, gqlError } from '../helpers/models.js';

const GENERATE = `subscription G($input: GenerateInput!) {
  generate(input: $input) { type delta thinking toolCalls { id name arguments } generationId }
}`;
type Event = { type: string; delta: string | null; thinking: string | null; toolCalls: unknown[] | null; generationId: string };
const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

const lastBody = (path: string) => gw.emulator.requests.filter((r) => r.path === path).at(-1)?.body as Record<string, any>;
const rowOf = (id: string) => gw.orm.getRepository(Generation).findOneByOrFail({ id });

describe('reasoning (think)', () => {
  it('streams the reasoning before the answer, and stores it apart from the answer', async () => {
    const client = wsClient(gw, gw.userSecret);
    const events = (await pacedLikeAModel(gw, () => collect<{ generate: Event }>(client, GENERATE, { input: { model: 'qwen3:0.6b', prompt: 'Why is the sky blue?' } }).done)).map((r: GraphQLResponse<{ generate: Event }>) => r.data!.generate);
    await client.dispose();
    const firstThought = events.findIndex((e) => e.thinking);
    const firstAnswer = events.findIndex((e) => e.delta);
    expect(firstThought).toBeGreaterThanOrEqual(0);
    expect(firstThought).toBeLessThan(firstAnswer);
    const thinking = events.map((e) => e.thinking ?? '').join('');
    const row = await rowOf(events[0].generationId);
    expect(row.thinking).toBe(thinking);
    expect(row.response).toBe(events.map((e) => e.delta ?? '').join(''));
    // think omitted: Ollama's default applies (nothing sent).
    expect(lastBody('/api/generate')).not.toHaveProperty('think');
  });

  it('turns reasoning off, or sets a level, and refuses it for a model without the capability', async () => {
    const off = await gql<{ generate: { thinking: string | null; text: string } }>(gw, 'mutation { generate(input: { model: "qwen3:0.6b", prompt: "No thoughts", options: { think: OFF } }) { thinking text } }', undefined, gw.userSecret);
    expect(off.generate.thinking).toBeNull();
    expect(off.generate.text.length).toBeGreaterThan(0);
    expect(lastBody('/api/generate').think).toBe(false);
    const high = await gql<{ generate: { thinking: string | null } }>(gw, 'mutation { generate(input: { model: "gpt-oss:20b", prompt: "Think hard", options: { think: HIGH } }) { thinking } }', undefined, gw.userSecret);
    expect(high.generate.thinking).toBeTruthy();
    expect(lastBody('/api/generate').think).toBe('high');
    const before = gw.emulator.requests.length;
    const { error } = await gqlError(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "x", options: { think: ON } }) { text } }', undefined, gw.userSecret);
    expect(error.extensions).toMatchObject({ code: 'CAPABILITY_MISSING', capability: 'thinking' });
    expect(gw.emulator.requests.slice(before).filter((r) => r.path === '/api/generate')).toEqual([]);
  });

  it('keeps a session turn\'s reasoning with the message and never sends it back', async () => {
    const { createSession } = await gql<{ createSession: { id: string } }>(gw, 'mutation { createSession(input: { model: "qwen3:0.6b" }) { id } }', undefined, gw.userSecret);
    const first = await gql<{ chat: { message: { thinking: string | null; content: string } } }>(
      gw,
      'mutation($id: ID!) { chat(input: { sessionId: $id, message: "First question" }) { message { thinking content } } }',
      { id: createSession.id },
      gw.userSecret,
    );
    expect(first.chat.message.thinking).toBeTruthy();
    await gql(gw, 'mutation($id: ID!) { chat(input: { sessionId: $id, message: "Second question" }) { text } }', { id: createSession.id }, gw.userSecret);
    const sent = lastBody('/api/chat').messages as Array<Record<string, unknown>>;
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(sent[1].content).toBe(first.chat.message.content);
    expect(sent.every((m) => !('thinking' in m))).toBe(true);
  });
});

describe('tool calls', () => {
  it('returns the calls, then answers in text once a TOOL message answers them (stateless)', async () => {
    const CHAT = 'mutation($i: ChatInput!) { chat(input: $i) { text toolCalls { id name arguments } doneReason } }';
    const ask = { model: 'llama3.2', messages: [{ role: 'USER', content: 'Weather in Paris?' }], tools: [WEATHER] };
    const first = await gql<{ chat: { text: string; toolCalls: Array<{ id: string; name: string; arguments: Record<string, unknown> }> } }>(gw, CHAT, { i: ask }, gw.userSecret);
    expect(first.chat.toolCalls).toHaveLength(1);
    const [call] = first.chat.toolCalls;
    expect(call).toMatchObject({ name: 'get_weather', arguments: { city: expect.any(String) } });
    expect(call.id).toBeTruthy();
    expect(lastBody('/api/chat').tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: WEATHER.description, parameters: WEATHER.parameters } }]);
    const second = await gql<{ chat: { text: string; toolCalls: unknown[] } }>(
      gw,
      CHAT,
      {
        i: {
          ...ask,
          messages: [...ask.messages, { role: 'ASSISTANT', content: '', toolCalls: [call] }, { role: 'TOOL', toolCallId: call.id, content: '{"temperature": 21}' }],
        },
      },
      gw.userSecret,
    );
    expect(second.chat.toolCalls).toEqual([]);
    expect(second.chat.text.length).toBeGreaterThan(0);
    const sent = lastBody('/api/chat').messages as Array<Record<string, any>>;
    expect(sent[1].tool_calls).toEqual([{ function: { name: 'get_weather', arguments: call.arguments } }]);
    expect(sent[2]).toMatchObject({ role: 'tool', content: '{"temperature": 21}', tool_name: 'get_weather', tool_call_id: call.id });
  });

  it('stores calls and answers in a session, and streams the calls as events', async () => {
    const { createSession } = await gql<{ createSession: { id: string } }>(gw, 'mutation { createSession(input: { model: "llama3.2" }) { id } }', undefined, gw.userSecret);
    const client = wsClient(gw, gw.userSecret);
    const events = await collect<{ chat: { type: string; toolCalls: Array<{ id: string; name: string }> | null } }>(
      client,
      'subscription($i: ChatInput!) { chat(input: $i) { type toolCalls { id name } } }',
      { i: { sessionId: createSession.id, message: 'Weather in Rome?', tools: [WEATHER] } },
    ).done;
    await client.dispose();
    const calls = events.flatMap((e) => e.data?.chat.toolCalls ?? []);
    expect(calls).toHaveLength(1);
    const answer = await gql<{ chat: { text: string; history: Array<{ role: string; toolCalls: Array<{ id: string }>; toolCallId: string | null; toolName: string | null }> } }>(
      gw,
      'mutation($i: ChatInput!) { chat(input: $i) { text history { role toolCalls { id } toolCallId toolName } } }',
      { i: { sessionId: createSession.id, tools: [WEATHER], toolResults: [{ toolCallId: calls[0].id, content: '{"temperature": 25}' }] } },
      gw.userSecret,
    );
    expect(answer.chat.text.length).toBeGreaterThan(0);
    expect(answer.chat.history.map((m) => m.role)).toEqual(['USER', 'ASSISTANT', 'TOOL', 'ASSISTANT']);
    expect(answer.chat.history[1].toolCalls.map((c) => c.id)).toEqual([calls[0].id]);
    expect(answer.chat.history[2]).toMatchObject({ toolCallId: calls[0].id, toolName: 'get_weather' });
    const sent = lastBody('/api/chat').messages as Array<Record<string, any>>;
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
  });

  it('refuses tools for a model without the capability, and bad tool definitions', async () => {
    const { error } = await gqlError(gw, 'mutation($i: ChatInput!) { chat(input: $i) { text } }', { i: { model: 'llava:7b', message: 'x', tools: [WEATHER] } }, gw.userSecret);
    expect(error.extensions).toMatchObject({ code: 'CAPABILITY_MISSING', capability: 'tools' });
    const bad = await gqlError(gw, 'mutation($i: ChatInput!) { chat(input: $i) { text } }', { i: { model: 'llama3.2', message: 'x', tools: [{ name: 'bad name!', parameters: {} }] } }, gw.userSecret);
    expect(bad.error.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    const orphan = await gqlError(gw, 'mutation($i: ChatInput!) { chat(input: $i) { text } }', { i: { model: 'llama3.2', messages: [{ role: 'USER', content: 'x' }, { role: 'TOOL', toolCallId: 'nope', content: '1' }] } }, gw.userSecret);
    expect(orphan.error.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});

describe('structured output (format)', () => {
  it('answers JSON that follows the schema, and refuses a schema that is not one before the model', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' }, sunny: { type: 'boolean' } }, required: ['city', 'sunny'] };
    const { generate } = await gql<{ generate: { text: string } }>(gw, 'mutation($f: JSON) { generate(input: { model: "llama3.2", prompt: "Weather?", format: $f }) { text } }', { f: schema }, gw.userSecret);
    expect(JSON.parse(generate.text)).toMatchObject({ city: expect.any(String), sunny: expect.any(Boolean) });
    expect(lastBody('/api/generate').format).toEqual(schema);
    const json = await gql<{ chat: { text: string } }>(gw, 'mutation { chat(input: { model: "llama3.2", message: "Any JSON", format: "json" }) { text } }', undefined, gw.userSecret);
    expect(() => JSON.parse(json.chat.text)).not.toThrow();
    const before = gw.emulator.requests.length;
    const { error } = await gqlError(gw, 'mutation($f: JSON) { generate(input: { model: "llama3.2", prompt: "x", format: $f }) { text } }', { f: { type: 'objekt' } }, gw.userSecret);
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'format' });
    expect(gw.emulator.requests.length).toBe(before);
  });
});

describe('images on generate and a model\'s own system prompt', () => {
  it('takes base64 images on generate for a vision model, CAPABILITY_MISSING otherwise', async () => {
    const ok = await gql<{ generate: { text: string } }>(gw, 'mutation($i: [String!]) { generate(input: { model: "llava:7b", prompt: "What is it?", images: $i }) { text } }', { i: [PNG] }, gw.userSecret);
    expect(ok.generate.text.length).toBeGreaterThan(0);
    expect(lastBody('/api/generate').images).toEqual([PNG]);
    const { error } = await gqlError(gw, 'mutation($i: [String!]) { generate(input: { model: "llama3.2", prompt: "What is it?", images: $i }) { text } }', { i: [PNG] }, gw.userSecret);
    expect(error.extensions).toMatchObject({ code: 'CAPABILITY_MISSING', capability: 'vision' });
  });

  it('uses the model\'s system prompt when the request brings none; the request\'s wins; sessions take it at creation', async () => {
    await gql(gw, 'mutation { registerModel(input: { name: "qwen3:0.6b", systemPrompt: "Talk like a pirate." }) { systemPrompt } }');
    await gql(gw, 'mutation { generate(input: { model: "qwen3:0.6b", prompt: "Hello" }) { text } }', undefined, gw.userSecret);
    expect(lastBody('/api/generate').system).toBe('Talk like a pirate.');
    await gql(gw, 'mutation { generate(input: { model: "qwen3:0.6b", prompt: "Hello", system: "Be brief." }) { text } }', undefined, gw.userSecret);
    expect(lastBody('/api/generate').system).toBe('Be brief.');
    await gql(gw, 'mutation { chat(input: { model: "qwen3:0.6b", message: "Hello" }) { text } }', undefined, gw.userSecret);
    expect((lastBody('/api/chat').messages as Array<{ role: string; content: string }>)[0]).toEqual({ role: 'system', content: 'Talk like a pirate.' });
    const { createSession } = await gql<{ createSession: { systemPrompt: string | null } }>(gw, 'mutation { createSession(input: { model: "qwen3:0.6b" }) { systemPrompt } }', undefined, gw.userSecret);
    expect(createSession.systemPrompt).toBe('Talk like a pirate.');
    const { model } = await gql<{ model: { systemPrompt: string | null } }>(gw, '{ model(name: "qwen3:0.6b") { systemPrompt } }');
    expect(model.systemPrompt).toBe('Talk like a pirate.');
  });
});

describe('stored usage', () => {
  it('logs tool calls on the usage row', async () => {
    const r = await post<{ chat: { generationId: string } }>(gw, 'mutation($i: ChatInput!) { chat(input: $i) { generationId } }', { i: { model: 'llama3.2', message: 'Weather in Oslo?', tools: [WEATHER] } }, gw.userSecret);
    const row = await rowOf(r.body.data!.chat.generationId);
    expect(row.toolCalls).toEqual([expect.objectContaining({ name: 'get_weather' })]);
  });
});

describe('examples/tools.ts', () => {
  it('runs a tool-calling loop with urql as the README says: one call, its answer, then text', { timeout: 60_000 }, async () => {
    const run = await runExample('examples/tools.ts', { GATEWAY_URL: `${gw.url}/graphql`, GATEWAY_KEY: gw.userSecret });
    expect(run.code, run.stderr).toBe(0);
    const result = resultOf<{ calls: string[]; answer: string; rounds: number; generationId: string }>(run);
    if (!result) throw new Error(`no RESULT line:\n${run.stdout}`);
    expect(result.calls).toEqual(['get_weather']);
    expect(result.rounds).toBe(2);
    expect(result.answer.length).toBeGreaterThan(0);
    const row = await rowOf(result.generationId);
    expect(row.response).toBe(result.answer);
    expect(row.messages?.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
  });
});
