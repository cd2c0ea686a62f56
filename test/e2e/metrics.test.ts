// /metrics scraped over HTTP after real traffic (graphql-ws, HTTP, an unknown model, a bad key):
// the gateway's counters and histograms must agree with what clients received and the usage log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { type Sample, parsePrometheus, sampleSum, sampleValue } from '../helpers/prometheus.js';
import { until } from '../helpers/wait.js';

const TOKEN = 'metrics-token-0123456789abcdef';
const MODEL = 'llama3.2:latest';
const SUBSCRIPTION = `subscription Gen($input: GenerateInput!) {
  generate(input: $input) { type delta tokenCount usage { completionTokens } creditsCharged }
}`;
type Event = { generate: { type: string; delta: string | null; tokenCount: number | null; usage: { completionTokens: number } | null; creditsCharged: number | null } };

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { METRICS_TOKEN: TOKEN } });
});
afterAll(async () => {
  await gw?.stop();
});

async function scrape(token: string | null = TOKEN): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(`${gw.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

async function samples(): Promise<Sample[]> {
  const { status, text } = await scrape();
  expect(status).toBe(200);
  return parsePrometheus(text);
}

describe('GET /metrics', () => {
  it('needs the bearer token when METRICS_TOKEN is set', async () => {
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape('wrong-token-0123456789')).status).toBe(401);
    expect((await scrape(gw.adminSecret)).status).toBe(401); // an API key is not the metrics token
    const ok = await scrape();
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.text).toContain('# TYPE llm_gateway_tokens_streamed_total counter');
    expect(ok.text).toContain('process_cpu_user_seconds_total');
  });

  it('counts tokens, credits, requests and errors as clients saw them, with bounded labels', async () => {
    const before = await samples();
    const client = wsClient(gw, gw.userSecret);
    const prompts = ['Why is the sky blue?', 'Name three rivers.', 'A haiku about metrics.'];
    let streamedTokens = 0;
    let credits = 0;
    for (const prompt of prompts) {
      const results = await collect<Event>(client, SUBSCRIPTION, { input: { model: 'llama3.2', prompt } }).done;
      for (const r of results) {
        expect(r.errors).toBeUndefined();
        if (r.data!.generate.type === 'TOKEN') streamedTokens += r.data!.generate.tokenCount!;
        if (r.data!.generate.type === 'DONE') credits += r.data!.generate.creditsCharged!;
      }
    }
    await client.dispose();
    const whole = await post<{ generate: { usage: { completionTokens: number }; creditsCharged: number } }>(
      gw,
      'mutation { generate(input: {model: "Llama3.2", prompt: "One more, not streamed."}) { usage { completionTokens } creditsCharged } }',
      undefined,
      gw.userSecret,
    );
    expect(whole.body.errors).toBeUndefined();
    const completedTokens = streamedTokens + whole.body.data!.generate.usage.completionTokens;
    credits += whole.body.data!.generate.creditsCharged;

    const unknown = await post(gw, 'mutation { generate(input: {model: "no-such-model", prompt: "x"}) { text } }', undefined, gw.userSecret);
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('MODEL_NOT_FOUND');
    const anonymous = await post(gw, '{ me { id } }', undefined, 'llmgw_not-a-key');
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const after = await samples();
    const delta = (name: string, labels: Record<string, string> = {}) => sampleSum(after, name, labels) - sampleSum(before, name, labels);

    // Tokens: exactly what the clients received, and what the usage log recorded.
    expect(streamedTokens).toBeGreaterThan(prompts.length * 3);
    expect(delta('llm_gateway_tokens_streamed_total', { model: MODEL })).toBe(completedTokens);
    const rows = await gw.orm.getRepository(Generation).find();
    const logged = rows.filter((r) => r.status === 'COMPLETE').reduce((n, r) => n + r.completionTokens, 0);
    expect(sampleValue(after, 'llm_gateway_tokens_streamed_total', { model: MODEL })).toBe(logged);

    // One observation per answered request in each histogram; the unknown model never answered.
    expect(delta('llm_gateway_time_to_first_token_seconds_count', { model: MODEL })).toBe(4);
    expect(delta('llm_gateway_upstream_latency_seconds_count', { model: MODEL })).toBe(4);
    expect(delta('llm_gateway_time_to_first_token_seconds_sum', { model: MODEL })).toBeGreaterThan(0);
    expect(sampleValue(after, 'llm_gateway_time_to_first_token_seconds_bucket', { model: MODEL, le: '+Inf' })).toBe(
      sampleValue(after, 'llm_gateway_time_to_first_token_seconds_count', { model: MODEL }),
    );
    expect(delta('llm_gateway_generations_total', { model: MODEL, status: 'COMPLETE' })).toBe(4);
    expect(delta('llm_gateway_generations_total', { model: 'unanswered', status: 'ERROR' })).toBe(1);
    expect(sampleSum(after, 'llm_gateway_generations_total', { model: 'no-such-model:latest' })).toBe(0);

    // Credits: what the DONE events and the mutation reported, and what the log charged.
    expect(credits).toBeGreaterThan(0);
    expect(delta('llm_gateway_credits_charged_total', { model: MODEL })).toBe(credits);
    expect(sampleSum(after, 'llm_gateway_credits_charged_total')).toBe(rows.reduce((n, r) => n + r.creditsCharged, 0));

    // Errors by code.
    expect(delta('llm_gateway_errors_total', { code: 'MODEL_NOT_FOUND', api: 'graphql' })).toBe(1);
    expect(delta('llm_gateway_errors_total', { code: 'UNAUTHENTICATED', api: 'graphql' })).toBe(1);

    // yoga's GraphQL metrics share the registry (3 subscriptions over graphql-ws + 3 HTTP operations).
    expect(delta('graphql_envelop_request', { operationType: 'subscription' })).toBe(3);
    expect(delta('graphql_envelop_request', { operationType: 'mutation' })).toBe(2);

    // The model Ollama loaded, from /api/ps at scrape time.
    expect(sampleValue(after, 'llm_gateway_upstream_up')).toBe(1);
    expect(sampleValue(after, 'llm_gateway_models_loaded')).toBe(gw.emulator.running().length);
    expect(sampleValue(after, 'llm_gateway_model_vram_bytes', { model: MODEL, host: gw.emulator.url })).toBe(gw.emulator.running().find((m) => m.name === MODEL)!.sizeVram);

    // No secrets, prompts or per-request values in any label.
    const text = (await scrape()).text;
    for (const secret of [gw.userSecret, gw.adminSecret, 'Why is the sky blue', 'no-such-model', 'not-a-key']) expect(text).not.toContain(secret);
    for (const s of after) expect(s.labels.operationName).toBeUndefined();
  });

  it('shows running streams and open websockets while they last', async () => {
    // Two tokens, then Ollama goes silent: the stream runs until the client leaves.
    gw.emulator.addFault({ fault: { kind: 'stall', afterTokens: 2 }, path: '/api/generate', times: 1 });
    const client = wsClient(gw, gw.userSecret);
    try {
      let tokens = 0;
      const firstToken = new Promise<void>((resolve) => {
        client.subscribe<Event>(
          { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'A long answer, slowly.' } } },
          { next: (r) => r.data?.generate.type === 'TOKEN' && ++tokens === 1 && resolve(), error: () => {}, complete: () => {} },
        );
      });
      await firstToken;
      // The earlier tests' sockets may still be closing: wait for exactly this one.
      let during = await samples();
      await until(async () => sampleValue((during = await samples()), 'llm_gateway_open_websockets') === 1, 10_000, 'one open websocket');
      expect(sampleValue(during, 'llm_gateway_active_streams')).toBe(1);
      expect(sampleValue(during, 'llm_gateway_open_websockets')).toBe(1);
    } finally {
      await client.dispose();
    }
    await until(async () => sampleValue(await samples(), 'llm_gateway_active_streams') === 0, 10_000, 'no active streams');
    const after = await samples();
    expect(sampleValue(after, 'llm_gateway_active_streams')).toBe(0);
    expect(sampleValue(after, 'llm_gateway_open_websockets')).toBe(0);
    expect(sampleValue(after, 'llm_gateway_generations_total', { model: MODEL, status: 'CANCELLED' })).toBe(1);
  });
});

describe('GET /metrics without METRICS_TOKEN', () => {
  it('is open, and reports Ollama down as upstream_up 0 without failing the scrape', async () => {
    const open = await startGateway();
    try {
      await open.emulator.stop();
      const res = await fetch(`${open.url}/metrics`);
      expect(res.status).toBe(200);
      const s = parsePrometheus(await res.text());
      expect(sampleValue(s, 'llm_gateway_upstream_up')).toBe(0);
      expect(sampleValue(s, 'llm_gateway_models_loaded')).toBeNaN();
      expect(sampleValue(s, 'llm_gateway_active_streams')).toBe(0);
    } finally {
      await open.stop();
    }
  });
});
