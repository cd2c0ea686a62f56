// Embeddings through GraphQL `embed` and `POST /v1/embeddings` (the official `openai` client),
// against the emulator's nomic-embed-text: vectors as Ollama made them, paid from the key's
// credits, one usage-log row of kind `embed`, rate limits, the batch cap and capability checks.
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { resultOf, runExample } from '../helpers/examples.js';
import { type TestGateway, post, startGateway } from '../helpers/gateway.js';
import { gql, gqlError } from '../helpers/models.js';

const MODEL = 'nomic-embed-text';
const EMBED = `mutation($input: EmbedInput!) { embed(input: $input) { embeddings model usage { promptTokens } creditsCharged generationId } }`;
const EMBED_QUERY = `query($input: EmbedInput!) { embed(input: $input) { embeddings model usage { promptTokens } creditsCharged generationId } }`;

interface EmbedData {
  embed: { embeddings: number[][]; model: string; usage: { promptTokens: number }; creditsCharged: number; generationId: string };
}

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ env: { MAX_EMBED_INPUTS: '4', MAX_PROMPT_CHARS: '5000' } });
});
afterAll(async () => {
  await gw?.stop();
});

const rows = () => gw.orm.getRepository(Generation);
const credits = async (secret: string) => (await gw.orm.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(secret) })).credits;
const embedCalls = () => gw.emulator.requests.filter((r) => r.path === '/api/embed').length;
const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/** What the emulator answers to the same request, asked directly with the ollama client. */
const direct = (input: string[], dimensions?: number) => new Ollama({ host: gw.emulator.url }).embed({ model: MODEL, input, ...(dimensions ? { dimensions } : {}) });

async function newKey(name: string, opts: { credits?: number; limits?: { requestsPerMinute?: number } } = {}) {
  return gw.app.services.keys.create({ name, role: 'USER', ...opts });
}

describe('GraphQL embed', () => {
  it('returns one normalised vector per text, exactly as Ollama made them; the balance goes down by creditsCharged; one embed row without vectors', async () => {
    const input = ['The sky is blue because of Rayleigh scattering.', 'Grass is green. '.repeat(8)];
    const before = await credits(gw.userSecret);
    const calls = embedCalls();
    const { embed } = await gql<EmbedData>(gw, EMBED, { input: { model: MODEL, input } }, gw.userSecret);
    expect(embedCalls()).toBe(calls + 1);
    const sent = gw.emulator.requests.filter((r) => r.path === '/api/embed').at(-1)!.body as Record<string, unknown>;
    const expected = await direct(input);

    expect(embed.model).toBe(MODEL);
    expect(embed.embeddings).toHaveLength(2);
    expect(embed.embeddings.map((v) => v.length)).toEqual([768, 768]);
    for (const v of embed.embeddings) expect(norm(v)).toBeCloseTo(1, 6);
    expect(embed.embeddings).toEqual(expected.embeddings);
    expect(embed.embeddings[0]).not.toEqual(embed.embeddings[1]);
    expect(embed.usage.promptTokens).toBe(expected.prompt_eval_count);
    expect(embed.usage.promptTokens).toBeGreaterThan(5);
    // No price in the catalogue: REQUEST_COST (1) alone.
    expect(embed.creditsCharged).toBe(1);
    expect(await credits(gw.userSecret)).toBe(before - embed.creditsCharged);
    expect(sent).toMatchObject({ model: MODEL, input });
    expect(sent.keep_alive).toBeDefined();

    const row = await rows().findOneByOrFail({ id: embed.generationId });
    expect(row).toMatchObject({ kind: 'embed', status: 'COMPLETE', model: MODEL, streamed: false, promptTokens: embed.usage.promptTokens, completionTokens: 0, creditsCharged: 1, creditsReserved: 1, response: '', messages: null, errorCode: null, host: gw.emulator.url });
    // A short excerpt of the texts, as refused rows keep.
    expect(input.join('\n').length).toBeGreaterThan(100);
    expect(row.prompt).toBe(`${input.join('\n').slice(0, 100)}…`);
    expect(row.totalDurationMs).toBeGreaterThanOrEqual(0);
    expect(row.finishedAt).not.toBeNull();
    // Nothing of the vectors is stored anywhere in the row.
    expect(JSON.stringify(row)).not.toContain(String(embed.embeddings[0][0]));
  });

  it('charges REQUEST_COST plus the prompt-token price of the catalogue entry, reached through its alias', async () => {
    const { catalog } = gw.app.services.models;
    if (await catalog.find(MODEL)) await catalog.update(MODEL, { alias: 'embedder', promptPricePer1k: 500 });
    else await catalog.register({ name: MODEL, alias: 'embedder', promptPricePer1k: 500 });
    try {
      const input = ['one two three four five six seven eight nine ten eleven twelve'];
      const before = await credits(gw.userSecret);
      const { embed } = await gql<EmbedData>(gw, EMBED, { input: { model: 'embedder', input } }, gw.userSecret);
      expect(embed.model).toBe('nomic-embed-text:latest');
      expect(embed.usage.promptTokens).toBe((await direct(input)).prompt_eval_count);
      expect(embed.creditsCharged).toBe(1 + Math.ceil((embed.usage.promptTokens * 500) / 1000));
      expect(await credits(gw.userSecret)).toBe(before - embed.creditsCharged);
      const row = await rows().findOneByOrFail({ id: embed.generationId });
      // Reserved on the bound (half the characters, plus overhead), charged on Ollama's count.
      expect(row.creditsReserved).toBeGreaterThan(row.creditsCharged);
      expect(row.creditsCharged).toBe(embed.creditsCharged);
    } finally {
      await catalog.update('embedder', { alias: null, promptPricePer1k: null });
    }
  });

  it('dimensions: shorter vectors, normalised again, as Ollama cuts them; also as a query', async () => {
    const input = ['Matryoshka embeddings keep their meaning when cut.'];
    const { embed } = await gql<EmbedData>(gw, EMBED_QUERY, { input: { model: MODEL, input, dimensions: 64, truncate: true } }, gw.userSecret);
    const sent = gw.emulator.requests.filter((r) => r.path === '/api/embed').at(-1)!.body as Record<string, unknown>;
    expect(sent).toMatchObject({ dimensions: 64, truncate: true });
    expect(embed.embeddings[0]).toHaveLength(64);
    expect(norm(embed.embeddings[0])).toBeCloseTo(1, 6);
    expect(embed.embeddings).toEqual((await direct(input, 64)).embeddings);
  });

  it('refuses bad batches with BAD_USER_INPUT before Ollama or the credits: too many texts, too many characters, none, bad dimensions', async () => {
    const before = await credits(gw.userSecret);
    const calls = embedCalls();
    const cases: Array<[Record<string, unknown>, RegExp, string | undefined]> = [
      [{ input: ['a', 'b', 'c', 'd', 'e'] }, /At most 4 texts/, 'maxEmbedInputs'],
      [{ input: ['x'.repeat(3000), 'y'.repeat(2001)] }, /longer than 5000 characters/, 'maxPromptChars'],
      [{ input: [] }, /at least one text/, undefined],
      [{ input: ['fine'], dimensions: 0 }, /dimensions must be/, undefined],
    ];
    for (const [fields, message, limit] of cases) {
      const { error } = await gqlError(gw, EMBED, { input: { model: MODEL, ...fields } }, gw.userSecret);
      expect(error.extensions?.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(message);
      if (limit) expect(error.extensions?.limit).toBe(limit);
    }
    // Four texts are within the cap.
    await gql<EmbedData>(gw, EMBED, { input: { model: MODEL, input: ['a', 'b', 'c', 'd'] } }, gw.userSecret);
    expect(embedCalls()).toBe(calls + 1);
    expect(await credits(gw.userSecret)).toBe(before - 1);
  });

  it('a model without the embedding capability is CAPABILITY_MISSING, an unknown one MODEL_NOT_FOUND; neither reaches /api/embed or costs anything', async () => {
    const before = await credits(gw.userSecret);
    const calls = embedCalls();
    const missing = await gqlError(gw, EMBED, { input: { model: 'llama3.2', input: ['hello'] } }, gw.userSecret);
    expect(missing.error.extensions).toMatchObject({ code: 'CAPABILITY_MISSING', capability: 'embedding', model: 'llama3.2' });
    const unknown = await gqlError(gw, EMBED, { input: { model: 'no-such-model', input: ['hello'] } }, gw.userSecret);
    expect(unknown.error.extensions?.code).toBe('MODEL_NOT_FOUND');
    expect(embedCalls()).toBe(calls);
    expect(await credits(gw.userSecret)).toBe(before);
  });

  it('rate limits apply as for generations: RATE_LIMITED with retryAfterSeconds, one refused row of kind embed, nothing sent upstream', async () => {
    const key = await newKey('embed rate', { limits: { requestsPerMinute: 2 } });
    for (let i = 0; i < 2; i++) await gql<EmbedData>(gw, EMBED, { input: { model: MODEL, input: [`text ${i}`] } }, key.secret);
    const calls = embedCalls();
    const before = await credits(key.secret);
    const { error } = await gqlError(gw, EMBED, { input: { model: MODEL, input: ['one too many'] } }, key.secret);
    expect(error.extensions?.code).toBe('RATE_LIMITED');
    expect(error.extensions?.retryAfterSeconds).toBeGreaterThan(0);
    expect(embedCalls()).toBe(calls);
    expect(await credits(key.secret)).toBe(before);
    const refused = await rows().findOneByOrFail({ apiKeyId: key.key.id, errorCode: 'RATE_LIMITED' });
    expect(refused).toMatchObject({ kind: 'embed', status: 'ERROR', model: MODEL, prompt: 'one too many', creditsReserved: 0, creditsCharged: 0, messages: null });
  });

  it('a key without the credits is INSUFFICIENT_CREDITS, with a refused row and nothing sent upstream', async () => {
    const key = await newKey('embed broke', { credits: 0 });
    const calls = embedCalls();
    const { error } = await gqlError(gw, EMBED, { input: { model: MODEL, input: ['no money'] } }, key.secret);
    expect(error.extensions?.code).toBe('INSUFFICIENT_CREDITS');
    expect(embedCalls()).toBe(calls);
    expect(await rows().findOneByOrFail({ apiKeyId: key.key.id })).toMatchObject({ kind: 'embed', status: 'ERROR', errorCode: 'INSUFFICIENT_CREDITS', creditsCharged: 0 });
    expect(await credits(key.secret)).toBe(0);
  });

  it('needs a key', async () => {
    const { body } = await post(gw, EMBED, { input: { model: MODEL, input: ['hello'] } });
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('POST /v1/embeddings with the openai client', () => {
  const client = () => new OpenAI({ apiKey: gw.userSecret, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 10_000 });

  it('a string input, encoding_format float: one embedding, usage, one embed row, the balance down by the charge', async () => {
    const before = await credits(gw.userSecret);
    const text = 'Embeddings through the OpenAI shape.';
    const r = await client().embeddings.create({ model: MODEL, input: text, encoding_format: 'float' });
    const expected = await direct([text]);
    expect(r.object).toBe('list');
    expect(r.model).toBe(MODEL);
    expect(r.data).toEqual([{ object: 'embedding', index: 0, embedding: expected.embeddings[0] }]);
    expect(r.usage).toEqual({ prompt_tokens: expected.prompt_eval_count, total_tokens: expected.prompt_eval_count });
    const row = await rows().findOneOrFail({ where: { apiKeyId: (await gw.orm.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(gw.userSecret) })).id, kind: 'embed' }, order: { createdAt: 'DESC' } });
    expect(row).toMatchObject({ status: 'COMPLETE', prompt: text, promptTokens: expected.prompt_eval_count });
    expect(await credits(gw.userSecret)).toBe(before - row.creditsCharged);
  });

  it('a list input, encoding_format base64: little-endian float32 bytes of the same vectors; the client default decodes them', async () => {
    const input = ['first text', 'second text', 'third text'];
    const expected = await direct(input);
    const floats = await client().embeddings.create({ model: MODEL, input, encoding_format: 'float' });
    const b64 = await client().embeddings.create({ model: MODEL, input, encoding_format: 'base64' });
    expect(b64.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const [i, d] of b64.data.entries()) {
      expect(typeof d.embedding).toBe('string');
      const bytes = Buffer.from(d.embedding as unknown as string, 'base64');
      expect(bytes.length).toBe(768 * 4);
      const decoded = Array.from({ length: 768 }, (_, j) => bytes.readFloatLE(j * 4));
      expect(decoded).toEqual(expected.embeddings[i].map((v) => Math.fround(v)));
      expect(floats.data[i].embedding).toEqual(expected.embeddings[i]);
    }
    // Without encoding_format the openai client asks for base64 itself and decodes it to numbers.
    const byDefault = await client().embeddings.create({ model: MODEL, input, dimensions: 32 });
    const cut = await direct(input, 32);
    expect(byDefault.data.map((d) => d.embedding)).toEqual(cut.embeddings.map((v) => v.map((x) => Math.fround(x))));
  });

  it('errors in OpenAI shape: 400 capability_missing, 404 model_not_found, 400 for token arrays and bad fields, 401 without a key', async () => {
    const c = client();
    const missing = await c.embeddings.create({ model: 'llama3.2', input: 'hi' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.BadRequestError);
    expect((missing as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('capability_missing');
    const unknown = await c.embeddings.create({ model: 'no-such-model', input: 'hi' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    const tokens = await c.embeddings.create({ model: MODEL, input: [[1, 2, 3]] }).catch((e: unknown) => e);
    expect(tokens).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tokens as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('input');
    const tooMany = await c.embeddings.create({ model: MODEL, input: ['a', 'b', 'c', 'd', 'e'] }).catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooMany as Error).message).toMatch(/At most 4 texts/);
    const format = await fetch(`${gw.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.userSecret}` },
      body: JSON.stringify({ model: MODEL, input: 'hi', encoding_format: 'int8' }),
    });
    expect(format.status).toBe(400);
    expect(((await format.json()) as { error: { param: string } }).error.param).toBe('encoding_format');
    const anonymous = new OpenAI({ apiKey: 'not-a-key', baseURL: `${gw.url}/v1`, maxRetries: 0 });
    expect(await anonymous.embeddings.create({ model: MODEL, input: 'hi' }).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe('examples/embeddings.ts', () => {
  it('runs as the README says: urql and openai embeddings, ranked by cosine similarity, matching the usage log', async () => {
    const run = await runExample('examples/embeddings.ts', { GATEWAY_URL: `${gw.url}/graphql`, GATEWAY_KEY: gw.userSecret });
    expect(run.code, run.stderr).toBe(0);
    const result = resultOf<{
      model: string;
      generationId: string;
      creditsCharged: number;
      promptTokens: number;
      dimensions: number;
      ranked: Array<{ text: string; score: number }>;
      openaiDimensions: number;
      openaiPromptTokens: number;
    }>(run);
    if (!result) throw new Error(`no RESULT line:\n${run.stdout}`);
    expect(result).toMatchObject({ model: MODEL, dimensions: 768, openaiDimensions: 768 });
    expect(result.ranked).toHaveLength(3);
    for (let i = 1; i < result.ranked.length; i++) expect(result.ranked[i - 1].score).toBeGreaterThanOrEqual(result.ranked[i].score);
    const row = await rows().findOneByOrFail({ id: result.generationId });
    expect(row).toMatchObject({ kind: 'embed', status: 'COMPLETE', promptTokens: result.promptTokens, creditsCharged: result.creditsCharged });
    expect(result.openaiPromptTokens).toBe((await direct(['Why is the sky blue?'])).prompt_eval_count);
  }, 60_000);
});

describe('cancellation', () => {
  /**
   * A gateway whose emulator holds one model at a time, busy with a long generation asked
   * directly: an embedding sent meanwhile waits in Ollama's scheduler, unanswered.
   */
  async function withBusyOllama(test: (own: TestGateway) => Promise<void>): Promise<void> {
    const own = await startGateway({ emulator: { maxLoadedModels: 1, tokenDelayMs: 100 } });
    const busy = new AbortController();
    try {
      const ollama = new Ollama({ host: own.emulator.url, fetch: (input, init) => fetch(input, { ...init, signal: busy.signal }) });
      const generating = ollama
        .generate({ model: 'llama3.2', prompt: 'Tell me a very long story.', stream: true, options: { num_predict: 10_000 } })
        .then(async (it) => {
          for await (const _ of it);
        })
        .catch(() => {});
      await own.emulator.waitForRequest((r) => r.path === '/api/generate' && r.scheduledAt !== undefined, 10_000);
      await test(own);
      busy.abort();
      await generating;
    } finally {
      busy.abort();
      await own.stop();
    }
  }

  /** Sends an embedding (fetch, abortable) and waits until Ollama has it. */
  async function startEmbedding(own: TestGateway, secret: string, signal?: AbortSignal) {
    const response = fetch(own.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': secret },
      body: JSON.stringify({ query: EMBED, variables: { input: { model: MODEL, input: ['never answered'] } } }),
      signal,
    });
    const upstream = await own.emulator.waitForRequest((r) => r.path === '/api/embed', 10_000);
    return { response, upstream };
  }

  async function settledRow(own: TestGateway, apiKeyId: string): Promise<Generation> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const rowsOfKey = await own.orm.getRepository(Generation).find({ where: { apiKeyId } });
      expect(rowsOfKey).toHaveLength(1);
      if (rowsOfKey[0].status !== 'STREAMING') return rowsOfKey[0];
      if (Date.now() > deadline) throw new Error('the row was not settled');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  const balance = async (own: TestGateway, id: string) => (await own.orm.getRepository(ApiKey).findOneByOrFail({ id })).credits;

  it('a client that goes away while Ollama has not answered aborts the request to Ollama; the row is CANCELLED and the reservation refunded', async () => {
    await withBusyOllama(async (own) => {
      const key = await own.app.services.keys.create({ name: 'leaves', role: 'USER' });
      const client = new AbortController();
      const { response, upstream } = await startEmbedding(own, key.secret, client.signal);
      expect((await own.orm.getRepository(Generation).findOneByOrFail({ apiKeyId: key.key.id })).status).toBe('STREAMING');
      expect(await balance(own, key.key.id)).toBeLessThan(key.key.credits);
      client.abort();
      await response.catch(() => {});
      await own.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
      const row = await settledRow(own, key.key.id);
      expect(row).toMatchObject({ kind: 'embed', status: 'CANCELLED', errorCode: 'CANCELLED', creditsCharged: 0 });
      expect(row.creditsReserved).toBeGreaterThan(0);
      expect(await balance(own, key.key.id)).toBe(key.key.credits);
    });
  });

  it('revoking the key aborts its running embedding: UNAUTHENTICATED, the request to Ollama closed, the reservation refunded', async () => {
    await withBusyOllama(async (own) => {
      const key = await own.app.services.keys.create({ name: 'revoked', role: 'USER' });
      const { response, upstream } = await startEmbedding(own, key.secret);
      await own.app.services.keys.revoke(key.key.id);
      const body = (await (await response).json()) as { errors?: Array<{ extensions?: { code?: string } }> };
      expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      await own.emulator.waitForOutcome(upstream.id, 'client-closed', 10_000);
      expect(await settledRow(own, key.key.id)).toMatchObject({ status: 'CANCELLED', errorCode: 'UNAUTHENTICATED', creditsCharged: 0 });
      expect(await balance(own, key.key.id)).toBe(key.key.credits);
    });
  });
});
