// The gateway against Ollama's real behaviours (../shared/ollama-api.md section 7), each one a
// failure found against an Ollama-compatible server: keep_alive is sticky, Ollama serves one request
// per model at a time and sends the others no headers, and a reply without num_predict runs on.
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type EmulatedModel, defaultModels } from '../../src/emulator/server.js';
import { type GraphQLResponse, type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';
import { gql } from '../helpers/models.js';
import { until } from '../helpers/wait.js';

const GENERATE = `subscription G($input: GenerateInput!) {
  generate(input: $input) { type generationId phase queuePosition delta tokenCount doneReason creditsCharged usage { promptTokens completionTokens } }
}`;
interface Event {
  type: 'PHASE' | 'TOKEN' | 'DONE';
  generationId: string;
  phase: string | null;
  queuePosition: number | null;
  delta: string | null;
  tokenCount: number | null;
  doneReason: string | null;
  creditsCharged: number | null;
  usage: { promptTokens: number; completionTokens: number } | null;
}
type Events = { generate: Event };

/** A model that talks for about 3,000 tokens when nothing stops it. */
const chatty: EmulatedModel = {
  name: 'chatty:latest',
  size: 1_000_000_000,
  family: 'llama',
  parameterSize: '1B',
  quantizationLevel: 'Q4_K_M',
  capabilities: ['completion'],
  contextLength: 131_072,
  reply: 'word '.repeat(3000).trim(),
};

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({
    env: { DEFAULT_MAX_TOKENS: '500', UPSTREAM_CONNECT_TIMEOUT_MS: '2000' },
    emulator: { models: [...defaultModels(), chatty] },
  });
});
afterAll(async () => {
  await gw?.stop();
});

const phasesOf = (results: GraphQLResponse<Events>[]) =>
  results.filter((r) => r.data?.generate.type === 'PHASE').map((r) => [r.data!.generate.phase, r.data!.generate.queuePosition]);
const keepAliveOf = (text: string) =>
  (gw.emulator.requests.find((r) => r.path === '/api/generate' && JSON.stringify(r.body).includes(text))?.body as { keep_alive?: unknown } | undefined)?.keep_alive;

describe('the text on the final chunk', () => {
  // gpt-oss's parser (harmony) holds back text and flushes it on the done:true chunk.
  const MODEL = 'gpt-oss:20b';
  let whole: (prompt: string, chat?: boolean) => Promise<string>;
  beforeAll(() => {
    const direct = new Ollama({ host: gw.emulator.url });
    whole = async (prompt, chat = false) => {
      if (chat) {
        const answer = await direct.chat({ model: MODEL, messages: [{ role: 'user', content: prompt }], stream: false, think: false });
        return answer.message.content ?? '';
      }
      return (await direct.generate({ model: MODEL, prompt, stream: false, think: false })).response ?? '';
    };
  });
  const textOf = (results: GraphQLResponse<Events>[]) => results.map((r) => (r.data?.generate.type === 'TOKEN' ? r.data.generate.delta : '')).join('');

  it('reaches graphql-ws, SSE and the generate mutation whole', async () => {
    const expected = await whole('final chunk one');
    expect(expected.length).toBeGreaterThan(0);
    const client = wsClient(gw, gw.userSecret);
    const ws = await collect<Events>(client, GENERATE, { input: { model: MODEL, prompt: 'final chunk one' } }).done;
    await client.dispose();
    expect(textOf(ws)).toBe(expected);
    const overSse = await sse<Events>(gw, GENERATE, { input: { model: MODEL, prompt: 'final chunk one' } }, gw.userSecret);
    expect(textOf(overSse.events)).toBe(expected);
    const mutation = await gql<{ generate: { text: string } }>(gw, `mutation { generate(input: { model: "${MODEL}", prompt: "final chunk one" }) { text } }`, undefined, gw.userSecret);
    expect(mutation.generate.text).toBe(expected);
  });

  it('reaches chat, a stored session and /v1 whole', async () => {
    const expected = await whole('final chunk two', true);
    const chat = await gql<{ chat: { text: string } }>(gw, `mutation { chat(input: { model: "${MODEL}", messages: [{ role: USER, content: "final chunk two" }] }) { text } }`, undefined, gw.userSecret);
    expect(chat.chat.text).toBe(expected);
    const session = await gql<{ createSession: { id: string } }>(gw, `mutation { createSession(input: { model: "${MODEL}" }) { id } }`, undefined, gw.userSecret);
    const turn = await gql<{ chat: { history: Array<{ role: string; content: string }> } }>(
      gw,
      'mutation($id: ID!) { chat(input: { sessionId: $id, message: "final chunk two" }) { history { role content } } }',
      { id: session.createSession.id },
      gw.userSecret,
    );
    expect(turn.chat.history.at(-1)).toEqual({ role: 'ASSISTANT', content: expected });
    const openai = new OpenAI({ apiKey: gw.userSecret, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const completion = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'final chunk two' }] });
    expect(completion.choices[0].message.content).toBe(expected);
    let streamed = '';
    for await (const part of await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'final chunk two' }], stream: true })) {
      streamed += part.choices[0]?.delta?.content ?? '';
    }
    expect(streamed).toBe(expected);
  });
});

describe('keep_alive is explicit on every request', () => {
  it('sends the default, then the threshold, then the default again once the threshold is removed', async () => {
    const run = (prompt: string) => gql(gw, 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p }) { text } }', { p: prompt }, gw.userSecret);
    await run('keepalive one');
    await gql(gw, 'mutation { setInactivityThreshold(seconds: 30) { seconds } }');
    await run('keepalive two');
    await gql(gw, 'mutation { setInactivityThreshold(seconds: null) { seconds } }');
    await run('keepalive three');
    // Ollama keeps a model's previous keep_alive when a request has none: never leave it out.
    expect([keepAliveOf('keepalive one'), keepAliveOf('keepalive two'), keepAliveOf('keepalive three')]).toEqual(['5m', 30, '5m']);
  });
});

describe("Ollama's capacity is the admission unit (OLLAMA_NUM_PARALLEL, default 1)", () => {
  it('sends one request per model at a time; the others see QUEUED with their true position', async () => {
    await gw.app.services.pool.primary.upstream.load('llama3.2');
    gw.emulator.setTokenDelay(40);
    try {
      const client = wsClient(gw, gw.userSecret);
      // Each answer takes well over the 2 s connect timeout, so a request sent early and left
      // waiting inside Ollama would time out; the gateway must hold it back instead.
      const options = { maxTokens: 80 };
      const a = collect<Events>(client, GENERATE, { input: { model: 'llama3.2', prompt: 'queue alpha ' + 'x '.repeat(70), options } });
      await until(() => a.results.some((r) => r.data?.generate.type === 'TOKEN'), 10_000, 'the first stream to start');
      const b = collect<Events>(client, GENERATE, { input: { model: 'llama3.2', prompt: 'queue bravo ' + 'x '.repeat(70), options } });
      const c = collect<Events>(client, GENERATE, { input: { model: 'llama3.2', prompt: 'queue charlie ' + 'x '.repeat(70), options } });
      await until(() => phasesOf(c.results).length > 0 && phasesOf(b.results).length > 0, 10_000, 'b and c to report a phase');
      expect(phasesOf(b.results)[0]).toEqual(['QUEUED', 1]);
      expect(phasesOf(c.results)[0]).toEqual(['QUEUED', 2]);
      const [ra, rb, rc] = await Promise.all([a.done, b.done, c.done]);
      for (const r of [ra, rb, rc]) {
        expect(r.every((e) => !e.errors), JSON.stringify(r.find((e) => e.errors))).toBe(true);
        expect(r.at(-1)?.data?.generate.type).toBe('DONE');
      }
      expect(phasesOf(rc)).toContainEqual(['QUEUED', 1]);
      // GENERATING only once the request holds the slot.
      expect(phasesOf(rb).at(-1)).toEqual(['GENERATING', null]);
      // Ollama never had two of them at once.
      const asked = gw.emulator.requests.filter((r) => r.path === '/api/generate' && /queue (alpha|bravo|charlie)/.test(JSON.stringify(r.body)));
      expect(asked).toHaveLength(3);
      asked.sort((x, y) => x.receivedAt - y.receivedAt);
      for (let i = 1; i < asked.length; i++) expect(asked[i].receivedAt).toBeGreaterThanOrEqual(asked[i - 1].endedAt!);
      await client.dispose();
    } finally {
      gw.emulator.setTokenDelay(0);
    }
  });
});

describe('every token delivered is paid for', () => {
  let secret: string;
  beforeAll(async () => {
    await gql(gw, 'mutation { registerModel(input: { name: "chatty", completionPricePer1k: 1000, promptPricePer1k: 1000 }) { name } }');
    const created = await gql<{ createApiKey: { secret: string } }>(gw, 'mutation { createApiKey(input: { name: "payer", credits: 100000 }) { secret } }');
    secret = created.createApiKey.secret;
  });

  it('bounds a reply without maxTokens by the reservation (num_predict) and charges every token it delivered', async () => {
    const client = wsClient(gw, secret);
    const results = await collect<Events>(client, GENERATE, { input: { model: 'chatty', prompt: 'talk to me' } }).done;
    await client.dispose();
    const delivered = results.reduce((n, r) => n + (r.data?.generate.type === 'TOKEN' ? r.data.generate.tokenCount! : 0), 0);
    const done = results.at(-1)!.data!.generate;
    expect(done.type).toBe('DONE');
    expect(done.doneReason).toBe('length');
    expect(done.usage!.completionTokens).toBe(500);
    expect(delivered).toBe(500);
    // REQUEST_COST 1 + one credit per prompt token + one per completion token.
    expect(done.creditsCharged).toBe(1 + done.usage!.promptTokens + 500);
    const sent = gw.emulator.requests.find((r) => r.path === '/api/generate' && JSON.stringify(r.body).includes('talk to me'))!.body as { options?: { num_predict?: number } };
    expect(sent.options?.num_predict).toBe(500);
  });

  it('charges the prompt Ollama evaluated when the client cancels mid-stream', async () => {
    gw.emulator.setTokenDelay(30);
    try {
      const client = wsClient(gw, secret);
      const prompt = 'cancel me please ' + 'y'.repeat(400);
      const sub = collect<Events>(client, GENERATE, { input: { model: 'chatty', prompt } });
      await until(() => sub.results.filter((r) => r.data?.generate.type === 'TOKEN').length >= 2, 10_000, 'two tokens');
      const id = sub.results[0].data!.generate.generationId;
      sub.cancel();
      const row = await until(async () => {
        const r = await gw.orm.getRepository(Generation).findOneBy({ id });
        return r && r.status !== 'STREAMING' ? r : undefined;
      }, 10_000, 'the row to settle');
      await client.dispose();
      expect(row.status).toBe('CANCELLED');
      // About 4 characters a token, plus the template's few: never 0 once Ollama answered.
      expect(row.promptTokens).toBeGreaterThanOrEqual(Math.ceil(prompt.length / 4));
      expect(row.completionTokens).toBeGreaterThanOrEqual(2);
      expect(row.creditsCharged).toBe(1 + row.promptTokens + row.completionTokens);
    } finally {
      gw.emulator.setTokenDelay(0);
    }
  });

  it('counts images in the reservation, for chat messages as for generate', async () => {
    await gql(gw, 'mutation { registerModel(input: { name: "llava:7b", promptPricePer1k: 1000 }) { name } }');
    const poor = await gql<{ createApiKey: { secret: string } }>(gw, 'mutation { createApiKey(input: { name: "poor", credits: 900 }) { secret } }');
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
    const { body } = await post(
      gw,
      'mutation($i: ChatInput!) { chat(input: $i) { creditsCharged } }',
      { i: { model: 'llava:7b', messages: [{ role: 'USER', content: 'what is this?', images: [png] }], options: { maxTokens: 8 } } },
      poor.createApiKey.secret,
    );
    expect(body.errors?.[0]?.extensions?.code).toBe('INSUFFICIENT_CREDITS');
    // One image counts as 1,024 prompt tokens at one credit each.
    expect(body.errors?.[0]?.extensions?.creditsNeeded).toBeGreaterThan(1024);
  });
});

describe('errors and states as Ollama reports them', () => {
  it("maps Ollama's 400 `invalid model name` to BAD_USER_INPUT, not MODEL_NOT_FOUND", async () => {
    for (const path of ['/api/generate', '/api/chat']) {
      gw.emulator.addFault({ fault: { kind: 'status', status: 400, error: 'invalid model name' }, path, times: 1 });
    }
    const generate = await post(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "name check" }) { text } }', undefined, gw.userSecret);
    const chat = await post(gw, 'mutation { chat(input: { model: "llama3.2", message: "name check" }) { text } }', undefined, gw.userSecret);
    gw.emulator.clearFaults();
    expect(generate.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(chat.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('pulls have their own stall limit', () => {
  let slow: TestGateway;
  beforeAll(async () => {
    // Ollama is silent for 1.2 s after "verifying sha256 digest" (it hashes the download), longer than
    // the 0.8 s connect timeout (which pulls used as their stall limit); the other steps are quick.
    slow = await startGateway({ env: { UPSTREAM_CONNECT_TIMEOUT_MS: '800' }, emulator: { pullVerifyMs: 1200 } });
  });
  afterAll(async () => {
    await slow?.stop();
  });

  it('does not abort a pull while Ollama is quiet (verifying a large download)', { timeout: 60_000 }, async () => {
    const client = wsClient(slow, slow.adminSecret);
    // An installed model: its layers are on disk, so the pull is short (one message per layer).
    const results = await collect<{ pullModel: { status: string; done: boolean } }>(client, 'subscription { pullModel(name: "llama3.2") { status done } }').done;
    await client.dispose();
    expect(results.every((r) => !r.errors), JSON.stringify(results.find((r) => r.errors)?.errors)).toBe(true);
    expect(results.at(-1)?.data?.pullModel).toEqual({ status: 'success', done: true });
  });
});
