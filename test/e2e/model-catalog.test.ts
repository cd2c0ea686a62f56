import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModels } from '../../src/emulator/server.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { gql, gqlError } from '../helpers/models.js';

let gw: TestGateway;
const lastGenerate = () => gw.emulator.requests.filter((r) => r.path === '/api/generate').at(-1)?.body as Record<string, unknown> | undefined;
const generate = (model: string, secret = gw.userSecret) =>
  post<{ generate: { text: string; creditsCharged: number } }>(
    gw,
    'mutation ($model: String!) { generate(input: { model: $model, prompt: "Hi there" }) { text creditsCharged } }',
    { model },
    secret,
  );

beforeAll(async () => {
  gw = await startGateway({ env: { NVIDIA_SMI_PATH: 'off' } });
});
afterAll(async () => {
  await gw?.stop();
});

describe('models query', () => {
  it('merges what Ollama has installed with the (empty) catalog, with capabilities from /api/show', async () => {
    const { models } = await gql(
      gw,
      '{ models { name alias inCatalog enabled installed sizeBytes sizeGb family parameterSize quantizationLevel digest capabilities loaded runtime { vramBytes } } }',
      undefined,
      gw.userSecret,
    );
    // Every model the emulated Ollama has installed, by name.
    expect(models.map((m: { name: string }) => m.name)).toEqual(defaultModels().map((m) => m.name.toLowerCase()).sort());
    expect(models.find((m: { name: string }) => m.name === 'llama3.2:latest')).toEqual({
      name: 'llama3.2:latest',
      alias: null,
      inCatalog: false,
      enabled: true,
      installed: true,
      sizeBytes: 2_019_393_189,
      sizeGb: 2.02,
      family: 'llama',
      parameterSize: '3.2B',
      quantizationLevel: 'Q4_K_M',
      digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72',
      capabilities: ['completion', 'tools'],
      loaded: false,
      runtime: null,
    });
    expect(models.find((m: { name: string }) => m.name === 'llava:7b').capabilities).toContain('vision');
  });

  it('caches /api/show results per model digest', async () => {
    const shows = () => gw.emulator.requests.filter((r) => r.path === '/api/show').length;
    const before = shows();
    await gql(gw, '{ models { capabilities } }');
    expect(shows()).toBe(before);
  });

  it('needs a key', async () => {
    const { body } = await post(gw, '{ models { name } }');
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('catalog', () => {
  const REGISTER = `mutation ($input: RegisterModelInput!) {
    registerModel(input: $input) { name alias description enabled inCatalog promptPricePer1k completionPricePer1k inactivityThresholdSeconds installed }
  }`;

  it('registers an entry with an alias, prices and a threshold', async () => {
    const { registerModel } = await gql(gw, REGISTER, {
      input: { name: 'Llama3.2', alias: 'Fast', description: 'Small and quick.', promptPricePer1k: 2, completionPricePer1k: 4, inactivityThresholdSeconds: 120 },
    });
    expect(registerModel).toEqual({
      name: 'llama3.2:latest',
      alias: 'fast',
      description: 'Small and quick.',
      enabled: true,
      inCatalog: true,
      promptPricePer1k: 2,
      completionPricePer1k: 4,
      inactivityThresholdSeconds: 120,
      installed: true,
    });
    // A model that is not installed yet may be catalogued too.
    const later = await gql(gw, REGISTER, { input: { name: 'phi3:mini', alias: 'phi' } });
    expect(later.registerModel).toMatchObject({ name: 'phi3:mini', installed: false });
  });

  it('refuses bad entries with BAD_USER_INPUT naming the problem', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: 'llama3.2:latest' }, /already in the catalog/],
      [{ name: 'qwen3:0.6b', alias: 'FAST' }, /already used/],
      [{ name: 'qwen3:0.6b', alias: 'a:b' }, /Alias/],
      [{ name: 'qwen3:0.6b', alias: 'llama3.2' }, /hide/],
      [{ name: 'not a name' }, /not a valid Ollama model name/],
      [{ name: 'qwen3:0.6b', promptPricePer1k: -1 }, /promptPricePer1k/],
      [{ name: 'qwen3:0.6b', inactivityThresholdSeconds: 0 }, /inactivityThresholdSeconds/],
      [{ name: 'qwen3:0.6b', description: 'x'.repeat(2001) }, /description/],
    ];
    for (const [input, message] of cases) {
      const { error } = await gqlError(gw, REGISTER, { input });
      expect(error.extensions?.code, JSON.stringify(input)).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(message);
    }
    expect((await gql(gw, '{ models { name } }')).models.map((m: { name: string }) => m.name)).not.toContain('not a name');
  });

  it('finds a model by alias or by Ollama name, case-insensitively, and MODEL_NOT_FOUND otherwise', async () => {
    for (const name of ['FAST', 'llama3.2', 'LLAMA3.2:latest', 'registry.ollama.ai/library/llama3.2:latest']) {
      expect((await gql(gw, '{ model(name: $n) { name alias } }'.replace('$n', JSON.stringify(name)))).model).toEqual({ name: 'llama3.2:latest', alias: 'fast' });
    }
    const { error } = await gqlError(gw, '{ model(name: "nothing-here") { name } }');
    expect(error.extensions).toMatchObject({ code: 'MODEL_NOT_FOUND', model: 'nothing-here' });
    expect((await gqlError(gw, '{ model(name: "bad name") { name } }')).error.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('updates an entry by alias; null clears a field; MODEL_NOT_FOUND for an unknown entry', async () => {
    const { updateModel } = await gql(gw, 'mutation { updateModel(name: "phi", input: { description: "Later.", alias: null }) { name alias description } }');
    expect(updateModel).toEqual({ name: 'phi3:mini', alias: null, description: 'Later.' });
    const { error } = await gqlError(gw, 'mutation { updateModel(name: "qwen3:0.6b", input: { enabled: false }) { name } }');
    expect(error.extensions?.code).toBe('MODEL_NOT_FOUND');
    expect((await gqlError(gw, 'mutation { updateModel(name: "phi3:mini", input: { completionPricePer1k: 1e9 }) { name } }')).error.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('requests by alias', () => {
  it('sends the Ollama name upstream, with the threshold as keep_alive and the entry\'s prices', async () => {
    const { body } = await generate('fast');
    expect(body.errors).toBeUndefined();
    expect(lastGenerate()).toMatchObject({ model: 'llama3.2:latest', keep_alive: 120 });
    // 1 (request) + ceil(prompt × 2/1000) + ceil(completion × 4/1000)
    expect(body.data!.generate.creditsCharged).toBe(3);
  });

  it('sends the global threshold as keep_alive for models without their own, and OLLAMA_KEEP_ALIVE when there is none', async () => {
    await generate('qwen3:0.6b');
    // Never left out: Ollama would keep the model's previous keep_alive (sticky, server/sched.go).
    expect(lastGenerate()).toMatchObject({ model: 'qwen3:0.6b', keep_alive: '5m' });
    await gql(gw, 'mutation { setInactivityThreshold(seconds: 45) { seconds } }');
    await generate('qwen3:0.6b');
    expect(lastGenerate()).toMatchObject({ model: 'qwen3:0.6b', keep_alive: 45 });
    // The model's own threshold wins over the global one.
    await generate('llama3.2');
    expect(lastGenerate()).toMatchObject({ model: 'llama3.2', keep_alive: 120 });
    // Over graphql-ws too.
    const client = wsClient(gw, gw.userSecret);
    const results = await collect(client, 'subscription { generate(input: { model: "Fast", prompt: "Hi" }) { type } }').done;
    await client.dispose();
    expect(results.at(-1)!.errors).toBeUndefined();
    expect(lastGenerate()).toMatchObject({ model: 'llama3.2:latest', keep_alive: 120 });
    await gql(gw, 'mutation { setInactivityThreshold(seconds: null) { seconds settings { inactivityThresholdSeconds } } }');
  });

  it('refuses a disabled model with MODEL_NOT_FOUND before calling Ollama', async () => {
    await gql(gw, 'mutation { updateModel(name: "fast", input: { enabled: false }) { enabled } }');
    const before = gw.emulator.requests.length;
    const { body } = await generate('fast');
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'MODEL_NOT_FOUND', disabled: true });
    expect((await generate('llama3.2')).body.errors?.[0]?.extensions?.code).toBe('MODEL_NOT_FOUND');
    expect(gw.emulator.requests.slice(before).filter((r) => r.path === '/api/generate')).toEqual([]);
    await gql(gw, 'mutation { updateModel(name: "fast", input: { enabled: true }) { enabled } }');
    expect((await generate('fast')).body.errors).toBeUndefined();
  });

  it('refuses an invalid model name with BAD_USER_INPUT', async () => {
    const { body } = await generate('not a model');
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('settings', () => {
  it('stores the default system prompt; sessions created afterwards start with it', async () => {
    const { setDefaultSystemPrompt } = await gql(gw, 'mutation { setDefaultSystemPrompt(prompt: "Be brief.") { defaultSystemPrompt } }');
    expect(setDefaultSystemPrompt.defaultSystemPrompt).toBe('Be brief.');
    const { settings } = await gql(gw, '{ settings { defaultSystemPrompt inactivityThresholdSeconds defaultModel } }', undefined, gw.userSecret);
    expect(settings).toEqual({ defaultSystemPrompt: 'Be brief.', inactivityThresholdSeconds: null, defaultModel: null });
    const session = await post<{ createSession: { systemPrompt: string | null } }>(
      gw,
      'mutation { createSession(input: { model: "fast" }) { systemPrompt } }',
      undefined,
      gw.userSecret,
    );
    expect(session.body.errors).toBeUndefined();
    expect(session.body.data!.createSession.systemPrompt).toBe('Be brief.');
    const tooLong = await gqlError(gw, 'mutation ($p: String) { setDefaultSystemPrompt(prompt: $p) { defaultSystemPrompt } }', { p: 'x'.repeat(32_001) });
    expect(tooLong.error.extensions?.code).toBe('BAD_USER_INPUT');
    const cleared = await gql(gw, 'mutation { setDefaultSystemPrompt(prompt: null) { defaultSystemPrompt } }');
    expect(cleared.setDefaultSystemPrompt.defaultSystemPrompt).toBeNull();
  });

  it('refuses bad thresholds and unknown models', async () => {
    for (const seconds of [-5, 0, 31_536_001]) {
      const { error } = await gqlError(gw, 'mutation ($s: Int) { setInactivityThreshold(seconds: $s) { seconds } }', { s: seconds });
      expect(error.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect((await gqlError(gw, 'mutation { setInactivityThreshold(seconds: 1.5) { seconds } }')).error.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect((await gqlError(gw, 'mutation { setInactivityThreshold(seconds: 10, model: "ghost:7b") { seconds } }')).error.extensions?.code).toBe('MODEL_NOT_FOUND');
    expect((await gqlError(gw, 'mutation { setInactivityThreshold(seconds: 10, model: "bad name") { seconds } }')).error.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await gql(gw, '{ settings { inactivityThresholdSeconds } }')).settings.inactivityThresholdSeconds).toBeNull();
  });
});

describe('admin only', () => {
  const mutations = [
    'mutation { registerModel(input: { name: "qwen3:0.6b" }) { name } }',
    'mutation { updateModel(name: "fast", input: { enabled: false }) { name } }',
    'mutation { pullModel(name: "smollm2:135m") { model } }',
    'mutation { loadModel(name: "qwen3:0.6b") { warnings } }',
    'mutation { unloadModel(name: "qwen3:0.6b") { wasLoaded } }',
    'mutation { deleteModel(name: "qwen3:0.6b", force: true) { wasLoaded } }',
    'mutation { changeModel(to: "qwen3:0.6b") { sizeGb } }',
    'mutation { setInactivityThreshold(seconds: 5) { seconds } }',
    'mutation { setDefaultSystemPrompt(prompt: "x") { defaultSystemPrompt } }',
  ];

  it('answers FORBIDDEN to a user key on every model and settings mutation, and changes nothing', async () => {
    const before = gw.emulator.requests.length;
    for (const query of mutations) {
      const { error } = await gqlError(gw, query, undefined, gw.userSecret);
      expect(error.extensions?.code, query).toBe('FORBIDDEN');
    }
    // Only the idle reaper's /api/ps polls (llama3.2 has a threshold) may have reached Ollama.
    expect(gw.emulator.requests.slice(before).filter((r) => r.path !== '/api/ps')).toEqual([]);
    expect((await gql(gw, '{ model(name: "fast") { enabled } }')).model.enabled).toBe(true);
    expect((await gql(gw, '{ settings { inactivityThresholdSeconds defaultSystemPrompt } }')).settings).toEqual({ inactivityThresholdSeconds: null, defaultSystemPrompt: null });
  });

  it('answers UNAUTHENTICATED without a key', async () => {
    const { body } = await post(gw, mutations[3]);
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
