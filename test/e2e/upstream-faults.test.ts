import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import type { Fault } from '../../src/emulator/server.js';
import { hashSecret } from '../../src/services/keys.js';
import { type GraphQLResponse, type TestGateway, collect, sse, startGateway, wsClient } from '../helpers/gateway.js';

const SUBSCRIPTION = `subscription Gen($input: GenerateInput!) {
  generate(input: $input) { type generationId delta }
}`;
type Event = { generate: { type: string; generationId: string; delta: string | null } };

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { UPSTREAM_STALL_TIMEOUT_MS: '300', UPSTREAM_CONNECT_TIMEOUT_MS: '2000' } });
});
afterEach(() => gw.emulator.clearFaults());
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
  const key = await gw.app.services.db.getRepository(ApiKey).findOneByOrFail({ secretHash: hashSecret(gw.userSecret) });
  return key.credits;
}

async function latestGeneration(): Promise<Generation> {
  const [row] = await gw.app.services.db.getRepository(Generation).find({ order: { createdAt: 'DESC' }, take: 1 });
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
  { name: 'connection reset (refuse)', fault: { kind: 'refuse' }, code: 'UPSTREAM_UNAVAILABLE', tokensBeforeError: 0, status: 'ERROR' },
];

describe.each(cases)('upstream fault: $name', ({ fault, code, tokensBeforeError, status }) => {
  it('reaches a websocket client as its typed code, records the partial answer and charges only for tokens produced', async () => {
    const before = await credits();
    gw.emulator.addFault({ fault, path: '/api/generate', times: 1 });
    const results = await viaWs();
    const tokens = results.filter((r) => r.data?.generate.type === 'TOKEN');
    expect(tokens).toHaveLength(tokensBeforeError);
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

  it('reaches an SSE client as its typed code', async () => {
    gw.emulator.addFault({ fault, path: '/api/generate', times: 1 });
    const { events } = await sse<Event>(gw, SUBSCRIPTION, input(), gw.userSecret);
    expect(events.at(-1)?.errors?.[0]?.extensions?.code).toBe(code);
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
