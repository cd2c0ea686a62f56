import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { Message } from '../../src/entities/message.js';
import type { Fault } from '../../src/emulator/server.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { type GraphQLResponse, type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';

const SUBSCRIPTION = `subscription Gen($input: GenerateInput!) {
  generate(input: $input) { type generationId delta tokenCount }
}`;
type Event = { generate: { type: string; generationId: string; delta: string | null; tokenCount: number | null } };
/** Tokens the client received: a TOKEN event may carry several (tokenCount). */
const tokensIn = (events: GraphQLResponse<Event>[]) =>
  events.filter((e) => e.data?.generate.type === 'TOKEN').reduce((n, e) => n + e.data!.generate.tokenCount!, 0);

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({
    // An Ollama with OLLAMA_NUM_PARALLEL=4, and the gateway told so: several streams run at once.
    env: { UPSTREAM_STALL_TIMEOUT_MS: '300', UPSTREAM_CONNECT_TIMEOUT_MS: '2000', UPSTREAM_RETRIES: '1', UPSTREAM_RETRY_DELAY_MS: '50', OLLAMA_NUM_PARALLEL: '4' },
    emulator: { numParallel: 4 },
  });
});
afterEach(() => {
  gw.emulator.clearFaults();
  gw.emulator.setTokenDelay(0);
});
afterAll(async () => {
  await gw?.stop();
});

const input = (model = 'llama3.2') => ({ input: { model, prompt: 'Talk to me.' } });

async function viaWs(variables = input()): Promise<GraphQLResponse<Event>[]> {
  const client = wsClient(gw, gw.userSecret);
  try {
    return await collect<Event>(client, SUBSCRIPTION, variables).done;
  } finally {
    await client.dispose();
  }
}

async function credits(): Promise<number> {
  const key = await gw.orm.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(gw.userSecret) });
  return key.credits;
}

async function latestGeneration(): Promise<Generation> {
  const [row] = await gw.orm.getRepository(Generation).find({ order: { createdAt: 'DESC' }, take: 1 });
  return row;
}

/** After any fault the gateway must still serve a normal request end to end. */
async function expectStillServing() {
  const results = await viaWs();
  expect(results.at(-1)?.data?.generate.type).toBe('DONE');
}

interface Case {
  name: string;
  fault: Fault;
  /** Requests the fault applies to (default 1); a refused connection is retried once before any token. */
  times?: number;
  code: string;
  tokensBeforeError: number;
  status: 'ERROR';
}
const cases: Case[] = [
  { name: 'Ollama busy (503)', fault: { kind: 'status', status: 503 }, code: 'UPSTREAM_BUSY', tokensBeforeError: 0, status: 'ERROR' },
  { name: 'bad request (400)', fault: { kind: 'status', status: 400, error: 'invalid options' }, code: 'BAD_USER_INPUT', tokensBeforeError: 0, status: 'ERROR' },
  { name: 'runner crash (500)', fault: { kind: 'status', status: 500, error: 'model runner has unexpectedly stopped' }, code: 'UPSTREAM_ERROR', tokensBeforeError: 0, status: 'ERROR' },
  { name: 'error line after 3 tokens', fault: { kind: 'errorAfter', tokens: 3 }, code: 'UPSTREAM_ERROR', tokensBeforeError: 3, status: 'ERROR' },
  { name: 'stall after 2 tokens', fault: { kind: 'stall', afterTokens: 2 }, code: 'UPSTREAM_TIMEOUT', tokensBeforeError: 2, status: 'ERROR' },
  { name: 'truncated stream after 4 tokens', fault: { kind: 'truncate', afterTokens: 4 }, code: 'UPSTREAM_ERROR', tokensBeforeError: 4, status: 'ERROR' },
  { name: 'connection reset on the request and on its retry (refuse x2)', fault: { kind: 'refuse' }, times: 2, code: 'UPSTREAM_UNAVAILABLE', tokensBeforeError: 0, status: 'ERROR' },
];

describe.each(cases)('upstream fault: $name', ({ fault, times = 1, code, tokensBeforeError, status }) => {
  it('reaches a websocket client as its typed code, records the partial answer and charges only for tokens produced', async () => {
    const before = await credits();
    gw.emulator.addFault({ fault, path: '/api/generate', times });
    const results = await viaWs();
    const tokens = results.filter((r) => r.data?.generate.type === 'TOKEN');
    expect(tokensIn(results)).toBe(tokensBeforeError);
    const last = results.at(-1)!;
    expect(last.errors?.[0]?.extensions?.code).toBe(code);
    expect(last.errors?.[0]?.message).not.toMatch(/Unexpected error/);

    const row = await latestGeneration();
    expect(row.status).toBe(status);
    expect(row.errorCode).toBe(code);
    expect(row.response).toBe(tokens.map((t) => t.data!.generate.delta).join(''));
    expect(row.completionTokens).toBe(tokensBeforeError);
    expect(row.creditsCharged).toBe(tokensBeforeError > 0 ? 1 : 0);
    expect(await credits()).toBe(before - row.creditsCharged);

    await expectStillServing();
  });

  it('reaches an SSE client as its typed code, with the same row and charge', async () => {
    const before = await credits();
    gw.emulator.addFault({ fault, path: '/api/generate', times });
    const { events } = await sse<Event>(gw, SUBSCRIPTION, input(), gw.userSecret);
    expect(events.at(-1)?.errors?.[0]?.extensions?.code).toBe(code);
    const tokens = events.filter((r) => r.data?.generate.type === 'TOKEN');
    expect(tokensIn(events)).toBe(tokensBeforeError);

    const row = await latestGeneration();
    expect(row).toMatchObject({ status, errorCode: code, completionTokens: tokensBeforeError });
    expect(row.response).toBe(tokens.map((t) => t.data!.generate.delta).join(''));
    expect(row.creditsCharged).toBe(tokensBeforeError > 0 ? 1 : 0);
    expect(await credits()).toBe(before - row.creditsCharged);
    await expectStillServing();
  });
});

describe('upstream fault: unknown model', () => {
  it('answers MODEL_NOT_FOUND (Ollama 404) and keeps serving', async () => {
    const results = await viaWs(input('no-such-model'));
    expect(results.filter((r) => r.data?.generate.type === 'TOKEN')).toHaveLength(0);
    expect(results.at(-1)?.errors?.[0]?.extensions?.code).toBe('MODEL_NOT_FOUND');
    expect((await latestGeneration()).errorCode).toBe('MODEL_NOT_FOUND');
    await expectStillServing();
  });
});

describe('upstream fault: Ollama down, then back', () => {
  it('answers UPSTREAM_UNAVAILABLE while the port refuses connections, and recovers when it returns', async () => {
    await gw.emulator.stop();
    try {
      const results = await viaWs();
      expect(results.at(-1)?.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
      const health = (await (await fetch(`${gw.url}/health`)).json()) as { status: string; upstream: boolean };
      expect(health).toMatchObject({ status: 'degraded', upstream: false });
    } finally {
      await gw.emulator.start();
    }
    await expectStillServing();
  });
});

/** Upstream /api/generate requests the emulator saw for one prompt. */
const upstreamAttempts = (prompt: string) =>
  gw.emulator.requests.filter((r) => r.path === '/api/generate' && (r.body as { prompt?: string } | undefined)?.prompt === prompt);

describe('upstream retry before the first token', () => {
  it.each(['ws', 'sse'] as const)('over %s: a connection reset before any chunk is retried once, answered in full and charged once', async (transport) => {
    const prompt = `retry me over ${transport}`;
    const before = await credits();
    gw.emulator.addFault({ fault: { kind: 'refuse' }, path: '/api/generate', times: 1 });
    const variables = { input: { model: 'llama3.2', prompt } };
    const results = transport === 'ws' ? await viaWs(variables) : (await sse<Event>(gw, SUBSCRIPTION, variables, gw.userSecret)).events;
    expect(results.some((r) => r.errors)).toBe(false);
    expect(results.at(-1)?.data?.generate.type).toBe('DONE');

    const attempts = upstreamAttempts(prompt);
    expect(attempts.map((r) => r.outcome)).toEqual(['refused', 'completed']);
    const rows = await gw.orm.getRepository(Generation).find({ where: { prompt } });
    expect(rows).toHaveLength(1); // one usage-log row, one reservation
    expect(rows[0]).toMatchObject({ status: 'COMPLETE', creditsCharged: 1 });
    expect(rows[0].response).toBe(results.filter((r) => r.data?.generate.type === 'TOKEN').map((r) => r.data!.generate.delta).join(''));
    expect(await credits()).toBe(before - 1);
  });

  it('never retries once Ollama has answered: an error after tokens is one upstream request', async () => {
    const prompt = 'no retry after tokens';
    gw.emulator.addFault({ fault: { kind: 'errorAfter', tokens: 2 }, path: '/api/generate', times: 1 });
    const results = await viaWs({ input: { model: 'llama3.2', prompt } });
    expect(results.at(-1)?.errors?.[0]?.extensions?.code).toBe('UPSTREAM_ERROR');
    expect(upstreamAttempts(prompt)).toHaveLength(1);
  });

  it('does not retry a busy Ollama (503): UPSTREAM_BUSY with retryAfterSeconds, one upstream request, nothing charged', async () => {
    const prompt = 'busy, no retry';
    const before = await credits();
    gw.emulator.addFault({ fault: { kind: 'status', status: 503 }, path: '/api/generate', times: 1 });
    const results = await viaWs({ input: { model: 'llama3.2', prompt } });
    const error = results.at(-1)?.errors?.[0];
    expect(error?.extensions).toMatchObject({ code: 'UPSTREAM_BUSY', retryAfterSeconds: expect.any(Number) });
    expect(error?.extensions?.retryAfterSeconds as number).toBeGreaterThan(0);
    expect(upstreamAttempts(prompt)).toHaveLength(1);
    expect(await credits()).toBe(before);
  });
});

describe('upstream fault: Ollama restarting mid-stream', () => {
  it('cuts running ws and SSE streams with UPSTREAM_UNAVAILABLE, keeps their partial answers as ERROR charged once, then serves again', async () => {
    gw.emulator.setTokenDelay(20);
    const before = await credits();
    const wsEvents: GraphQLResponse<Event>[] = [];
    const sseEvents: GraphQLResponse<Event>[] = [];
    const client = wsClient(gw, gw.userSecret);
    const wsDone = new Promise<void>((resolve) => {
      client.subscribe<Event>(
        { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'restart ws: a long answer please' } } },
        { next: (r) => void wsEvents.push(r as GraphQLResponse<Event>), error: () => resolve(), complete: () => resolve() },
      );
    });
    const sseDone = sse<Event>(gw, SUBSCRIPTION, { input: { model: 'llama3.2', prompt: 'restart sse: a long answer please' } }, gw.userSecret, {
      onEvent: (e) => sseEvents.push(e),
    });
    const tokenCount = tokensIn;
    const deadline = Date.now() + 5000;
    while (tokenCount(wsEvents) < 2 || tokenCount(sseEvents) < 2) {
      if (Date.now() > deadline) throw new Error('streams did not start');
      await new Promise((r) => setTimeout(r, 5));
    }
    await gw.emulator.stop();
    try {
      await Promise.all([wsDone, sseDone]);
      await client.dispose();
      for (const [events, prompt] of [
        [wsEvents, 'restart ws: a long answer please'],
        [sseEvents, 'restart sse: a long answer please'],
      ] as const) {
        expect(events.at(-1)?.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
        expect(events.some((e) => e.data?.generate.type === 'DONE')).toBe(false);
        const [row] = await gw.orm.getRepository(Generation).find({ where: { prompt } });
        const text = events.filter((e) => e.data?.generate.type === 'TOKEN').map((e) => e.data!.generate.delta).join('');
        expect(row).toMatchObject({ status: 'ERROR', errorCode: 'UPSTREAM_UNAVAILABLE', response: text, creditsCharged: 1 });
        expect(row.completionTokens).toBe(tokenCount(events));
        expect(upstreamAttempts(prompt)).toHaveLength(1); // tokens were sent: never retried
      }
      expect(await credits()).toBe(before - 2);
    } finally {
      await gw.emulator.start();
    }
    await expectStillServing();
  });

  it('in a session chat: the assistant message keeps its partial text with status ERROR', async () => {
    gw.emulator.setTokenDelay(20);
    const { body } = await post<{ createSession: { id: string } }>(gw, 'mutation { createSession(input: { model: "llama3.2" }) { id } }', undefined, gw.userSecret);
    const sessionId = body.data!.createSession.id;
    const client = wsClient(gw, gw.userSecret);
    const events: Array<{ type: string; delta: string | null }> = [];
    const errors: GraphQLResponse['errors'] = [];
    const done = new Promise<void>((resolve) => {
      client.subscribe<{ chat: { type: string; delta: string | null } }>(
        { query: 'subscription($input: ChatInput!) { chat(input: $input) { type delta } }', variables: { input: { sessionId, message: 'Tell me a long story.' } } },
        { next: (r) => (r.errors ? errors.push(...(r.errors as never[])) : events.push(r.data!.chat)), error: () => resolve(), complete: () => resolve() },
      );
    });
    const deadline = Date.now() + 5000;
    while (events.filter((e) => e.type === 'TOKEN').length < 2) {
      if (Date.now() > deadline) throw new Error('chat did not start');
      await new Promise((r) => setTimeout(r, 5));
    }
    await gw.emulator.stop();
    try {
      await done;
      await client.dispose();
      expect(errors[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
      const messages = await gw.orm.getRepository(Message).find({ where: { sessionId }, order: { seq: 'ASC' } });
      const assistant = messages.find((m) => m.role === 'assistant')!;
      expect(assistant).toMatchObject({ status: 'ERROR', errorCode: 'UPSTREAM_UNAVAILABLE' });
      expect(assistant.content).toBe(events.filter((e) => e.type === 'TOKEN').map((e) => e.delta).join(''));
      expect(assistant.content.length).toBeGreaterThan(0);
    } finally {
      await gw.emulator.start();
    }
    await expectStillServing();
  });
});
