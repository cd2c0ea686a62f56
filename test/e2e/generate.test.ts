import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';

const SUBSCRIPTION = `subscription Gen($input: GenerateInput!) {
  generate(input: $input) {
    type generationId delta tokenCount doneReason creditsCharged
    usage { promptTokens completionTokens totalTokens }
  }
}`;

interface Event {
  type: 'TOKEN' | 'DONE';
  generationId: string;
  delta: string | null;
  tokenCount: number | null;
  doneReason: string | null;
  creditsCharged: number | null;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number } | null;
}

let gw: TestGateway;
/** What Ollama (the emulator) itself streams for the same request, read with the ollama client. */
async function directTokens(model: string, prompt: string) {
  const ollama = new Ollama({ host: gw.emulator.url });
  const tokens: string[] = [];
  let final: { prompt_eval_count: number; eval_count: number; done_reason: string } | undefined;
  for await (const part of await ollama.generate({ model, prompt, stream: true })) {
    if (part.done) final = part;
    else tokens.push(part.response ?? '');
  }
  return { tokens, final: final! };
}

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('generate over graphql-ws', () => {
  it('streams the tokens in order, then a DONE event with usage, and records the generation', async () => {
    const prompt = 'Tell me about the sea.';
    const expected = await directTokens('llama3.2', prompt);
    expect(expected.tokens.length).toBeGreaterThan(3);

    const client = wsClient(gw, gw.userSecret);
    const { done } = collect<{ generate: Event }>(client, SUBSCRIPTION, { input: { model: 'llama3.2', prompt } });
    const results = await done;
    await client.dispose();

    const events = results.map((r) => {
      expect(r.errors).toBeUndefined();
      return r.data!.generate;
    });
    const tokens = events.filter((e) => e.type === 'TOKEN');
    // A TOKEN event carries one or more tokens (tokenCount): the text and the count are the contract.
    expect(tokens.map((e) => e.delta).join('')).toBe(expected.tokens.join(''));
    expect(tokens.reduce((n, e) => n + e.tokenCount!, 0)).toBe(expected.tokens.length);
    for (const e of tokens) expect(e.delta).not.toBe('');
    const last = events.at(-1)!;
    expect(last.type).toBe('DONE');
    expect(events.filter((e) => e.type === 'DONE')).toHaveLength(1);
    expect(last.usage).toEqual({
      promptTokens: expected.final.prompt_eval_count,
      completionTokens: expected.final.eval_count,
      totalTokens: expected.final.prompt_eval_count + expected.final.eval_count,
    });
    expect(last.doneReason).toBe(expected.final.done_reason);
    expect(last.creditsCharged).toBe(1);

    const row = await gw.orm.getRepository(Generation).findOneByOrFail({ id: last.generationId });
    expect(row).toMatchObject({
      status: 'COMPLETE',
      model: 'llama3.2',
      prompt,
      response: expected.tokens.join(''),
      promptTokens: expected.final.prompt_eval_count,
      completionTokens: expected.final.eval_count,
      creditsCharged: 1,
      streamed: true,
      doneReason: expected.final.done_reason,
    });
    expect(row.finishedAt).toBeInstanceOf(Date);
  });

  it('passes options through and reports "length" when maxTokens cuts the answer', async () => {
    const client = wsClient(gw, gw.userSecret);
    const results = await collect<{ generate: Event }>(client, SUBSCRIPTION, {
      input: { model: 'llama3.2', prompt: 'Count.', options: { maxTokens: 3, temperature: 0.2, seed: 7 } },
    }).done;
    await client.dispose();
    const events = results.map((r) => r.data!.generate);
    expect(events.filter((e) => e.type === 'TOKEN').reduce((n, e) => n + e.tokenCount!, 0)).toBe(3);
    expect(events.at(-1)).toMatchObject({ type: 'DONE', doneReason: 'length', usage: { completionTokens: 3 } });
    const sent = gw.emulator.requests.filter((r) => r.path === '/api/generate').at(-1)!.body as { options: Record<string, unknown> };
    expect(sent.options).toEqual({ num_predict: 3, temperature: 0.2, seed: 7 });
  });
});

describe('generate over SSE', () => {
  it('streams the same tokens and DONE event to a fetch client', async () => {
    const prompt = 'And about the mountains?';
    const expected = await directTokens('llama3.2', prompt);
    const { status, events } = await sse<{ generate: Event }>(gw, SUBSCRIPTION, { input: { model: 'llama3.2', prompt } }, gw.userSecret);
    expect(status).toBe(200);
    const payloads = events.map((e) => {
      expect(e.errors).toBeUndefined();
      return e.data!.generate;
    });
    const tokens = payloads.filter((e) => e.type === 'TOKEN');
    expect(tokens.map((e) => e.delta).join('')).toBe(expected.tokens.join(''));
    expect(tokens.reduce((n, e) => n + e.tokenCount!, 0)).toBe(expected.tokens.length);
    const last = payloads.at(-1)!;
    expect(last).toMatchObject({ type: 'DONE', usage: { completionTokens: expected.final.eval_count } });
    const row = await gw.orm.getRepository(Generation).findOneByOrFail({ id: last.generationId });
    expect(row.status).toBe('COMPLETE');
    expect(row.completionTokens).toBe(expected.final.eval_count);
  });
});

describe('generate as a mutation', () => {
  it('returns the whole text and usage, and records a non-streamed generation', async () => {
    const prompt = 'One more, please.';
    const expected = await directTokens('llama3.2', prompt);
    const { status, body } = await post<{ generate: { generationId: string; text: string; doneReason: string; usage: { completionTokens: number } } }>(
      gw,
      `mutation($input: GenerateInput!) { generate(input: $input) { generationId text doneReason usage { completionTokens } } }`,
      { input: { model: 'llama3.2', prompt } },
      gw.userSecret,
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data!.generate.text).toBe(expected.tokens.join(''));
    expect(body.data!.generate.usage.completionTokens).toBe(expected.final.eval_count);
    const row = await gw.orm.getRepository(Generation).findOneByOrFail({ id: body.data!.generate.generationId });
    expect(row).toMatchObject({ status: 'COMPLETE', streamed: false, response: expected.tokens.join('') });
  });

  it('rejects out-of-range options with BAD_USER_INPUT before calling the model', async () => {
    const before = gw.emulator.requests.length;
    const { body } = await post(
      gw,
      `mutation { generate(input: { model: "llama3.2", prompt: "x", options: { temperature: 9 } }) { text } }`,
      undefined,
      gw.userSecret,
    );
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(body.errors?.[0]?.message).toMatch(/temperature/);
    expect(gw.emulator.requests.length).toBe(before);
  });
});
